"""The answer CSVs of the study: the format a session writes, and reading a class's files back.

A session (:class:`~colorlib.study.session.Study`) writes UTF-8, comma-separated rows with
the header :data:`COLUMNS`. Students' files often come back re-saved by a spreadsheet, so
:func:`load_answers` also reads

* UTF-8 with a byte-order mark, UTF-16 (LE or BE) and UTF-32 with a byte-order mark, and text
  without a mark in UTF-8, else Windows-1252 (Latin-1 as Excel writes it);
* ``;`` (European spreadsheets) or tab (Excel's "Unicode text") as the separator, found from
  the header line;
* CRLF or CR line ends, trailing empty cells, and a header repeated further down.

A file that is none of these (binary data, another table) is skipped with one warning line;
a row that is damaged is skipped with a ``file:line: why`` warning.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .design import CONDITIONS, StudyError

COLUMNS = ("participant", "trial", "image_id", "condition", "answer", "timestamp", "seed")
#: Separators accepted, tried in this order on the header line.
SEPARATORS = (",", ";", "\t")
#: A study CSV holds a few thousand rows; anything far larger is not one.
MAX_BYTES = 64 * 2**20
# Longest marks first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class Answer:
    """One row of a study CSV; ``file`` and ``line`` say where it was read."""

    participant: str
    trial: int  # 1-based position in the participant's order
    image_id: str
    condition: str  # one of CONDITIONS
    answer: str  # "yes" or "no"
    timestamp: str  # ISO 8601, UTC
    seed: int
    file: str = ""
    line: int = 0

    @property
    def natural(self) -> bool:
        return self.answer == "yes"


@dataclass(frozen=True)
class CsvFormat:
    """How a study CSV is stored: ``encoding`` (a Python codec name) and ``separator``."""

    encoding: str
    separator: str

    @property
    def appendable(self) -> bool:
        """Whether a session may append its UTF-8, comma-separated rows to such a file."""
        return self.encoding in ("utf-8", "utf-8-sig") and self.separator == ","

    def __str__(self) -> str:
        names = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16", "utf-32": "UTF-32",
                 "cp1252": "Windows-1252"}
        sep = {",": "','", ";": "';'", "\t": "tab"}[self.separator]
        return f"{names.get(self.encoding, self.encoding)}, {sep}-separated"


def decode_text(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` of a CSV's bytes: a byte-order mark decides (UTF-8, UTF-16, UTF-32);
    without one, UTF-8, else Windows-1252. Raises :class:`StudyError` (one line, without the
    file name) for binary data or bytes that are neither."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as e:
                raise StudyError(f"starts with a {encoding.upper()} byte-order mark but is not valid "
                                 f"{encoding.upper()} (byte {e.start})") from None
    if b"\0" in data:  # text in one-byte encodings never holds NUL; UTF-16 without a mark would
        raise StudyError(f"binary data (a NUL byte at offset {data.index(0)}), not a text CSV "
                         "(UTF-16 text needs its byte-order mark)")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise StudyError("neither UTF-8 nor Windows-1252 text; save it from the spreadsheet as 'CSV UTF-8'")


def _cells(rec: list[str]) -> list[str]:
    """Stripped cells, without the empty ones a spreadsheet may add after the last column."""
    cells = [v.strip() for v in rec]
    while len(cells) > len(COLUMNS) and not cells[-1]:
        cells.pop()
    return cells


def _is_header(cells: list[str]) -> bool:
    return [c.lower() for c in cells] == list(COLUMNS)


def parse(text: str, encoding: str = "utf-8") -> tuple[CsvFormat, list[tuple[int, int, list[str]]]]:
    """Find the separator from the header (the first non-blank line) and split ``text`` into
    ``(first line, last line, cells)`` records (a quoted field may span lines), the header and
    blank lines left out. Raises
    :class:`StudyError` (one line, without the file name) when the first line is not the header."""
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        return CsvFormat(encoding, ","), []
    sep = next((s for s in SEPARATORS if _is_header(_cells(_split(first, s)))), None)
    if sep is None:
        raise StudyError(f"not a study CSV: {_header_mismatch(first)}")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    records = []
    start = 1
    try:
        for rec in reader:
            cells = _cells(rec)
            if any(cells) and not _is_header(cells):
                records.append((start, reader.line_num, cells))
            start = reader.line_num + 1
    except csv.Error as e:  # e.g. a field longer than csv's limit: the rest cannot be split
        raise StudyError(f"line {reader.line_num + 1} cannot be read as CSV ({e})") from None
    return CsvFormat(encoding, sep), records


def _header_mismatch(first: str) -> str:
    """Why ``first`` is not the header: for a line that is a header nearly (at least 3 of the
    :data:`COLUMNS`, with the separator that gives the most), the columns that differ, by name;
    else the line itself, cut at 60 characters."""
    def names(cells: list[str]) -> str:
        return ", ".join(repr(c if len(c) <= 30 else c[:27] + "...") for c in cells)

    cells = max((_cells(_split(first, s)) for s in SEPARATORS),
                key=lambda cs: len({c.lower() for c in cs} & set(COLUMNS)))
    lower = [c.lower() for c in cells]
    header = ",".join(COLUMNS)
    if len(set(lower) & set(COLUMNS)) < 3:
        shown = first if len(first) <= 60 else first[:57] + "..."
        return f"its first line {shown!r} is not the header {header} (separated by ',', ';' or tab)"
    extra = [c for c, k in zip(cells, lower) if k not in COLUMNS]
    missing = [c for c in COLUMNS if c not in lower]
    twice = sorted({c for c in cells if lower.count(c.lower()) > 1 and c.lower() in COLUMNS})
    why = ([f"the extra column{'s' * (len(extra) > 1)} {names(extra)}"] if extra else []) + (
        [f"no column{'s' * (len(missing) > 1)} {names(missing)}"] if missing else []) + (
        [f"the column{'s' * (len(twice) > 1)} {names(twice)} twice"] if twice else [])
    return (f"its header has {' and '.join(why) if why else 'the columns in another order'} "
            f"(a study CSV's header is {header})")


def _split(line: str, sep: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=sep), [])
    except csv.Error:
        return []


def read_format(path: Path) -> tuple[CsvFormat, list[tuple[int, int, list[str]]]]:
    """Read, decode and split one file (see :func:`decode_text`, :func:`parse`). Raises
    :class:`StudyError` with one line, without the file name, for anything that is not a study CSV
    or cannot be read (a folder, a device or pipe, which are never read, or a file over
    :data:`MAX_BYTES`)."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise StudyError("it is a folder, not a CSV file")
        if not stat.S_ISREG(info.st_mode):  # a pipe or /dev/zero: reading it may never end
            raise StudyError("it is not a regular file (a device, pipe or socket); not read")
        if info.st_size > MAX_BYTES:
            raise StudyError(f"{info.st_size / 2**20:.0f} MiB is far too large for a study CSV")
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)  # a file that grew since stat() is still bounded
    except OSError as e:
        raise StudyError(f"could not read it ({e.strerror or e})") from None
    text, encoding = decode_text(data)
    return parse(text, encoding)


