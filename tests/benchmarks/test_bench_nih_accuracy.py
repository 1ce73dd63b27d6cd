"""The NIH accuracy benchmark scores valid, and the held-out test rows too when the table has them."""

import shutil
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "src" / "radvision" / "sample"


def test_valid_and_held_out_test_rows_are_scored(load_benchmark, tmp_path, capsys):
    root = tmp_path / "nih"
    shutil.copytree(SAMPLE / "images", root / "images")
    table = pd.read_csv(SAMPLE / "Data_Entry_sample.csv")
    last_train = table.index[table["split"] == "train"][-30:]
    table.loc[last_train, "split"] = "test"  # as the held-out images would be added
    table.to_csv(root / "Data_Entry_sample.csv", index=False)
    config = tmp_path / "tiny.yaml"
    config.write_text("data: {dataset: nih, image_size: 32, transforms: none}\nmodel: {backbone: simple_cnn}\n"
                      "optim: {epochs: 1, batch_size: 16}\nruntime: {device: cpu}\n")
    assert load_benchmark("bench_nih_accuracy").main(["--root", str(root), "--config", str(config), "--seeds", "0", "--peer-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "test: 30 images" in out and "recipe_test" in out and "peer_test" in out
    assert "mean test figure: recipe" in out and "(target >= 0.70)" in out


def test_a_bad_config_or_root_is_one_line_not_a_traceback(load_benchmark, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {epoch: 3}\n")
    assert load_benchmark("bench_nih_accuracy").main(["--root", str(SAMPLE), "--config", str(bad), "--no-peer", "--seeds", "0"]) == 2
    assert "error: Unknown config key 'optim.epoch'" in capsys.readouterr().err
    root = tmp_path / "no_images"
    root.mkdir()
    shutil.copy(SAMPLE / "Data_Entry_sample.csv", root)
    assert load_benchmark("bench_nih_accuracy").main(["--root", str(root), "--no-peer", "--seeds", "0"]) == 2
    assert "error: Image file not found" in capsys.readouterr().err
    (root / "images").mkdir()
    for name in pd.read_csv(root / "Data_Entry_sample.csv")["Image Index"]:
        shutil.copy(SAMPLE / "images" / name, root / "images" / name)
    (root / "images" / name).write_text("junk")  # unreadable: the peer's own loader names it too
    assert load_benchmark("bench_nih_accuracy").main(["--root", str(root), "--seeds", "0"]) == 2
    assert "error: Cannot read image file" in capsys.readouterr().err


def test_a_table_without_a_split_column_is_one_line(load_benchmark, tmp_path, capsys):
    root = tmp_path / "nih"
    shutil.copytree(SAMPLE / "images", root / "images")
    pd.read_csv(SAMPLE / "Data_Entry_sample.csv").drop(columns="split").to_csv(root / "Data_Entry_sample.csv",
                                                                                index=False)
    assert load_benchmark("bench_nih_accuracy").main(["--root", str(root), "--no-peer", "--seeds", "0"]) == 2
    assert "has no valid rows (a 'split' column, or official split lists)" in capsys.readouterr().err
