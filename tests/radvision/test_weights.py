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


def test_a_state_dict_round_trips(tmp_path):
    path = tmp_path / "ok.pt"
    torch.save({"layer.weight": torch.ones(3)}, path)
    assert torch.equal(read_state_dict(path)["layer.weight"], torch.ones(3))
