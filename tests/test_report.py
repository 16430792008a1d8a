"""colorlib.report: reports name their data without the machine's own paths."""

from __future__ import annotations

from pathlib import Path

from colorlib.report import portable_path


def test_data_under_the_data_folder_is_named_relative_to_it(tmp_path, monkeypatch):
    root = tmp_path / "somewhere" / "data"
    (root / "miniplaces").mkdir(parents=True)
    (root / "miniplaces" / "val.tar.gz").write_bytes(b"")
    monkeypatch.setenv("COLORLIB_DATA", str(root))
    monkeypatch.chdir(tmp_path)
    assert portable_path(root / "miniplaces" / "val.tar.gz") == "<data>/miniplaces/val.tar.gz"


def test_other_paths_are_relative_to_the_working_folder_or_bare_names(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORLIB_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    work = tmp_path / "work"
    (work / "photos").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert portable_path(work / "photos") == "photos"
    assert portable_path(Path("photos")) == "photos"
    elsewhere = tmp_path / "elsewhere" / "list.txt"
    assert portable_path(elsewhere) == "list.txt"
    assert str(tmp_path) not in portable_path(elsewhere)
