"""Pack MiniPlaces for the lent GPU machine, whose calls carry at most 64 MiB each.

The 45,000 training JPEGs are 172 MB; a call carries about 62 MB of data. So: decode every
training image here, drop the gray / low-colour ones (the same filter as training), re-encode
the rest as WebP (quality ``--quality``; about 3 KB per 128x128 image, mean |Delta ab| of
about 2 against the JPEG) and split them into ``--parts`` uncompressed tar files, each small
enough for one call. Members are named ``<index>_<label>.webp``. The last part also carries
``--val`` validation images, untouched JPEGs, named ``val/<index>_<label>.jpg``. Beside each tar, ``part-X.txt`` lists its training members with
their labels (so ``--data part-a.tar`` reads it as a labelled set).

    python scripts/pack_device_data.py --out .gpu --parts 2

The tars are build products: keep them out of git (``.gpu/`` is ignored).
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib import data as D  # noqa: E402
from colorlib.io import atomic_write, write_text  # noqa: E402

QUALITY = 72


def encode(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "WEBP", quality=QUALITY, method=6)
    return b.getvalue()


def add(tar: tarfile.TarFile, name: str, blob: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def main() -> None:
    global QUALITY
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=".gpu")
    p.add_argument("--parts", type=int, default=2)
    p.add_argument("--quality", type=int, default=QUALITY)
    p.add_argument("--val", type=int, default=1000)
    a = p.parse_args()
    QUALITY = a.quality
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    images = D.load_miniplaces(a.data, "train")
    dec = D.decode_all(images, 128)
    print(f"{len(images)} training images: {dec.removed_gray} gray/low-colour and {dec.removed_corrupt} "
          f"unreadable removed, {len(dec)} kept ({time.time() - t0:.0f} s)", flush=True)
    pixels = dec.pixels.permute(0, 2, 3, 1).numpy()
    with Pool(2, initializer=_set_quality, initargs=(QUALITY,)) as pool:
        blobs = pool.map(encode, list(pixels), chunksize=256)
    print(f"encoded WebP q{QUALITY}: {sum(map(len, blobs)) / 2**20:.1f} MiB "
          f"({np.mean([len(b) for b in blobs]):.0f} B per image, {time.time() - t0:.0f} s)", flush=True)
    order = np.random.default_rng(0).permutation(len(blobs))
    labels = dec.labels.numpy()
    val = D.load_miniplaces(a.data, "val", limit=a.val)
    for part, idx in enumerate(np.array_split(order, a.parts)):
        path = out / f"part-{chr(ord('a') + part)}.tar"

        def write_tar(tmp: Path, idx=idx, last=part == a.parts - 1) -> None:
            with tarfile.open(tmp, "w") as tar:
                for i in idx:
                    add(tar, f"train/{i:06d}_{labels[i]}.webp", blobs[i])
                if last:
                    for j, (blob, y) in enumerate(zip(val.blobs, val.labels)):
                        add(tar, f"val/{j:06d}_{y}.jpg", blob)

        atomic_write(path, write_tar)  # an interrupted pack never leaves a short tar behind
        write_text(path.with_suffix(".txt"), "".join(f"train/{i:06d}_{labels[i]}.webp {labels[i]}\n" for i in idx))
        print(f"{path}: {len(idx)} training images{' + val' if part == a.parts - 1 else ''}, "
              f"{path.stat().st_size / 2**20:.1f} MiB")
    write_text(out / "categories.txt", (D.miniplaces_dir(a.data) / "categories.txt").read_text())


def _set_quality(q: int) -> None:
    global QUALITY
    QUALITY = q


if __name__ == "__main__":
    main()
