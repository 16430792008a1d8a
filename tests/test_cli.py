import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from colorlib.checkpoint import models_dir
from colorlib.cli import main


def run(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "colorlib", *map(str, args)], capture_output=True, text=True,
                       timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def photo(tmp_path, photos):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(photos["astronaut"]).resize((300, 200)).save(path)
    return path


def test_colorize_writes_an_rgb_image_of_the_same_size(photo, tmp_path):
    out = tmp_path / "out.png"
    p = run("colorize", photo, "-o", out)
    assert "->" in p.stdout
    im = Image.open(out)
    assert im.size == (300, 200) and im.mode == "RGB"


def test_colorize_keeps_transparency_where_the_format_can(tmp_path, photos, cli):
    rgba = np.dstack([photos["coffee"][::4, ::4], np.full((100, 150), 255, np.uint8)])
    rgba[:50, :, 3] = 0
    src = tmp_path / "cup.png"
    Image.fromarray(rgba).save(src)
    for name, mode in (("out.png", "RGBA"), ("out.webp", "RGBA"), ("out.tif", "RGBA"), ("out.jpg", "RGB"),
                       ("out.bmp", "RGB"), ("out.pcx", "RGB")):
        status, _, err = cli("colorize", src, "-o", tmp_path / name, "-q")
        assert status == 0, (name, err)
        im = Image.open(tmp_path / name)
        assert im.mode == mode and im.size == (150, 100), name
        if mode == "RGBA":
            assert np.array_equal(np.asarray(im)[..., 3], rgba[..., 3])
        else:  # composited over white: the transparent top half is (nearly) white
            assert np.asarray(im.convert("RGB"))[:50].mean() > 245, name


