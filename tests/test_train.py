import csv
import errno
import importlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from colorlib import data as D
from colorlib.checkpoint import CheckpointError, load_model
from colorlib.model import Colorizer, ModelConfig
from colorlib.run import LossLog, Processes, StopSignals, check_finite, truncate_log
from colorlib.train import LOG_FIELDS, Loss, StepInfo, TrainConfig, Validation, joint_loss, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(photos):
    """64 real 64x64 crops of four photos (labels = which photo), and 8 for validation."""
    rng = np.random.default_rng(0)
    crops, labels = [], []
    for label, name in enumerate(["astronaut", "coffee", "chelsea", "astronaut"]):
        img = photos[name]
        for _ in range(18):
            y, x = rng.integers(0, img.shape[0] - 96), rng.integers(0, img.shape[1] - 96)
            crops.append(img[y : y + 96 : 1, x : x + 96][::3, ::3][:32].repeat(2, 0).repeat(2, 1)[:64, :64])
            labels.append(label)
    pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor(labels)
    classes = ["a", "b", "c", "d"]
    return D.DecodedImages(pixels[:64], y[:64], classes), D.DecodedImages(pixels[64:], y[64:], classes)


def tiny_config(**kw) -> TrainConfig:
    base = dict(config="tiny", batch_size=16, steps=6, log_every=2, checkpoint_every=3, seed=1,
                optimizer="adadelta", device="cpu")
    return TrainConfig(**{**base, **kw})


def read_log(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def grads_after(loss_fn, model):
    model.zero_grad(set_to_none=True)
    loss_fn().backward()
    return {name: p.grad for name, p in model.named_parameters()}


def test_loss_reaches_only_the_networks_the_paper_says():
    """Section 3.3: the colour loss trains everything but the classifier; the class loss only
    the classification, global and low-level networks; alpha = 0 leaves the classifier alone."""
    torch.manual_seed(0)
    model = Colorizer(ModelConfig.preset("tiny", num_classes=4)).train()
    L, ab, y = torch.rand(4, 1, 64, 64), torch.rand(4, 2, 32, 32), torch.tensor([0, 1, 2, 3])

    def touched(term: str, alpha: float = 1 / 300) -> set[str]:
        model.zero_grad(set_to_none=True)
        loss, colour, _ = joint_loss(model(L), ab, y, alpha)
        {"colour": colour, "class": loss - colour, "joint": loss}[term].backward()
        return {k.split(".")[0] for k, p in model.named_parameters() if p.grad is not None and p.grad.any()}

    assert touched("colour") == {"low_level", "global_network", "fusion", "mid_level", "colorization"}
    assert touched("class") == {"low_level", "global_network", "classifier"}
    assert "classifier" not in touched("joint", alpha=0.0)
    assert all(p.grad is None for p in model.classifier.parameters())


def test_training_runs_logs_and_validates(tiny_data, tmp_path, capsys):
    seen = []
    r = train(tiny_config(steps=8), tmp_path / "run", data=tiny_data, progress=True, callbacks=(seen.append,))
    assert r.steps == 8 and r.images_seen == 128
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [int(x["step"]) for x in rows] == list(range(8))
    assert set(rows[0]) == {"step", "epoch", "loss", "colour_loss", "class_loss", "lr", "images_per_s"}
    assert r.val and 0 <= r.val[-1]["val_top5"] <= 1
    # a StepInfo per step, a Validation after each epoch (4 steps of 16 of the 64 images)
    assert [s.step for s in seen if isinstance(s, StepInfo)] == list(range(8))
    validations = [s for s in seen if isinstance(s, Validation)]
    assert [v.step for v in validations] == [4, 8] and [asdict(v) for v in validations] == r.val
    assert set(r.val[0]) == set(read_log(tmp_path / "run" / "val.csv")[0])
    lines = [x for x in capsys.readouterr().out.splitlines() if "val colour loss" in x]
    assert [x.split(":")[0] for x in lines] == ["step 4", "step 8"]  # progress=True prints each pass
    model = load_model(tmp_path / "run")
    assert model.cfg.num_classes == 4 and model.meta["classes"] == ["a", "b", "c", "d"]


def test_resume_continues_bit_for_bit(tiny_data, tmp_path):
    """Interrupt (as Ctrl-C would) mid-run, resume, and get the uninterrupted run exactly."""
    kw = dict(steps=6, dropout=0.3, optimizer="adamw", schedule="cosine", warmup_steps=2, min_scale=0.5)
    train(tiny_config(**kw), tmp_path / "whole", data=tiny_data, progress=False)

    def ctrl_c_at_step_2(info):
        if info.step == 2:
            raise KeyboardInterrupt

    first = train(tiny_config(**kw), tmp_path / "split", data=tiny_data, progress=False,
                  callbacks=(ctrl_c_at_step_2,))
    assert first.interrupted and first.steps == 3  # the checkpoint at step 3 first logs step 2
    rest = train(tiny_config(**kw), tmp_path / "split", resume=True, data=tiny_data, progress=False)
    assert rest.steps == 6
    whole = [r["loss"] for r in read_log(tmp_path / "whole" / "log.csv")]
    resumed = [r["loss"] for r in read_log(tmp_path / "split" / "log.csv")]
    assert len(whole) == 6 and whole == resumed
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_runs_never_overwrite_and_resume_checks_config(tiny_data, tmp_path):
    train(tiny_config(steps=3), tmp_path / "r", data=tiny_data, progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny_config(steps=3), tmp_path / "r", data=tiny_data, progress=False)
    with pytest.raises(CheckpointError, match="another configuration.*alpha"):
        train(tiny_config(steps=6, alpha=0.1), tmp_path / "r", resume=True, data=tiny_data, progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(tiny_config(), tmp_path / "empty", resume=True, data=tiny_data, progress=False)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),  # as the OS says it
                                   # and as torch.save's zip writer says it
                                   RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos "
                                                "73536 vs 73432")])
