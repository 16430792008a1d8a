"""A run folder's own files (config.json, log.csv) that are damaged or hand-edited: ``colorlib
info`` gives one line naming the folder, or leaves the damaged rows out; never a traceback
(issue 11 review, item 1: model metadata beside the weights)."""

import json

import pytest

from colorlib.checkpoint import save_model
from colorlib.model import Colorizer, ModelConfig
from colorlib.run import run_summary

GOOD = {"train": {"batch_size": 16, "world_size": 1},
        "run": {"train_images": 64, "steps_per_epoch": 4, "total_steps": 8, "step": 8, "device": "cpu"}}
LOG = "step,epoch,loss\n0,0.25,0.5\n7,2.0,0.25\n"


def run_folder(path, config, log: str = LOG):
    path.mkdir()
    save_model(Colorizer(ModelConfig.preset("tiny", num_classes=4)), path / "model.safetensors", half=False)
    (path / "config.json").write_text(json.dumps(config))
    (path / "log.csv").write_text(log)
    return path


def test_a_good_run_folder_shows_its_figures(tmp_path, cli):
    run = run_folder(tmp_path / "run", GOOD)
    t = run_summary(run)
    assert (t["steps"], t["images_seen"], t["epochs"], t["finished"]) == (8, 128, 2.0, True)
    assert t["final"] == {"step": 7, "epoch": 2.0, "loss": 0.25}


@pytest.mark.parametrize("config, says", [
    ({**GOOD, "run": "eight steps"}, "its config.json run is not a table of settings (str)"),
    ({**GOOD, "train": [16, 1]}, "its config.json train is not a table of settings (list)"),
    ({**GOOD, "train": {"batch_size": "16"}}, "its run's batch_size is '16', not a whole number"),
    ({**GOOD, "train": {"batch_size": True}}, "its run's batch_size is 'True', not a whole number"),
    ({**GOOD, "run": {**GOOD["run"], "step": 2.5}}, "its run's step is '2.5', not a whole number"),
    ({**GOOD, "run": {**GOOD["run"], "total_steps": -1}}, "its run's total_steps is '-1', not a whole number"),
])
def test_a_run_folder_with_settings_of_the_wrong_type_is_one_line(tmp_path, cli, config, says):
    run = run_folder(tmp_path / "run", config)
    status, out, err = cli("info", "--model", run)
    assert status == 2 and out == "" and "Traceback" not in err
    assert err == f"colorlib info: error: {run}: {says}\n"


def test_damaged_log_rows_are_left_out(tmp_path, cli):
    log = LOG + "x,1,2\n9.5,1,1\nnan,1,1\n" + "-3,1,1\n"
    run = run_folder(tmp_path / "run", GOOD, log)
    t = run_summary(run)
    assert t["final"] == {"step": 7, "epoch": 2.0, "loss": 0.25}
    (run / "config.json").write_bytes(b"\xff\xfe not json")  # not even text: not a run of ours
    assert run_summary(run) is None
    status, out, err = cli("info", "--model", run)
    assert status == 0 and err == ""
