import argparse

import pytest
import torch

from radvision.errors import RadvisionError
from radvision.weights import read_state_dict


class NotATensor:
    pass


def test_a_pickled_object_is_refused_without_torchs_unsafe_advice(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"w": torch.zeros(2), "extra": NotATensor()}, path)
    with pytest.raises(RadvisionError, match="holds Python objects besides tensors") as err:
        read_state_dict(path)
    assert "weights_only=False" not in str(err.value)


def test_garbage_names_the_reader_error(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"junk" * 10)
    with pytest.raises(RadvisionError, match=r"Could not read weight file .*junk.pth \(\w+Error"):
        read_state_dict(path)
    path.write_bytes(bytes(range(256)) * 4)  # torch's unpickler fails on it: not called "Python objects"
    with pytest.raises(RadvisionError, match=r"not a torch or safetensors file, or it is damaged"):
        read_state_dict(path)


def test_a_checkpoint_with_a_settings_object_names_it_and_how_to_allow_it(tmp_path):
    path = tmp_path / "timm_style.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(RadvisionError, match=r"\(argparse.Namespace\).*add_safe_globals\(\[argparse.Namespace\]\)"):
        read_state_dict(path)
    with torch.serialization.safe_globals([argparse.Namespace]):  # what the message says to do, scoped
        assert list(read_state_dict(path)) == ["w"]


def test_a_folder_or_a_relative_path_is_named_as_the_user_meant_it(tmp_path, monkeypatch):
    with pytest.raises(RadvisionError, match="is a folder"):
        read_state_dict(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RadvisionError, match=f"{tmp_path}/nope.pth does not exist"):
        read_state_dict("nope.pth")


def test_the_state_dict_is_unwrapped_even_beside_top_level_tensors(tmp_path):
    # the pytorch/examples ImageNet layout: best_acc1 is a tensor next to the wrapped state dict
    path = tmp_path / "imagenet_example.pth"
    torch.save({"epoch": 90, "arch": "resnet18", "best_acc1": torch.tensor(69.7),
                "state_dict": {"module.conv1.weight": torch.ones(2)}, "optimizer": {"state": {}}}, path)
    assert list(read_state_dict(path)) == ["module.conv1.weight"]


def test_a_state_dict_round_trips(tmp_path):
    path = tmp_path / "ok.pt"
    torch.save({"layer.weight": torch.ones(3)}, path)
    assert torch.equal(read_state_dict(path)["layer.weight"], torch.ones(3))


def test_a_file_calling_into_a_blocked_module_is_named_as_such(tmp_path):
    import os

    class RunsCode:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "x": RunsCode()}, path)
    with pytest.raises(RadvisionError, match=r"refers to \w+\.getcwd, which weights-only loading refuses"):
        read_state_dict(path)