def read_rows(path: Path, conditions: Iterable[str], seen: dict | None = None,
              label: str | None = None) -> tuple[list[Answer], list[str]]:
    """Valid rows of one CSV and a warning ("label:line: why", or "label: why" for a file not
    read at all) for each row skipped. ``label`` names the file in warnings (its name by default).
    ``seen``: (participant, trial) -> "label:line" of rows read before (from other files too)."""
    label = label or path.name
    conditions = tuple(conditions)
    seen = {} if seen is None else seen
    try:
        _, records = read_format(path)
    except StudyError as e:
        return [], [f"{label}: {e}; skipped"]
    rows: list[Answer] = []
    warns: list[str] = []
    for line, last, cells in records:
        where = f"{label}:{line}"
        if len(cells) != len(COLUMNS):
            span = f" (a quoted field runs on to line {last})" if last > line else ""
            warns.append(f"{where}: {len(cells)} columns instead of {len(COLUMNS)}{span}; skipped")
            continue
        d = dict(zip(COLUMNS, cells))
        ans = d["answer"].lower()
        if ans not in ("yes", "no"):
            warns.append(f"{where}: answer {d['answer']!r} is neither 'yes' nor 'no'; skipped")
        elif d["condition"] not in conditions:
            warns.append(f"{where}: unknown condition {d['condition']!r}; skipped")
        elif not (_whole(d["trial"]) and _whole(d["seed"].removeprefix("-")) and d["participant"]):
            warns.append(f"{where}: participant, trial or seed is not valid ({cells!r}); skipped")
        elif (d["participant"], int(d["trial"])) in seen:
            warns.append(f"{where}: trial {d['trial']} of {d['participant']!r} was already answered "
                         f"at {seen[d['participant'], int(d['trial'])]}; skipped")
        else:
            seen[d["participant"], int(d["trial"])] = where
            rows.append(Answer(d["participant"], int(d["trial"]), d["image_id"], d["condition"], ans,
                               d["timestamp"], int(d["seed"]), str(path), line))
    return rows, warns


