"""Fetch the book's JavaScript (widgets, require.js, MathJax, ONNX Runtime Web) from the npm registry into book/_vendor.

The built book must load nothing from the internet, so the scripts it needs are served
from its own ``_static`` folder (Sphinx ``html_static_path``, see ``_config.yml``). Each
package is pinned to a version and to the registry's sha512 integrity; ``npm pack`` downloads
the tarball (and checks it), we check it again and copy only the files the book uses.

    python scripts/vendor_assets.py          # idempotent: does nothing when already vendored
    python scripts/vendor_assets.py --force  # fetch again

Needs ``npm`` (Node.js) and the npm registry; the result is gitignored.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorlib.io import write_json  # noqa: E402

VENDOR = ROOT / "book" / "_vendor"

# name, version, sha512 integrity (from `npm view NAME@VERSION dist.integrity`), folder,
# and the members of the tarball's ``package/`` folder to keep (files or folders).
PACKAGES = [
    (
        "@jupyter-widgets/html-manager", "1.0.15",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        "html-manager",
        # embed-amd.js and the icon fonts it loads relative to itself (no maps, no non-AMD build)
        ["dist/embed-amd.js", "dist/*.woff2", "dist/*.woff", "dist/*.ttf", "dist/*.eot", "dist/*.svg",
         "LICENSE"],
    ),
    (
        "requirejs", "2.3.8",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        "requirejs",
        ["require.js", "README.md"],
    ),
    (
        "mathjax", "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        "mathjax",
        # the combined TeX build Sphinx uses, plus what it loads on demand (extensions, fonts, menu)
        ["es5/tex-mml-chtml.js", "es5/input", "es5/output/chtml", "es5/ui", "es5/a11y", "es5/sre",
         "es5/adaptors", "LICENSE"],
    ),
    (
        "onnxruntime-web", "1.30.0",
        "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ==",
        "onnxruntime-web",
        # the WebAssembly (SIMD) build only, for book/_js/colorizer.js: the classic-script API
        # (global `ort`), the module that loads the .wasm, and the .wasm (no WebGPU/WebGL builds)
        ["dist/ort.wasm.min.js", "dist/ort-wasm-simd-threaded.mjs", "dist/ort-wasm-simd-threaded.wasm",
         "LICENSE"],
    ),
]
STAMP = VENDOR / "vendored.json"


def _want() -> dict:
    return {name: version for name, version, *_ in PACKAGES}


def is_current() -> bool:
    try:
        return json.loads(STAMP.read_text()) == _want()
    except (OSError, ValueError):
        return False


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _pack(name: str, version: str, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("vendor_assets: npm (Node.js) is needed to fetch the book's JavaScript; "
                 "install it (apt-get install -y npm) and rerun")
    out = subprocess.run([npm, "pack", f"{name}@{version}", "--silent", "--pack-destination", str(dest)],
                         capture_output=True, text=True, cwd=dest, check=False)
    if out.returncode != 0:
        sys.exit(f"vendor_assets: npm pack {name}@{version} failed:\n{out.stderr.strip()}")
    return dest / out.stdout.strip().splitlines()[-1]


def _keep(member: str, patterns: list[str]) -> bool:
    from fnmatch import fnmatch

    rel = member.removeprefix("package/")
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") or fnmatch(rel, p) for p in patterns)


def vendor(force: bool = False) -> Path:
    if not force and is_current():
        return VENDOR
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    VENDOR.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, integrity, folder, keep in PACKAGES:
            tgz = _pack(name, version, Path(tmp))
            got = _integrity(tgz)
            if got != integrity:
                sys.exit(f"vendor_assets: {name}@{version} integrity {got} != pinned {integrity}")
            target = VENDOR / folder
            with tarfile.open(tgz) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and _keep(m.name, keep)]
                if not members:
                    sys.exit(f"vendor_assets: nothing to keep in {name}@{version}")
                for m in members:
                    m.name = m.name.removeprefix("package/")
                    tar.extract(m, target, filter="data")
            print(f"vendored {name}@{version}: {len(members)} files -> {target.relative_to(ROOT)}")
    write_json(STAMP, _want())  # written last, whole: it marks a complete vendoring
    return VENDOR


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--force", action="store_true", help="fetch again even if already vendored")
    vendor(p.parse_args().force)


if __name__ == "__main__":
    main()
