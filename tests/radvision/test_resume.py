import pytest

from radvision.config import load_config
from radvision.errors import RadvisionError
from radvision.resume import Progress, check_resume_config


def test_resume_schedule_rules():
    saved = load_config(None, ["optim.epochs=10"])
    mid = Progress(epoch=3, cycle=0, cycle_epoch=3)  # interrupted after epoch 3 of 10
    assert check_resume_config(saved, load_config(None, ["optim.epochs=5"]), mid, "r") is False  # 2 more epochs
    assert check_resume_config(saved, load_config(None, ["optim.epochs=2"]), mid, "r") is True  # nothing to train
    with pytest.raises(RadvisionError, match=r"optim.lr \(0.001 -> 0.0001\).*changes cycle 1, which has already"):
        check_resume_config(saved, load_config(None, ["optim.lr=1e-4"]), mid, "r")
    with pytest.raises(RadvisionError, match="gives cycle 1 2 epochs but 3 have already trained"):
        check_resume_config(saved, load_config(None, ["cycles=[{epochs: 2}, {epochs: 5}]"]), mid, "r")
    with pytest.raises(RadvisionError, match=r"runtime.seed \(42 -> 1\)"):  # the seed fixes the patient split
        check_resume_config(saved, load_config(None, ["optim.epochs=10", "runtime.seed=1"]), mid, "r")
    # a finished run goes on with a new cycle and its own learning rate
    finished = Progress(epoch=10, cycle=0, cycle_epoch=10)
    extended = load_config(None, ["cycles=[{epochs: 10}, {epochs: 5, lr: 1e-4}]", "runtime.device=cpu"])
    assert check_resume_config(saved, extended, finished, "r") is False


def test_a_refused_schedule_names_only_the_keys_that_rewrite_trained_epochs():
    saved = load_config(None, ["optim.epochs=4"])
    done = Progress(epoch=4, cycle=0, cycle_epoch=4)
    with pytest.raises(RadvisionError) as err:
        check_resume_config(saved, load_config(None, ["optim.epochs=6", "optim.lr=0.1"]), done, "r")
    assert "optim.lr (0.001 -> 0.1)" in str(err.value) and "optim.epochs" not in str(err.value)
