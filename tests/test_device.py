"""``--device`` and ``device=``: only the exact names are devices (issue 11, item 6).

A name that is almost right (``CPU``, `` cpu``) is refused like a typo, never guessed at: the
contract says an unknown device is a usage error, and guessing would make ``cuda `` and ``cuda``
two spellings of one thing in some places and not in others.
"""

import pytest
import torch

from colorlib.checkpoint import load_model
from colorlib.device import DEVICE_HELP, resolve_device

NOT_DEVICES = ["gpu", "CPU", " cpu", "cpu ", "Cuda", "AUTO", "cuda:", "cuda:-1", "cuda:01", "cuda:²",
               "cuda:" + "9" * 5000, "", "cpu\n"]


@pytest.mark.parametrize("name", NOT_DEVICES)
def test_a_name_that_is_not_exactly_a_device_is_refused_in_one_line(name):
    with pytest.raises(ValueError) as e:
        resolve_device(name)
    message = str(e.value)
    assert message.startswith("unknown device ") and message.endswith(f"use {DEVICE_HELP}")
    assert "\n" not in message.replace(repr(name), "") and len(message) < 200 + len(repr(name))


@pytest.mark.parametrize("name", [3, None, 1.5])
def test_a_device_that_is_not_a_name_is_refused(name):
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device(name)


def test_the_exact_names_are_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(ValueError, match="this PyTorch sees no CUDA GPU"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("name", ["gpu", "CPU"])
def test_load_model_refuses_an_unknown_device_in_one_line_naming_the_valid_ones(name):
    with pytest.raises(ValueError) as e:
        load_model("miniplaces-baseline", device=name)
    assert str(e.value) == f"unknown device {name!r}: use {DEVICE_HELP}"


@pytest.mark.parametrize("name", ["CPU", " cpu", "cpu "])
def test_the_cli_refuses_a_near_name_as_a_usage_error(name, cli, tmp_path):
    status, out, err = cli("classify", tmp_path / "x.png", "--device", name)
    assert status == 2 and out == ""
    assert err == f"colorlib classify: error: argument --device: unknown device {name!r}: use {DEVICE_HELP}\n"
