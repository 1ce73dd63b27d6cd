import pytest


def test_a_size_below_a_models_minimum_is_an_argument_error(load_benchmark, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_benchmark("bench_train").main(["--models", "resnet18", "--size", "8", "--steps", "1", "--warmup", "0"])
    assert exit_.value.code == 2
    assert "resnet18 needs images of at least 32x32 pixels, got --size 8" in capsys.readouterr().err


def test_a_batch_too_small_for_batch_norm_is_one_line(load_benchmark, capsys):
    # one 32 px image reaches resnet18's last batch norm as a 1x1 map: torch refuses it, the benchmark names why
    argv = ["--models", "resnet18", "--size", "32", "--batch-size", "1", "--steps", "1", "--warmup", "0", "--no-peer"]
    assert load_benchmark("bench_train").main(argv) == 2
    assert "resnet18 at --size 32, --batch-size 1 cannot train" in capsys.readouterr().err
