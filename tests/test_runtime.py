"""colorlib benchmark and benchmarks/runtime.py at small sizes: table layout and JSON, never timings."""

import json
import runpy
import sys
from pathlib import Path

import pytest

from colorlib.benchmark import PAPER_SECONDS, format_table
from colorlib.cli import main

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {"size", "pixels", "folded_s", "bn_s", "folded_runs", "bn_runs", "folded_peak_mb", "bn_peak_mb",
            "paper_cpu_s", "paper_gpu_s"}


def table_rows(text: str) -> dict[str, list[str]]:
    """Lines of the table that start with a size, by size: ``{"64x64": [cells...]}``."""
    rows = {}
    for line in text.splitlines():
        cells = line.split()
        if cells and "x" in cells[0] and cells[0].split("x")[0].isdigit():
            rows[cells[0]] = cells[1:]
    return rows


def test_cli_paper_network(tmp_path, capsys):
    out = tmp_path / "runtime.json"
    main(["benchmark", "--sizes", "64", "--repeats", "1", "--budget", "0", "--json", str(out), "-q"])
    text = capsys.readouterr().out
    assert "Image size" in text and "Pixels" in text and "folded" in text and "with BN" in text
    assert "i7-5960X" in text  # the paper's machine is named beside its figures
    rows = table_rows(text)
    assert list(rows) == ["64x64"]
    pixels, folded, bn, peak_folded, peak_bn, paper_cpu, paper_gpu = rows["64x64"]
    assert pixels == "4,096" and float(folded) > 0 and float(bn) > 0 and paper_cpu == paper_gpu == "-"
    r = json.loads(out.read_text())
    # The table's memory cells are the JSON's peaks rounded to whole MB (format ">9.0f").
    assert peak_folded == f"{r['sizes'][0]['folded_peak_mb']:.0f}"
    assert peak_bn == f"{r['sizes'][0]['bn_peak_mb']:.0f}"
    assert r["model"] == "paper" and r["config"]["width"] == 1.0 and r["config"]["global_size"] == 224
    assert r["device"] == "cpu" and r["machine"]["cpu_cores"] >= 1
    assert r["paper"]["seconds"]["224"] == [0.399, 0.080]
    (row,) = r["sizes"]
    assert ROW_KEYS <= set(row) and row["size"] == 64 and row["pixels"] == 4096
    assert len(row["folded_runs"]) == 1 and row["paper_cpu_s"] is None
    assert folded == f"{row['folded_s']:.3f}" and bn == f"{row['bn_s']:.3f}"


def test_script_with_a_shipped_model(tmp_path, monkeypatch, capsys):
    # the script as `python benchmarks/runtime.py ...` runs it, in this process (sizes still get their own)
    out = tmp_path / "runtime.json"
    script = ROOT / "benchmarks" / "runtime.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--model", "miniplaces-full", "--sizes", "96",
                                      "--repeats", "1", "--budget", "0", "--json", str(out), "-q"])
    runpy.run_path(str(script), run_name="__main__")
    assert list(table_rows(capsys.readouterr().out)) == ["96x96"]
    r = json.loads(out.read_text())
    assert r["model"] == "miniplaces-full" and r["config"]["width"] == 0.5
    assert [row["size"] for row in r["sizes"]] == [96]


def test_table_puts_the_paper_beside_ours():
    result = {"model": "paper", "device": "cpu", "machine": {"cpu": "test CPU", "cpu_cores": 2, "torch_threads": 2},
              "sizes": [{"size": s, "pixels": s * s, "folded_s": 1.0, "bn_s": 1.5, "folded_peak_mb": 10.0,
                         "bn_peak_mb": 20.0, "paper_cpu_s": PAPER_SECONDS.get(s, (None, None))[0],
                         "paper_gpu_s": PAPER_SECONDS.get(s, (None, None))[1]} for s in (224, 2048, 300)]}
    rows = table_rows(format_table(result))
    assert rows["224x224"] == ["50,176", "1.000", "1.500", "10", "20", "0.399", "0.080"]
    assert rows["2048x2048"][-2:] == ["20.116", "4.218"] and rows["300x300"][-2:] == ["-", "-"]


def test_bad_options(capsys):
    for args, words in ((["--sizes", "4"], "at least 8"), (["--model", "no-such-model"], "no-such-model")):
        with pytest.raises(SystemExit) as e:  # a usage error: exit status 2 (colorlib.cli.common)
            main(["benchmark", *args])
        assert e.value.code == 2
        assert words in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="free memory is read from /proc/meminfo")
def test_benchmark_refuses_a_size_beyond_this_machines_memory_and_a_bad_budget(tmp_path, cli):
    """Found by the issue 25 break test: --sizes 100000 (about 2 TB) started timing the smaller
    sizes, then a worker that the machine could not hold; --budget nan failed in a worker."""
    for args, says in ((["--sizes", "224", "100000"], "--sizes 100000: the network on a 100000x100000 image "
                                                     "needs about 1,990.0 GB; this machine has "),
                       (["--sizes", "8", "--budget", "nan"], "--budget must be a number of seconds, 0 or more"),
                       (["--sizes", "8", "--budget", "-1"], "--budget must be a number of seconds, 0 or more")):
        status, out, err = cli("benchmark", *args, "--json", tmp_path / "b.json")
        assert status == 2 and out == "" and len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "b.json").exists()