def test_full_disk_keeps_the_previous_checkpoint(tiny_data, tmp_path, monkeypatch, error):
    train(tiny_config(steps=3), tmp_path / "r", data=tiny_data, progress=False)
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise error

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match="could not write.*previous file is intact. Free some space"):
        train(tiny_config(steps=6), tmp_path / "r", resume=True, data=tiny_data, progress=False)
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before
    assert not (tmp_path / "r" / "checkpoint.pt.tmp").exists()
    assert not [p.name for p in (tmp_path / "r").iterdir() if p.name.endswith(".tmp")]


def test_every_checkpoint_has_its_log_and_never_nan_weights(tiny_data, tmp_path, monkeypatch):
    # the attribute colorlib.train is the public function train(); the module is in sys.modules
    T = importlib.import_module("colorlib.train")

    real_save = T.save_checkpoint
    seen = []

    def save_and_look(path, model, opt, sched, step, meta):
        real_save(path, model, opt, sched, step, meta)
        seen.append((step, [int(r["step"]) for r in read_log(Path(path).parent / "log.csv")]))

    monkeypatch.setattr(T, "save_checkpoint", save_and_look)
    train(tiny_config(steps=7, log_every=5, checkpoint_every=3), tmp_path / "r", data=tiny_data, progress=False)
    assert [s for s, _ in seen] == [3, 6, 7]
    assert all(logged == list(range(s)) for s, logged in seen)  # a crash after a save loses no row

    # lr 1e38: the weights blow up on the first step and the loss is NaN from step 2 on; the
    # checkpoint of step 1 is the last finite state, and the guard never writes a later one
    with pytest.raises(FloatingPointError, match="not finite"):
        train(tiny_config(steps=12, log_every=10, checkpoint_every=1, lr=1e38), tmp_path / "nan",
              data=tiny_data, progress=False)
    saved = torch.load(tmp_path / "nan" / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_a_checkpoint_is_plain_data_and_a_longer_run_continues_it_exactly(tiny_data, tmp_path):
    """What a checkpoint holds (weights, ADADELTA's state, the LR schedule's, the meta) loads with
    weights_only=True, and extending a finished 3-step run to 6 steps gives the 6-step run."""
    whole = train(tiny_config(steps=6), tmp_path / "whole", data=tiny_data, progress=False)
    train(tiny_config(steps=3), tmp_path / "part", data=tiny_data, progress=False)
    state = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert set(state) == {"step", "meta", "model", "optimizer", "scheduler"} and state["step"] == 3
    assert set(state["optimizer"]["state"][0]) == {"step", "square_avg", "acc_delta"}
    assert state["scheduler"]["last_epoch"] == 3
    run = state["meta"]["run"]
    assert state["meta"]["train"]["optimizer"] == "adadelta" and run["step"] == 3 and run["total_steps"] == 3
    assert run["steps_per_epoch"] == 4 and run["train_images"] == 64 and run["device"] == "cpu"

    rest = train(tiny_config(steps=6), tmp_path / "part", resume=True, data=tiny_data, progress=False)
    assert rest.steps == 6 and not rest.already_finished
    assert read_log(tmp_path / "part" / "log.csv") == [
        {**r, "images_per_s": r2["images_per_s"]}  # only the measured speed may differ
        for r, r2 in zip(read_log(tmp_path / "whole" / "log.csv"), read_log(tmp_path / "part" / "log.csv"))]
    assert [r["loss"] for r in rest.log] == [r["loss"] for r in whole.log[3:]]
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(x, y) for i in a["optimizer"]["state"] for x, y in
               zip(a["optimizer"]["state"][i].values(), b["optimizer"]["state"][i].values()))


