"""Install weights brought back from the GPU machine, or trained here, into ``colorlib/models``.

    python scripts/install_models.py SRC_DIR:RUN_NAME:SHIPPED_NAME ...   # GPU machine results
    python scripts/install_models.py --run RUN_FOLDER:SHIPPED_NAME ...   # a `colorlib train` run

``SRC_DIR`` is a folder written by ``scripts/device_train.py`` (weights, ``logs.tar.gz``,
``results.json``). Each model is renamed, its metadata completed (name, training figures,
the device), written as gzipped float16 safetensors (``<name>.safetensors.gz``: the six
shipped GPU models must fit in 60 MiB together, all nine within 80 MiB, and gzip saves 8-10% of float16 weights
losslessly), and its training logs are copied to ``colorlib/models/logs/<name>.csv`` and
``<name>.val.csv``. A ``colorlib train`` run folder (``--run``; the colour-space comparison,
trained on this machine's CPU) is installed the same way, its training figures taken from its
own log and the machine recorded as its CPU model.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import csv  # noqa: E402

import torch  # noqa: E402

from colorlib.checkpoint import load_model, models_dir, save_model  # noqa: E402
from colorlib.device import cpu_name  # noqa: E402
from colorlib.io import write_bytes  # noqa: E402


def install_run(run: Path, name: str, dest: Path) -> None:
    """A ``colorlib train`` run folder -> ``dest/<name>.safetensors.gz`` and its logs."""
    model = load_model(run)
    meta = {k: v for k, v in model.meta.items() if k != "model"}
    with (run / "log.csv").open() as f:
        log = list(csv.DictReader(f))
    info = meta.pop("run")
    final = {k: float(v) for k, v in log[-1].items()}
    final["step"] = int(final["step"])
    tr = meta["train"]
    meta.update(name=name, run=run.name, device=f"{cpu_name()} (CPU)",
                torch=torch.__version__,
                training={"wall_s": info["wall_s"], "images_seen": info["step"] * tr["batch_size"],
                          "steps": info["step"], "train_images": info["train_images"],
                          "epochs": info["step"] / info["steps_per_epoch"], "final": final})
    save_model(model, dest / f"{name}.safetensors.gz", meta)
    for member, suffix in (("log.csv", ".csv"), ("val.csv", ".val.csv")):
        write_bytes(dest / "logs" / f"{name}{suffix}", (run / member).read_bytes())
    print(f"{run} -> {dest / (name + '.safetensors.gz')}")


def main() -> None:
    dest = models_dir()
    if sys.argv[1:2] == ["--run"]:
        for spec in sys.argv[2:]:
            run, name = spec.rsplit(":", 1)
            install_run(Path(run), name, dest)
        return
    for spec in sys.argv[1:]:
        src, run, name = spec.split(":")
        src = Path(src)
        results = json.loads((src / "results.json").read_text())
        info = results["models"][run]
        model = load_model(src / f"{run}.safetensors")
        meta = {k: v for k, v in model.meta.items() if k != "model"}
        meta.update(name=name, run=run, device=results["device"], torch=results["torch"],
                    training={**meta.get("training", {}), "epochs": results["epochs"],
                              "final": info["final_loss"]})
        save_model(model, dest / f"{name}.safetensors.gz", meta)
        with tarfile.open(src / "logs.tar.gz") as tar:
            for member, suffix in (("log.csv", ".csv"), ("val.csv", ".val.csv")):
                f = tar.extractfile(f"runs/{run}/{member}")
                write_bytes(dest / "logs" / f"{name}{suffix}", f.read())
        print(f"{src}/{run} -> {dest / (name + '.safetensors.gz')}")


if __name__ == "__main__":
    main()
