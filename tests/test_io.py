"""Places that cannot be written are refused before any work, in one line (issue 11, item 3).

``os.access`` is not enough: root may write anywhere it says, yet nothing can be created in
``/proc``; so :func:`colorlib.io.check_writable` creates (and removes) a file where the output
will go. Missing folders are created only inside an existing folder other than the root.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorlib.io import WriteError, atomic_write, check_writable, write_text

PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self").exists(), reason="no /proc here")


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@needs_proc
def test_a_folder_where_no_file_can_be_created_is_refused():
    with pytest.raises(WriteError) as e:
        check_writable(PROC / "x.png")
    assert str(e.value).startswith(f"could not write {PROC / 'x.png'}: no file can be created in {PROC} (")
    assert "\n" not in str(e.value)


def test_missing_folders_at_the_filesystem_root_are_refused_and_never_created(tmp_path):
    root = Path(tmp_path.anchor)
    top = root / "colorlib-surely-not-a-folder-here"
    assert not top.exists()
    for call in (check_writable, lambda p: write_text(p, "x")):
        with pytest.raises(WriteError) as e:
            call(top / "sub" / "x.png")
        assert str(e.value) == (f"could not write {top / 'sub' / 'x.png'}: the folder {top} does not exist "
                                f"(colorlib creates missing folders only inside an existing folder other than "
                                f"{root})")
        assert not top.exists()


def test_missing_folders_inside_an_existing_folder_are_created_on_write(tmp_path):
    target = tmp_path / "a" / "b" / "x.txt"
    check_writable(target)
    assert files_under(tmp_path) == []  # the check leaves nothing behind
    write_text(target, "hello")
    assert target.read_text() == "hello"


def test_a_new_folder_in_the_current_folder_is_created(tmp_path, monkeypatch):
    """Relative paths: "." is a folder, not the root (the README's ``-o colored/`` examples)."""
    monkeypatch.chdir(tmp_path)
    for target in ("colored/x.png", "./colored2/x.png", "runs/smoke/log.csv"):
        check_writable(target)
        write_text(target, "hello")
        assert Path(target).read_text() == "hello"


@pytest.mark.parametrize("command", [
    ["colorize", "p.png", "-o", "colored/"],
    ["colorize", "p.png", "--out-dir", "colored"],
    ["export-onnx", "--model", "miniplaces-baseline", "-o", "onnx/baseline"],
])
def test_commands_write_into_a_new_relative_folder(command, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save("p.png")
    status, out, err = cli(*command)
    assert status == 0, err
    made = Path(command[-1])
    assert made.is_dir() and any(made.iterdir())


def test_a_device_or_pipe_as_the_output_is_refused_never_replaced(tmp_path):
    """``os.replace`` over /dev/null would swap the device for a regular file (as root)."""
    targets = [Path(os.devnull)]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        targets.append(tmp_path / "pipe.png")
    for target in targets:
        with pytest.raises(WriteError, match=r"it is not a regular file \(a device, pipe or socket\)"):
            check_writable(target)
    assert Path(os.devnull).is_char_device()


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")

    def fail(p: Path) -> None:
        p.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError, match="no space left on the device"):
        atomic_write(target, fail)
    assert target.read_text() == "old" and files_under(tmp_path) == ["x.txt"]


@pytest.fixture
def answers(tmp_path):
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "p1.csv").write_text("participant,trial,image_id,condition,answer,timestamp,seed\n"
                                   "p1,1,a,full,yes,t,0\n")
    return folder


@needs_proc
@pytest.mark.parametrize("command", [
    ["colorize", "{photo}", "-o", "/proc/x.png"],
    ["colorize", "{photo}", "-o", "/proc/colored/"],
    ["train", "--smoke", "--out", "/proc/R"],
    ["study", "{answers}", "--plot", "/proc/f.png"],
    ["study", "{answers}", "--json", "/proc/s.json"],
    ["export-onnx", "--model", "miniplaces-baseline", "-o", "/proc/onnx"],
    ["benchmark", "--sizes", "8", "--json", "/proc/b.json"],
])
def test_every_command_refuses_an_unwritable_place_before_any_work(command, answers, tmp_path, cli):
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(photo)
    args = [a.format(photo=photo, answers=answers) for a in command]
    before = files_under(tmp_path)
    status, out, err = cli(*args)
    assert status == 2 and "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"colorlib {command[0]}: error: could not write /proc/"), err
    assert "no file can be created in /proc" in lines[0]
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("command", [
    ["colorize", "{photo}", "-o", "{top}/x.png"],
    ["study", "{answers}", "--json", "{top}/s.json"],
    ["train", "--smoke", "--out", "{top}/R"],
])
def test_no_command_creates_a_folder_at_the_filesystem_root(command, answers, tmp_path, cli):
    top = Path(tmp_path.anchor) / "colorlib-surely-not-a-folder-here"
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(photo)
    status, out, err = cli(*[a.format(photo=photo, answers=answers, top=top) for a in command])
    assert status == 2 and len(err.splitlines()) == 1, err
    assert f"the folder {top} does not exist" in err and not top.exists()