@pytest.mark.parametrize("name", ["gpu", "cuda0", "tpu", "cuda:99"])
def test_a_bad_device_is_refused_before_anything_is_created(tmp_path, cli, name):
    with pytest.raises(ValueError, match=f"--device: .*{name}"):
        TrainConfig(device=name)
    status, out, err = cli("train", "--device", name, "--out", tmp_path / "D", "--smoke")
    assert status == 2 and len(err.splitlines()) == 1 and name in err, err
    assert not (tmp_path / "D").exists()


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path, tiny_data, cli, monkeypatch):
    status, out, err = cli("train", "--data", tmp_path / "no-photos", "--out", tmp_path / "D", "--device", "cpu")
    assert status == 2 and len(err.splitlines()) == 1 and "no-photos" in err, err
    assert not (tmp_path / "D").exists()

    def full_disk(self, data):  # config.json, the run's first file, hits a full disk half-way
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError, match="could not write .*config.json: no space left"):
        train(tiny_config(), tmp_path / "E", data=tiny_data, progress=False)
    assert not (tmp_path / "E").exists()


def test_info_shows_a_run_folders_figures(tiny_data, tmp_path, cli, capsys):
    """`colorlib info --model RUN`: steps, images, epochs, time, final losses and last validation."""
    run = tmp_path / "run"
    train(tiny_config(steps=8), run, data=tiny_data, progress=False)
    assert capsys.readouterr() == ("", "")  # progress=False: quiet, validation passes included
    status, out, err = cli("info", "--model", run, "--json")
    assert status == 0, err
    t = json.loads(out)["training"]
    log, val = read_log(run / "log.csv"), read_log(run / "val.csv")
    assert (t["steps"], t["images_seen"], t["epochs"], t["train_images"]) == (8, 128, 2.0, 64)
    assert (t["total_steps"], t["finished"], t["device"]) == (8, True, "cpu")
    assert isinstance(t["wall_s"], float) and t["wall_s"] > 0
    assert t["final"] == {k: int(v) if k == "step" else float(v) for k, v in log[-1].items()}
    assert t["final"]["step"] == 7
    assert t["val"] == {k: int(v) if k in ("step", "images") else float(v) for k, v in val[-1].items()}
    assert t["val"]["step"] == 8 and t["val"]["images"] == 8
    status, out, err = cli("info", "--model", run)
    assert status == 0, err
    assert "training: 8 of 8 steps, 128 images seen (2.0 epochs of 64 images)" in out
    assert f"final training loss: {float(log[-1]['loss']):.5f}" in out
    assert "last validation (step 8, 8 images): colour loss" in out


def test_resume_of_a_finished_run_says_so_and_touches_nothing(tmp_path, photos, cli):
    folder = photo_folder(tmp_path, photos)
    run = tmp_path / "run"
    args = ("train", "--data", folder, "--out", run, "--config", "tiny", "--epochs", "2", "--batch-size", "4",
            "--val-limit", "0", "--workers", "0", "--device", "cpu", "-q")
    status, out, err = cli(*args)
    assert status == 0, err
    files = sorted(p.name for p in run.iterdir())
    assert files == ["checkpoint.pt", "config.json", "log.csv", "model.safetensors"]
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    status, out, err = cli(*args, "--resume")
    assert (status, out, err) == (0, f"{run} already finished at step 18 of 18; nothing to train\n", "")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before
    status, out, err = cli("info", "--model", run, "--json")  # the run's figures, from its model file
    t = json.loads(out)["training"]
    assert (t["steps"], t["images_seen"], t["epochs"], t["train_images"]) == (18, 72, 2.0, 36)
    assert t["val"] is None and t["final"]["step"] == 17


