import pytest
from torch.utils.data import DataLoader, Dataset

from radvision.cli import exit_code
from radvision.errors import RadvisionError, did_you_mean, first_line, message


class _Broken(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise RadvisionError("Cannot read image file x.png: truncated.")


@pytest.fixture(scope="module")
def worker_error() -> RadvisionError:
    with pytest.raises(RadvisionError) as info:
        next(iter(DataLoader(_Broken(), num_workers=1)))
    return info.value


def test_an_error_from_a_dataloader_worker_keeps_only_its_own_message(worker_error):
    exc = worker_error
    assert "Original Traceback" in str(exc)  # torch re-raises it with the worker's traceback as its message
    assert message(exc) == first_line(exc) == "Cannot read image file x.png: truncated."


def test_the_command_line_prints_the_worker_error_as_one_line(worker_error, capsys):
    def command():
        raise worker_error

    assert exit_code(command) == 2
    assert capsys.readouterr().err == "radvision: error: Cannot read image file x.png: truncated.\n"


def test_other_messages_are_kept_whole():
    assert message(RadvisionError("Caught in two minds.\nSecond line.")) == "Caught in two minds.\nSecond line."
    assert first_line(ValueError("")) == "ValueError"
    assert did_you_mean("resnt50", ["resnet50", "vgg16"]) == " (did you mean 'resnet50'?)"
