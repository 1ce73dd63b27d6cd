import pytest


def test_a_size_below_a_models_minimum_is_an_argument_error(load_benchmark, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_benchmark("bench_train").main(["--models", "resnet18", "--size", "8", "--steps", "1", "--warmup", "0"])
    assert exit_.value.code == 2
    assert "resnet18 needs images of at least 32x32 pixels, got --size 8" in capsys.readouterr().err


def test_a_batch_of_one_is_an_argument_error(load_benchmark, capsys):
    with pytest.raises(SystemExit) as exit_:  # batch norm refused it with a traceback mid-run
        load_benchmark("bench_train").main(["--models", "resnet18", "--size", "32", "--batch-size", "1"])
    assert exit_.value.code == 2 and "--batch-size must be 2 or more (batch norm" in capsys.readouterr().err