def test_resume_refuses_another_schedule_and_bad_intervals(tiny_data, tmp_path):
    kw = dict(steps=4, optimizer="adamw", schedule="cosine", warmup_steps=2)
    train(tiny_config(**kw), tmp_path / "r", data=tiny_data, progress=False)
    for change in (dict(warmup_steps=0), dict(steps=8)):
        with pytest.raises(CheckpointError, match=f"another configuration.*{next(iter(change))}"):
            train(tiny_config(**{**kw, **change}), tmp_path / "r", resume=True, data=tiny_data, progress=False)
    for name in ("checkpoint_every", "log_every", "val_every"):
        with pytest.raises(ValueError, match="must be at least 1"):
            tiny_config(**{name: 0})


def test_a_folder_without_a_split_is_not_validated_on_its_training_photos(tmp_path, photos, capsys):
    from PIL import Image

    from colorlib.train import load_training_data

    for i, name in enumerate(["astronaut", "coffee", "chelsea"]):
        Image.fromarray(photos[name][:128, :128]).save(tmp_path / f"{i}.png")
    train_imgs, val = load_training_data(TrainConfig(data=str(tmp_path), workers=0), 64, progress=True)
    assert len(train_imgs) == 3 and val is None
    assert "validation is off" in capsys.readouterr().out


