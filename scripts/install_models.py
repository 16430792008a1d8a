"""Install weights brought back from the GPU machine into ``colorlib/models``.

    python scripts/install_models.py SRC_DIR:RUN_NAME:SHIPPED_NAME ...

``SRC_DIR`` is a folder written by ``scripts/device_train.py`` (weights, ``logs.tar.gz``,
``results.json``). Each model is renamed, its metadata completed (name, training figures,
the device), written as gzipped float16 safetensors (``<name>.safetensors.gz``: the six
shipped models must fit in 60 MiB together, and gzip saves 8-10% of float16 weights
losslessly), and its training logs are copied to ``colorlib/models/logs/<name>.csv`` and
``<name>.val.csv``.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib.checkpoint import load_model, models_dir, save_model  # noqa: E402
from colorlib.io import write_bytes  # noqa: E402


def main() -> None:
    dest = models_dir()
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
