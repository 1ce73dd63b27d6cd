import pytest
from torch.utils.data import DataLoader, Dataset

from radvision.cli import exit_code
from radvision.errors import RadvisionError, did_you_mean, first_line, message

# the workers are forked from a process that has torch's threads: harmless for these datasets
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


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


class _Gone(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        open("/nonexistent/radvision-test/images.npy")  # e.g. a cache file removed under a spawned worker


def test_a_file_missing_in_a_worker_is_named_in_one_line(capsys):
    def command():
        next(iter(DataLoader(_Gone(), num_workers=1)))

    assert exit_code(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("radvision: error: file not found: [Errno 2]") and "/nonexistent/radvision-test" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_other_messages_are_kept_whole():
    assert message(RadvisionError("Caught in two minds.\nSecond line.")) == "Caught in two minds.\nSecond line."
    assert first_line(ValueError("")) == "ValueError"
    assert did_you_mean("resnt50", ["resnet50", "vgg16"]) == " (did you mean 'resnet50'?)"