def test_damaged_compressed_weights_are_a_clear_error(tmp_path):
    from colorlib.checkpoint import models_dir

    data = (models_dir() / "sweep-alpha-0.safetensors.gz").read_bytes()
    (tmp_path / "cut.safetensors.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_model(tmp_path / "cut.safetensors.gz")


def test_baseline_and_unlabelled_data_turn_the_class_loss_off(tiny_data, tmp_path):
    r = train(tiny_config(variant="baseline", steps=2), tmp_path / "b", data=tiny_data, progress=False)
    assert all(row["class_loss"] == 0 for row in r.log)
    unlabelled = D.DecodedImages(tiny_data[0].pixels, torch.full((64,), -1), [])
    r = train(tiny_config(steps=2), tmp_path / "u", data=(unlabelled, None), progress=False)
    assert all(row["class_loss"] == 0 for row in r.log)


def test_alpha_of_eq6_is_derived_in_one_place():
    """Section 4: the baseline has no classification network, so it trains with alpha = 0; so does
    data without labels. Otherwise Eq. 6 uses the configured alpha."""
    assert TrainConfig(alpha=0.1, device="cpu").loss_alpha() == 0.1
    assert TrainConfig(alpha=0.1, device="cpu").loss_alpha(labelled=False) == 0.0
    assert TrainConfig(alpha=0.1, variant="baseline", device="cpu").loss_alpha() == 0.0
    assert TrainConfig(alpha=0.0, device="cpu").loss_alpha() == 0.0


def test_loss_log_writes_a_window_and_the_guard_names_the_first_bad_step(tmp_path):
    log = LossLog(tmp_path / "log.csv", images_per_step=32, steps_per_epoch=4)
    for step, loss in ((4, 0.5), (5, float("nan")), (6, float("inf"))):
        terms = Loss(torch.tensor(loss), torch.tensor(0.25), torch.tensor(0.0))
        log.add(step, terms._asdict() | {"lr": torch.tensor(0.1)})
    rows = log.flush()
    assert [r["step"] for r in rows] == [4, 5, 6] and [r["epoch"] for r in rows] == [1.0, 1.25, 1.5]
    assert rows[0]["loss"] == 0.5 and rows[0]["colour_loss"] == 0.25 and rows[0]["lr"] == pytest.approx(0.1)
    assert len({r["images_per_s"] for r in rows}) == 1 and rows[0]["images_per_s"] > 0  # one window
    written = read_log(tmp_path / "log.csv")
    assert list(written[0]) == LOG_FIELDS and [int(r["step"]) for r in written] == [4, 5, 6]
    assert log.flush() == [] and len(read_log(tmp_path / "log.csv")) == 3
    with pytest.raises(FloatingPointError, match="not finite at step 5;"):
        check_finite(rows)
    check_finite(rows[:1])  # finite: no error


def test_stop_signals_turn_ctrl_c_and_sigterm_into_a_request_and_restore_the_handlers():
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with StopSignals(Processes(0, 1, torch.device("cpu")), every=2, last=10) as stop:
            assert not stop.requested(1)
            os.kill(os.getpid(), sig)  # would stop pytest itself without the handler
            assert stop.requested(1) and stop.signal == sig
        assert {s: signal.getsignal(s) for s in before} == before


def test_truncate_log_keeps_the_rows_before_the_step(tmp_path):
    path = tmp_path / "val.csv"
    path.write_text("step,loss\n3,0.5\n6,0.4\n9,0.3\n")
    truncate_log(path, 7)
    assert read_log(path) == [{"step": "3", "loss": "0.5"}, {"step": "6", "loss": "0.4"}]


def test_smoke_cli_on_miniplaces(miniplaces, tmp_path, photos, cli):
    """`colorlib train --smoke` on real MiniPlaces: loss goes down; colorize uses the run."""
    env = {**os.environ, "COLORLIB_DATA": str(miniplaces.parent)}
    run = tmp_path / "smoke"
    p = subprocess.run([sys.executable, "-m", "colorlib", "train", "--smoke", "--out", str(run), "-q"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = read_log(run / "log.csv")
    first = np.mean([float(r["loss"]) for r in rows[:10]])
    last = np.mean([float(r["loss"]) for r in rows[-10:]])
    assert last < first
    state = torch.load(run / "checkpoint.pt", weights_only=True)  # plain data: nothing to unpickle
    assert state["step"] == 80 and state["meta"]["train"]["optimizer"] == "adamw"
    before = {f.name: f.read_bytes() for f in run.iterdir()}
    status, out, err = cli("train", "--smoke", "--out", run, "--resume")
    assert (status, out) == (0, f"{run} already finished at step 80 of 80; nothing to train\n"), err
    assert {f.name: f.read_bytes() for f in run.iterdir()} == before
    from PIL import Image

    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.jpg")
    p = subprocess.run([sys.executable, "-m", "colorlib", "colorize", str(tmp_path / "coffee.jpg"), "-o",
                        str(tmp_path / "out.png"), "--model", str(run / "checkpoint.pt")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "out.png").size == (600, 400)


def photo_folder(tmp_path: Path, photos) -> Path:
    """36 real 128x128 photos in a folder (no labels, no validation split)."""
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir(exist_ok=True)
    for name in ["astronaut", "coffee", "chelsea"]:
        img = photos[name]
        for j in range(12):
            Image.fromarray(img[j * 8 : j * 8 + 128, j * 8 : j * 8 + 128]).save(folder / f"{name}{j}.png")
    return folder


def _ddp_command(tmp_path, photos, steps: int, *extra: str) -> tuple[list[str], Path]:
    """torchrun --nproc_per_node 2 colorlib train on 36 real photos, on 127.0.0.1 (gloo)."""
    folder = photo_folder(tmp_path, photos)
    run = tmp_path / f"ddp-{steps}"
    with socket.socket() as sock:  # a free port on 127.0.0.1 for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port),
           "-m", "colorlib", "train", "--data", str(folder), "--out", str(run), "--config", "tiny",
           "--steps", str(steps), "--batch-size", "4", "--val-limit", "0", "--workers", "0", "-q", *extra]
    return cmd, run


DDP_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_ddp_on_cpu_with_two_processes(tmp_path, photos):
    """torchrun --nproc_per_node 2 trains with DistributedDataParallel (gloo) and rank 0 writes."""
    cmd, run = _ddp_command(tmp_path, photos, 4)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=DDP_ENV)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = read_log(run / "log.csv")
    assert len(rows) == 4 and float(rows[0]["images_per_s"]) > 0
    assert (run / "checkpoint.pt").exists() and (run / "model.safetensors").exists()


def test_ddp_a_signal_to_one_process_stops_both_at_the_same_step(tmp_path, photos):
    """SIGTERM to one worker (a scheduler, Ctrl-C): both agree to stop, rank 0 checkpoints, no hang."""
    import signal
    import time

    cmd, run = _ddp_command(tmp_path, photos, 5000, "--log-every", "2")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=DDP_ENV)
    try:
        deadline = time.time() + 240
        while not ((run / "log.csv").exists() and len(read_log(run / "log.csv")) >= 4):
            assert p.poll() is None and time.time() < deadline, "training did not start"
            time.sleep(0.2)
        workers = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        os.kill(int(workers[-1]), signal.SIGTERM)
        out, _ = p.communicate(timeout=120)
    finally:
        p.kill()
    assert out.count("interrupted: checkpoint written") == 1, out
    assert "exitcode: 130" in out  # an interrupted run exits 130, like a shell after Ctrl-C
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert 4 <= step < 5000 and len(read_log(run / "log.csv")) == step


def test_the_summary_lists_the_files_the_run_folder_holds(tmp_path, photos, cli, monkeypatch):
    """Issue 25: the summary's file list was fixed text (val.csv after a run on a plain folder,
    which has no validation photos). Ctrl-C at step 2 of a plain-folder run, then --resume."""
    import signal

    import colorlib.cli.train as command

    real = command.train

    def train(*a, callbacks=(), **kw):
        def ctrl_c(info):
            if isinstance(info, StepInfo) and info.step == 1 and not kw.get("resume"):
                os.kill(os.getpid(), signal.SIGINT)  # as a terminal sends it; the run's handler takes it
        return real(*a, callbacks=[*callbacks, ctrl_c], **kw)

    monkeypatch.setattr(command, "train", train)
    run = tmp_path / "run"
    args = ("train", "--data", photo_folder(tmp_path, photos), "--out", run, "--config", "tiny", "--steps", "6",
            "--batch-size", "4", "--log-every", "1", "--workers", "0", "--device", "cpu", "-q")
    for extra, status_wanted in (((), 130), (("--resume",), 0)):
        status, out, err = cli(*args, *extra)
        assert status == status_wanted, err
        assert "Traceback" not in err
        files = [name for name in command.RUN_FILES if (run / name).exists()]
        assert sorted(files) == sorted(p.name for p in run.iterdir()) and "val.csv" not in files
        assert out.splitlines()[-1] == f"run folder: {run} ({', '.join(files)})"
        assert ("model.safetensors" in files) == (status == 0)  # none after Ctrl-C


# -- what the optimiser trains (issue 27) --------------------------------------------------------
T = importlib.import_module("colorlib.train")  # the module (``colorlib.train`` is the function)


@pytest.mark.parametrize("optimizer", ["adadelta", "adamw"])
@pytest.mark.parametrize("variant", ["full", "baseline"])
def test_every_learned_parameter_is_in_the_optimiser_once(optimizer, variant):
    """Every parameter of the network (convolution and fully-connected weights and biases, batch
    norm's scale and shift, the classifier's) is trained, each by exactly one parameter group; weight
    decay applies to the weights of convolutions and fully-connected layers, never to a bias or to
    batch norm (make_optimizer's docstring; AdamW's decoupled decay, Loshchilov and Hutter)."""
    model = Colorizer(ModelConfig.preset("tiny", num_classes=4, variant=variant))
    opt = T.make_optimizer(model, tiny_config(optimizer=optimizer, weight_decay=0.05))
    assert isinstance(opt, {"adadelta": torch.optim.Adadelta, "adamw": torch.optim.AdamW}[optimizer])
    given = [id(p) for group in opt.param_groups for p in group["params"]]
    assert len(given) == len(set(given)), "a parameter is in two groups (it would be stepped twice)"
    names = {id(p): n for n, p in model.named_parameters()}
    missing = sorted(n for i, n in names.items() if i not in set(given))
    assert not missing, f"never trained: {missing[:6]}"
    assert set(given) == set(names)
    decay = {id(p): group["weight_decay"] for group in opt.param_groups for p in group["params"]}
    layer_weights = {id(m.weight) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    for n, p in model.named_parameters():
        want = 0.05 if id(p) in layer_weights else 0.0
        assert decay[id(p)] == want, f"{n}: weight decay {decay[id(p)]}, expected {want}"
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(id(m.weight) in decay and id(m.bias) in decay for m in norms)


def test_one_step_moves_every_parameter_that_has_a_gradient():
    """One training step (make_train_step with make_optimizer's ADADELTA, alpha = 1/300, labelled
    photos): every parameter tensor gets a gradient from Eq. 6 and changes, biases and batch norm
    included; an entry whose gradient is exactly 0 does not (an ADADELTA step, Zeiler 2012, is zero
    exactly where the gradient is, and there is no weight decay here)."""
    torch.manual_seed(0)
    model = Colorizer(ModelConfig.preset("tiny", num_classes=4)).train()
    L, ab, y = torch.rand(8, 1, 64, 64), torch.rand(8, 2, 32, 32), torch.tensor([0, 1, 2, 3] * 2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = T.make_optimizer(model, tiny_config())
    T.make_train_step(model, opt, T.autocast_for(torch.device("cpu"), "fp32"), 1 / 300)(L, ab, y)
    for n, p in model.named_parameters():
        assert p.grad is not None and bool(p.grad.any()), f"{n} has no gradient from Eq. 6"
        moved = p.detach() != before[n]
        assert bool(moved.any()), f"{n} has a gradient but did not change"
        assert not bool(moved[p.grad == 0].any()), f"{n} changed where its gradient is 0"


def test_the_classifier_gradient_is_eq6_by_hand():
    """A second guard on the class term reaching the classifier (the first: test_train_signal's
    class-loss run). For Eq. 6's alpha * cross-entropy, averaged over the labelled photos, the
    gradient on the last classifier layer's bias is alpha * (softmax(logits) - onehot(label)) / n
    and on its weights that times the layer's input: worked here from the logits (numpy), not by
    autograd. A label of -1 adds nothing. One optimiser step then moves that bias against it."""
    torch.manual_seed(1)
    model = Colorizer(ModelConfig.preset("tiny", num_classes=4)).eval()  # eval: no dropout
    last = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen = {}
    last.register_forward_hook(lambda m, args, out: seen.update(h=args[0].detach().double().numpy()))
    L, ab, y = torch.rand(5, 1, 64, 64), torch.rand(5, 2, 32, 32), torch.tensor([2, 0, -1, 3, 0])
    alpha = 0.25
    out = model(L)
    logits = out.logits.detach().double().numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    known = (y >= 0).numpy()
    onehot = np.eye(4)[np.where(known, y.numpy(), 0)]
    d_logits = alpha * (p - onehot) * known[:, None] / known.sum()
    model.zero_grad(set_to_none=True)
    joint_loss(out, ab, y, alpha)[0].backward()
    assert np.allclose(last.bias.grad.double().numpy(), d_logits.sum(0), rtol=1e-4, atol=1e-7)
    assert np.allclose(last.weight.grad.double().numpy(), d_logits.T @ seen["h"], rtol=1e-4, atol=1e-7)
    assert np.abs(d_logits.sum(0)).min() > 1e-4  # every class's bias has a gradient to follow
    # one step of the training loop's own optimiser moves the bias against that gradient
    before = last.bias.detach().clone()
    opt = T.make_optimizer(model, tiny_config())
    T.make_train_step(model, opt, T.autocast_for(torch.device("cpu"), "fp32"), alpha)(L, ab, y)
    assert np.array_equal(np.sign((last.bias.detach() - before).numpy()), -np.sign(d_logits.sum(0)))


@pytest.mark.parametrize("option, value, message", [
    ("--alpha", "-1", "alpha must be at least 0"),
    ("--min-scale", "0", r"min-scale must be in \(0, 1\]"),
    ("--min-scale", "2", r"min-scale must be in \(0, 1\]"),
    ("--limit", "-3", "limit must be at least 1, got -3"),  # read all photos but the last three
    ("--limit", "0", "limit must be at least 1, got 0"),  # was 'contains no images'
    ("--val-limit", "-1", "val-limit must be at least 0"),
    ("--shards", "0", "shards must be at least 1"),
    ("--warmup-steps", "-1", "warmup-steps must be at least 0"),
    ("--weight-decay", "-1", "weight-decay must be at least 0"),
    ("--lr", "-1", "lr must be above 0"),  # was torch's 'Invalid learning rate: -1.0'
    ("--workers", "-1", "workers must be at least 0"),  # was torch's num_workers message
])
def test_out_of_range_options_are_refused_before_anything_is_created(option, value, message, tmp_path, cli):
    """Found by the issue 25 break test: each of these trained (or failed in torch's words)."""
    import re

    status, out, err = cli("train", "--data", tmp_path, "--out", tmp_path / "run", "--config", "tiny",
                           "--steps", "2", "--device", "cpu", "-q", option, value)
    assert status == 2 and out == "" and len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "run").exists()
