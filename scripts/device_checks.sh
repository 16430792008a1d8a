#!/usr/bin/env bash
# The checks that only a GPU can do, in one call of the lent machine (about 4 minutes on an H100):
#   1. training throughput, paper config 224x224, batch 256, real photos end to end, with the
#      model and the pixel work (crop, flip, sRGB -> L*a*b*) compiled: the figure of
#      benchmarks/README.md that still has to be measured with the compiled pixel work;
#   2. the paper's Table 3 on the GPU (`colorlib benchmark --device cuda`);
#   3. `colorlib evaluate` and `colorlib classify` with --device cuda, on photos of the pack.
#
# A call carries at most 64 MiB of working tree and the tracked files (the shipped weights
# above all) are 61.5 MiB of it, so the photos travel as a small pack: 400 MiniPlaces training
# JPEGs, 1.7 MiB (the throughput step decodes them once into GPU memory and draws random
# batches and crops from them, so their number does not change the figure).
# Here, once:  .venv/bin/python -c "from colorlib import data as D; D.save_pack('.gpu/check.pack',
#                  D.load_miniplaces(None, 'train', shards=1, limit=400))"      (.gpu/ is ignored)
# There:       bash scripts/device_checks.sh .gpu/check.pack                 (carry .gpu/check.pack)
# (Training data for a retrain, 2 x 60 MiB, travels only with colorlib/models moved out of the tree
# for those calls: training does not need the shipped weights.)
# Results go to $OUT (the device tool's folder; default /tmp/device-checks): checks.log,
# machine.txt, train_throughput.json, runtime.json, evaluate.json. Every step runs even
# when an earlier one fails; the exit status says whether all passed. A CPU dry run of the same
# commands, small:  DEVICE=cpu CONFIG=tiny BATCH=16 STEPS=2 SIZES="64" bash scripts/device_checks.sh PACK
set -uo pipefail
PACK=${1:?usage: scripts/device_checks.sh PACK   (a .pack from scripts/pack_device_data.py)}
OUT=${OUT:-/tmp/device-checks}
DEVICE=${DEVICE:-cuda}
CONFIG=${CONFIG:-paper}
BATCH=${BATCH:-256}
STEPS=${STEPS:-40}
SIZES=${SIZES:-224 512 1024 2048}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
failed=0
step() {  # step NAME COMMAND...: run it, its output also in $OUT/checks.log, remember a failure
    local name=$1
    shift
    echo "== $name: $*" | tee -a "$OUT/checks.log"
    if ! "$@" 2>&1 | tee -a "$OUT/checks.log"; then
        echo "== $name FAILED" | tee -a "$OUT/checks.log"
        failed=1
    fi
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)"; } \
    > "$OUT/machine.txt"
cat "$OUT/machine.txt"

step train_throughput $PY benchmarks/train_throughput.py --config "$CONFIG" --batch-size "$BATCH" \
    --steps "$STEPS" --warmup 10 --compile --no-eager --data "$PACK" --workers 15 --device "$DEVICE" \
    --json "$OUT/train_throughput.json"

# shellcheck disable=SC2086  # SIZES is a list
step runtime $PY -m colorlib benchmark --device "$DEVICE" --sizes $SIZES --json "$OUT/runtime.json" -q

photos="${TMPDIR:-/tmp}/device-check-photos"  # 64 PNGs: too many files to bring back
step photos $PY - "$PACK" "$photos" <<'EOF'
import sys
from pathlib import Path

from PIL import Image

from colorlib.data import decode, load_images

images, out = load_images(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
kept = 0
for blob, name in zip(images.blobs, images.names):
    rgb = decode(blob)
    if rgb is not None:
        Image.fromarray(rgb).save(out / (Path(name).stem + ".png"))
        kept += 1
    if kept == 64:
        break
print(f"{kept} photos written to {out}")
EOF
step evaluate $PY -m colorlib evaluate --data "$photos" --model miniplaces-full --model miniplaces-baseline \
    --gray --device "$DEVICE" --out "$OUT/evaluate.json" --force -q
step classify $PY -m colorlib classify "$photos"/*.png --device "$DEVICE" --json

[ "$failed" = 0 ] && echo "all device checks passed; results in $OUT" || echo "some device checks FAILED"
exit "$failed"