def test_colorize_many_into_a_folder_and_style_transfer(photo, tmp_path, photos):
    other = tmp_path / "coffee.png"
    Image.fromarray(photos["coffee"]).save(other)
    main(["colorize", str(photo), str(other), "--out-dir", str(tmp_path / "o"), "-q"])
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["astronaut-color.png", "coffee-color.png"]
    main(["colorize", str(photo), "--global-image", str(other), "--mix", "0.5", "-o", str(tmp_path / "m.png")])
    assert Image.open(tmp_path / "m.png").size == (300, 200)
    main(["colorize", str(photo), "--saturation", "0", "-o", str(tmp_path / "gray.png")])
    rgb = np.asarray(Image.open(tmp_path / "gray.png"), int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2  # no a*b*: a gray picture


@pytest.mark.parametrize(
    "args, message",
    [
        (["colorize", "{photo}", "--model", "nonexistent-model"], "no model 'nonexistent-model'.*miniplaces-full"),
        (["colorize", "{photo}", "--mix", "0.5"], "--mix needs --global-image"),
        (["colorize", "{photo}", "--model", "miniplaces-baseline", "--global-image", "{photo}"], "baseline"),
        (["colorize", "{photo}", "{photo}", "-o", "x.png"], "--out-dir"),
        (["colorize", "{photo}", "--global-image", "{missing}"], "no such image file"),
        (["colorize", "{photo}", "--global-image", "{bad}", "--mix", "0.5"], "not an image PIL can read"),
        (["colorize", "{photo}", "-o", "{tmp}/out.xyz"], "cannot tell the image format"),
        (["colorize", "{photo_png}", "-o", "{photo_png}"], r"refusing to overwrite the input photo .*astronaut\.png: "
                                                           "give -o another name$"),
        (["colorize", "{photo}", "-o", "{tmp}/x.gif"], r"x\.gif: GIF holds at most 256 colours.*give a name ending in"),
        (["colorize", "{photo}", "-o", "{tmp}/x.ico"], r"a 300x200 image is too large for ICO, which holds at most 256x256"),
        (["train", "--out", "{tmp}/r", "--data", "{tmp}/nowhere"], "does not exist"),
        (["info", "--model", "{tmp}"], "neither model.safetensors nor checkpoint.pt"),
    ],
)
def test_bad_input_gets_one_clear_line_and_exit_2(args, message, photo, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"not a photo")
    Image.open(photo).save(tmp_path / "astronaut-color.png")  # a photo that is someone's input
    Image.open(photo).save(tmp_path / "astronaut.png")  # same stem as the photo
    before = (tmp_path / "astronaut-color.png").read_bytes()
    fill = dict(photo=photo, missing=tmp_path / "missing.jpg", tmp=tmp_path, bad=tmp_path / "bad.jpg",
                photo_color=tmp_path / "astronaut-color.png", photo_png=tmp_path / "astronaut.png")
    with pytest.raises(SystemExit) as exit_:
        main([a.format(**fill) for a in args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("colorlib ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert (tmp_path / "astronaut-color.png").read_bytes() == before  # nothing was overwritten


def test_a_real_subprocess_error_has_no_traceback(tmp_path):
    # a missing input is that input's failure (exit 1, a count line), no longer a usage error (exit 2)
    p = run("colorize", tmp_path / "missing.jpg", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [f"colorlib colorize: error: no such image: {tmp_path / 'missing.jpg'}",
                                     "colorlib colorize: 0 written, 1 failed"]


def test_info_prints_the_card_figures(capsys):
    main(["info", "--model", "miniplaces-full"])
    out = capsys.readouterr().out
    assert "width 0.5" in out and "100 classes" in out and "6,308 steps" in out
    r = json.loads((models_dir() / "results.json").read_text())["models"]["miniplaces-full"]
    assert f"PSNR {r['psnr']:.2f} dB" in out and f"top-5 {r['top5']:.1f}%" in out
    assert "miniplaces-full.md" in out
    main(["info", "--model", "miniplaces-full", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["variant"] == "full" and info["training"]["steps"] == 6308
    main(["info", "--list"])
    assert "miniplaces-baseline" in capsys.readouterr().out


def test_help_answers_questions():
    out = run("--help").stdout
    for cmd in ("colorize", "train", "info"):
        assert cmd in out
    assert "--smoke" in run("train", "--help").stdout
    assert "--global-image" in run("colorize", "--help").stdout



def test_output_into_a_closed_pipe_is_quiet():
    # `colorlib info | head -1` where head has already gone: every write fails with EPIPE
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        p = subprocess.run([sys.executable, "-m", "colorlib", "info", "--list"], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


def _photos(folder, n: int, photos) -> list:
    folder.mkdir()
    paths = [folder / f"p{i}.png" for i in range(n)]
    for i, path in enumerate(paths):
        Image.fromarray(np.roll(photos["astronaut"][::4, ::4], 7 * i, axis=1)).save(path)
    return paths


def test_ctrl_c_in_a_batch_is_one_line_exit_130_and_leaves_whole_files(tmp_path, photos, cli, monkeypatch):
    """Ctrl-C while the third of five photos is colorized: one line says how far it got."""
    import colorlib.cli.colorize as command

    paths = _photos(tmp_path / "in", 5, photos)
    real = command.colorize

    def colorize(model, source, **kw):
        if str(source).endswith("p2.png"):
            raise KeyboardInterrupt
        return real(model, source, **kw)

    monkeypatch.setattr(command, "colorize", colorize)
    status, out, err = cli("colorize", *paths, "-o", tmp_path / "out", "-q")
    assert status == 130
    assert err == ("colorlib colorize: stopped after 2 of 5 (2 done, 0 failed) by Ctrl-C; "
                   "the files written are whole\n")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0-color.png", "p1-color.png"]


@pytest.mark.skipif(os.name != "posix", reason="SIGINT as a terminal sends it")
def test_a_real_sigint_in_a_batch_has_no_traceback(tmp_path, photos):
    import signal

    paths = _photos(tmp_path / "in", 40, photos)
    p = subprocess.Popen([sys.executable, "-m", "colorlib", "colorize", *map(str, paths), "-o", str(tmp_path / "out")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # the first photo is written: the batch is under way
    assert "->" in first
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and err.splitlines()[-1].startswith("colorlib colorize: stopped after ")
    written = sorted((tmp_path / "out").iterdir())
    assert written and all(Image.open(f).size == (128, 128) for f in written)  # every file whole, no temporaries


def test_classify_json_key_is_what_was_asked_even_beyond_the_number_of_classes(photo):
    """--top 1000 on a 100-class model: the key says top1000 (what was asked), the list holds
    every class, best first; --top 3 says top3 and lists 3."""
    p = run("classify", photo, "--json", "--top", "1000")
    row = json.loads(p.stdout)
    assert set(row) == {"file", "top1000"} and len(row["top1000"]) == 100
    probs = [prob for _, prob in row["top1000"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=0.01)
    row = json.loads(run("classify", photo, "--json", "--top", "3").stdout)
    assert set(row) == {"file", "top3"} and len(row["top3"]) == 3


@pytest.mark.parametrize("command", [["classify", "-"], ["colorize", "-", "-o", "out.png"]])
@pytest.mark.parametrize("data, says", [(b"", "standard input is empty"),
                                        (b"not an image", "standard input is not an image PIL can read: "
                                                          "cannot identify image file")])
def test_empty_or_foreign_standard_input_is_named_as_such(command, data, says, tmp_path):
    p = subprocess.run([sys.executable, "-m", "colorlib", *command], input=data, capture_output=True,
                       cwd=tmp_path, timeout=300)
    err = p.stderr.decode()
    assert p.returncode == 1 and p.stdout == b""
    assert err.splitlines()[0] == f"colorlib {command[0]}: error: {says}"
    assert "BytesIO" not in err and "<" not in err and len(err.splitlines()) == 2
    assert list(tmp_path.iterdir()) == []


def test_inputs_with_the_same_name_get_distinct_outputs_never_one_over_the_other(tmp_path, photos, cli):
    """a/x.png and b/x.jpg into one folder; x.png and x.jpg beside each other; an input that is
    another's natural output name: each gets its own file, a note says which was renamed."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / "x.png", tmp_path / "b" / "x.jpg"
    Image.fromarray(photos["astronaut"][::4, ::4]).save(a)
    Image.fromarray(photos["coffee"][::4, ::4]).save(b)
    out = tmp_path / "out"
    status, _, err = cli("colorize", a, b, "-o", out, "-q")
    assert status == 0, err
    assert err == f"colorlib colorize: note: {out / 'x-color.png'} is another input's output; {b} is written to " \
                  f"{out / 'x-jpg-color.png'}\n"
    assert sorted(p.name for p in out.iterdir()) == ["x-color.png", "x-jpg-color.png"]
    assert Image.open(out / "x-color.png").size == (128, 128) and Image.open(out / "x-jpg-color.png").size == (150, 100)

    # beside their inputs, with an input named like an output and the same file given twice
    c = tmp_path / "a" / "x-color.png"
    Image.fromarray(photos["chelsea"][::4, ::4]).save(c)
    before = c.read_bytes()
    status, _, err = cli("colorize", a, c, a, "-q")
    assert status == 0 and "is an input" in err, err
    assert c.read_bytes() == before  # the input is never overwritten
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x-color-color.png", "x-color.png",
                                                                  "x-png-color.png", "x.png"]


def test_unexpected_os_errors_are_one_line_without_traceback(photo, tmp_path):
    """A file name too long for the filesystem and a symlink loop as the output's folder (found by
    a break test): one line each, exit 1, no traceback; COLORLIB_DEBUG=1 would show it."""
    import subprocess
    import sys

    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    for out in (tmp_path / ("x" * 300 + ".png"), tmp_path / "loopA" / "x.png"):
        r = subprocess.run([sys.executable, "-m", "colorlib", "colorize", str(photo), "-o", str(out)],
                           capture_output=True, text=True, env={**os.environ, "COLORLIB_DEBUG": ""})
        lines = r.stderr.splitlines()
        assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr
        assert lines and all(line.startswith("colorlib colorize: ") for line in lines), r.stderr
        assert not os.path.lexists(out)  # (Path.exists raises for a name too long)


def test_file_names_never_reach_the_terminal_raw(photo, tmp_path, cli):
    """Issue 25 (break test): a file name with an escape sequence, a newline or bytes that are not
    UTF-8 is printed with those characters escaped: one line each, the terminal untouched."""
    bad = tmp_path / "evil\x1b[2J\nname.png"
    bad.write_bytes(b"not an image")
    good = tmp_path / "ok\x1b[31m.png"
    good.write_bytes(photo.read_bytes())
    undecodable = tmp_path / os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a surrogate in Python
    undecodable.write_bytes(photo.read_bytes())
    status, out, err = cli("classify", bad, good, undecodable, "--top", "1")
    assert status == 1 and "\x1b" not in out + err and "\udce9" not in out + err
    assert len(err.splitlines()) == 2 and err.splitlines()[1] == "colorlib classify: 2 classified, 1 failed"
    assert err.startswith(f"colorlib classify: error: {tmp_path}/evil\\x1b[2J name.png is not an image PIL can read")
    assert out.splitlines()[0::2] == [f"{tmp_path}/ok\\x1b[31m.png", f"{tmp_path}/caf\\udce9.png"]
    status, out, err = cli("info", "--model", tmp_path / "no\x1b[1mmodel.safetensors")
    assert status == 2 and "\x1b" not in err and len(err.splitlines()) == 1, err


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="watches the process's maps (Linux)")
@pytest.mark.parametrize("how", ["script", "-m"])
def test_ctrl_c_while_torch_loads_is_one_line_exit_130(how):
    """Issue 25: Ctrl-C in the seconds the command spends importing torch showed Python's
    KeyboardInterrupt traceback (the console script imports the package before any of its code
    runs). A real SIGINT, sent once torch's library is mapped and its Python modules load."""
    import signal
    import time

    script = os.path.join(os.path.dirname(sys.executable), "colorlib")
    if how == "script" and not os.path.exists(script):
        pytest.skip("no colorlib console script beside this Python")
    cmd = [script] if how == "script" else [sys.executable, "-m", "colorlib"]
    p = subprocess.Popen([*cmd, "info", "--list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while "libtorch" not in open(f"/proc/{p.pid}/maps").read():
        assert p.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out, err) == (130, "", "colorlib info: stopped by Ctrl-C while starting; nothing was done\n")


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_dangling_or_looping_link_in_a_folder_gets_one_line_each(photo, tmp_path, cli):
    """Issue 25: a symbolic link named like an image that leads nowhere was left out of a folder
    input without a word; now it is a failed input, one line each, and the others go on."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(photo.read_bytes())
    (folder / "dangling.png").symlink_to("gone.png")
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "notes.txt").symlink_to("gone.txt")  # not an image's name: left out, as any other file
    status, out, err = cli("classify", folder, "--top", "1")
    assert status == 1 and out.splitlines()[0] == str(folder / "good.jpg") and "Traceback" not in err
    assert err.splitlines() == [
        f"colorlib classify: error: {folder / 'dangling.png'}: a symbolic link to gone.png, which does not exist",
        f"colorlib classify: error: {folder / 'loop.png'}: a symbolic link that loops (it leads back to itself)",
        "colorlib classify: 1 classified, 2 failed"]


@pytest.mark.parametrize("command", ["classify", "info"])
def test_an_empty_model_name_is_said_as_such(command, photo, cli):
    """Found by the issue 25 break test: --model "" was read as the current folder ('. holds
    neither model.safetensors nor checkpoint.pt')."""
    status, out, err = cli(command, *([photo] if command == "classify" else []), "--model", "")
    assert (status, out) == (2, "") and err == (
        f"colorlib {command}: error: --model is empty: give a shipped model's name (colorlib info --list), "
        "a weights file or a run folder\n")


def _lightness(rgb) -> np.ndarray:
    import torch

    from colorlib.lab import rgb_to_L

    return rgb_to_L(torch.from_numpy(np.array(rgb)[..., :3]).permute(2, 0, 1)[None].float() / 255)[0, 0].numpy()


def test_a_semi_transparent_input_keeps_the_lightness_a_viewer_sees_in_a_format_without_alpha(tmp_path, photos, cli):
    """Issue 25: written to JPEG or BMP, a half-transparent photo was colorized, then its RGBA
    composited over white, which moved L* by about 4.5 (the colours blended are not the input's);
    now the input is composited first, and the output keeps that composite's L*."""
    from colorlib.imageio import to_rgb_array

    rgba = np.dstack([photos["astronaut"][::4, ::4], np.full((128, 128), 128, np.uint8)])
    rgba[:32, :, 3] = 0  # a transparent band: white, as before
    src = tmp_path / "half.png"
    Image.fromarray(rgba).save(src)
    seen = _lightness(to_rgb_array(src))
    for name, within in (("out.bmp", 0.5), ("out.jpg", 1.5), ("out.png", None)):
        status, out, err = cli("colorize", src, "-o", tmp_path / name, "-q")
        assert (status, out, err) == (0, "", "")
        im = Image.open(tmp_path / name)
        if within is None:  # PNG keeps the alpha, and the un-composited L* under it
            assert im.mode == "RGBA" and np.array_equal(np.asarray(im)[..., 3], rgba[..., 3])
        else:
            assert im.mode == "RGB" and np.abs(_lightness(im) - seen).max() <= within, name
            assert np.asarray(im)[:32].min() >= 250


def test_a_reader_that_leaves_before_the_png_is_read_is_a_failure_not_written(photo):
    """Issue 25: `colorize x.jpg -o - | head -c 10` said '1 written', exit 0 (the PNG fitted in
    the pipe's buffer, so the write succeeded; head read 10 bytes and left)."""
    writer = subprocess.Popen([sys.executable, "-m", "colorlib", "colorize", str(photo), "-o", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    head = subprocess.Popen(["head", "-c", "10"], stdin=writer.stdout, stdout=subprocess.PIPE)
    writer.stdout.close()  # head holds the only reading end
    _, err = writer.communicate(timeout=300)
    assert len(head.communicate(timeout=60)[0]) == 10
    assert writer.returncode == 1 and err.splitlines() == [
        f"colorlib colorize: error: {photo}: standard output was closed before the PNG was read whole",
        "colorlib colorize: 0 written, 1 failed"]
    whole = subprocess.run([sys.executable, "-m", "colorlib", "colorize", str(photo), "-o", "-"],
                           capture_output=True, timeout=300)  # a reader that takes it all: written
    assert whole.returncode == 0 and Image.open(io.BytesIO(whole.stdout)).size == (300, 200)


def test_a_multi_frame_global_image_is_one_note_line(photo, photos, tmp_path):
    """Issue 25: it printed Python's two-line UserWarning (a real process: pytest would catch it)."""
    frames = [Image.fromarray(photos[name][:128, :128]) for name in ("coffee", "chelsea")]
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:])
    p = run("colorize", photo, "--global-image", tmp_path / "two.gif", "-o", tmp_path / "out.png", "-q")
    assert p.stderr == f"colorlib colorize: note: --global-image: {tmp_path / 'two.gif'} has 2 frames; only the first is used\n"


def test_the_memory_error_names_the_option(photo, tmp_path, cli, monkeypatch):
    """Issue 25: the CLI's out-of-memory line advised 'pass a smaller max_pixels', the API's name."""
    import colorlib.infer

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 123456789 bytes.")

    monkeypatch.setattr(colorlib.infer, "_predict_with", no_memory)
    status, _, err = cli("colorize", photo, "-o", tmp_path / "o.png", "--max-pixels", "0", "-q")
    assert status == 1 and len(err.splitlines()) == 2 and "Traceback" not in err
    assert err.splitlines()[0].endswith("; give a smaller --max-pixels") and "max_pixels" not in err


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_colorize_takes_links_that_loop_as_one_failed_input(photo, tmp_path, cli):
    """Issue 25: a link that loops, in a folder or named, stopped the whole batch with Python's
    'Symlink loop from ...' (Path.resolve), before any photo was colorized."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(photo.read_bytes())
    (folder / "loop.png").symlink_to("loop.png")
    (tmp_path / "named.png").symlink_to("named.png")
    status, out, err = cli("colorize", folder, tmp_path / "named.png", "-o", tmp_path / "out", "-q")
    assert status == 1 and out == "" and sorted(os.listdir(tmp_path / "out")) == ["good-color.png"]
    assert err.splitlines() == [
        f"colorlib colorize: error: {folder / 'loop.png'}: a symbolic link that loops (it leads back to itself)",
        f"colorlib colorize: error: {tmp_path / 'named.png'}: a symbolic link that loops (it leads back to itself)",
        "colorlib colorize: 1 written, 2 failed"]