def _whole(text: str) -> bool:
    """Whether ``text`` is a whole number as a CSV writes one: ASCII digits, at most 18 of them
    (``str.isdigit`` also accepts '²' and other digits ``int`` refuses, and ``int`` refuses
    numbers of more than 4300 digits)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def csv_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Every ``*.csv`` (any case) in ``folder`` (and its subfolders if ``recursive``), sorted;
    hidden files and lock files (``.name``, ``~$name``: macOS copies, office programs) left out."""
    found = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in found
                  if p.suffix.lower() == ".csv" and not p.name.startswith((".", "~$")) and p.is_file())


@dataclass
class AnswerSet:
    """The answers of one CSV or a class folder."""

    rows: list[Answer]
    warnings: list[str]  # "file:line: why" for every row skipped, "file: why" for a file skipped
    files: list[Path]  # every file read, skipped ones too


def load_answers(
    path: str | os.PathLike, conditions: Iterable[str] = CONDITIONS, quiet: bool = False
) -> AnswerSet:
    """Read one study CSV, or every ``*.csv`` under a folder and its subfolders (a class merged).

    Files re-saved by a spreadsheet are read too (encodings, separators and line ends: see the
    module docstring). Broken rows (wrong column count, bad answer, unknown condition, a trial
    answered twice, also across files: a participant's trial counts once, as first met in the
    files' sorted order) are skipped, each reported as ``file:line: why``; a file
    that is not a study CSV (binary data, another table, unreadable) is skipped with one
    ``file: why``. Warnings name files by their path under ``path`` and are printed to stderr
    (``warning: ...``) unless ``quiet``.

    Raises:
        StudyError: ``path`` does not exist, is a device, pipe or socket (never read), or is a
            folder without any ``*.csv``.
    """
    p = Path(path)
    conditions = tuple(conditions)
    if p.exists() and not p.is_dir() and not p.is_file():  # never read: it may never end
        raise StudyError(f"{p} is not a regular file (a device, pipe or socket); give a CSV file or a folder")
    files = csv_files(p) if p.is_dir() else [p] if p.exists() else []
    if not files:
        raise StudyError(f"no study CSVs at {p}")
    rows: list[Answer] = []
    warns: list[str] = []
    seen: dict = {}  # shared, so one participant's trial found in two files is caught too
    for f in files:
        label = f.relative_to(p).as_posix() if p.is_dir() else f.name
        got, w = read_rows(f, conditions, seen, label)
        rows += got
        warns += w
    if not quiet:
        for w in warns:
            print(f"warning: {w}", file=sys.stderr)
    return AnswerSet(rows, warns, files)
