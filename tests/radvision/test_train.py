import json

import numpy as np
import pandas as pd
import pytest

from radvision.config import load_config
from radvision.errors import RadvisionError
from radvision.train import Trainer

CLASSES = ["Bright", "Stripe"]


def tiny_config(tmp_path, csv, *extra):
    return load_config(None, [
        "data.dataset=csv", f"data.csv={csv}", "data.image_size=32", "data.transforms=none",
        "model.backbone=simple_cnn", "optim.batch_size=8", "optim.epochs=1", "optim.lr=0.01",
        "runtime.device=cpu", "runtime.progress=false", "runtime.seed=0", "schedule.plateau_patience=null",
        f"output.run_dir={tmp_path / 'run'}", *extra,
    ])


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory, make_images):
    return make_images(tmp_path_factory.mktemp("data"))


def test_fit_writes_complete_run_dir(tmp_path, data_csv):
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2")).fit()
    for name in ("config.yaml", "metrics.csv", "model.safetensors", "optimizer.pt", "trainer_state.json",
                 "thresholds.json", "valid_metrics.csv", "test_metrics.csv", "test_per_class.csv",
                 "plots/curves.png", "plots/roc_test.png", "plots/confusion_valid.png"):
        assert (run / name).is_file(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2]
    assert {"train_loss", "valid_loss", "mean_auroc", "lr", "cycle"} <= set(metrics.columns)
    assert np.isfinite(metrics["train_loss"]).all()
    resolved = load_config(run / "config.yaml")
    assert resolved.data.classes == CLASSES
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["epoch"] == 2 and state["finished"] is True
    summary = pd.read_csv(run / "test_metrics.csv").set_index("metric")["value"]
    assert "mean_auroc" in summary.index
    assert not [p for p in run.rglob("*.tmp")]


def test_resume_continues_without_repeating(tmp_path, data_csv):
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=1")).fit()
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1]
    with pytest.raises(RadvisionError, match="already holds a run"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2")).fit()
    Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2"), resume=run).fit()
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2]
    # everything finished: resuming again trains nothing
    Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2"), resume=run).fit()
    resumed = pd.read_csv(run / "metrics.csv")
    assert resumed["epoch"].tolist() == [1, 2]
    # weights, optimizer state and shuffling are restored: the same numbers as an uninterrupted run
    straight = Trainer(tiny_config(tmp_path / "straight", data_csv, "optim.epochs=2")).fit()
    straight = pd.read_csv(straight / "metrics.csv")
    np.testing.assert_allclose(resumed["train_loss"], straight["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed["valid_loss"], straight["valid_loss"], rtol=1e-5)


def test_early_stopping_and_restore_best(tmp_path, data_csv):
    # min_delta so large that only the first epoch counts as an improvement
    cfg = tiny_config(tmp_path, data_csv, "optim.epochs=6", "schedule.monitor=loss", "schedule.patience=2",
                      "schedule.min_delta=100", "model.strategy=layerwise", "data.channels=1", "model.in_chans=1")
    trainer = Trainer(cfg)
    run = trainer.fit()
    assert trainer.model.unfrozen_stages == 2  # layerwise: one more backbone stage per epoch after the first
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2, 3]
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["best_epoch"] == 1 and state["stopped_early"] is True
    assert (run / "model.safetensors").read_bytes() == (run / "best.safetensors").read_bytes()


def test_cycles_with_strategy_and_class_weights(tmp_path, data_csv):
    cfg = tiny_config(tmp_path, data_csv, "cycles=[{epochs: 1, strategy: frozen, lr: 0.01},"
                      " {epochs: 1, strategy: full, lr: 0.001, class_weights: {Stripe: 3.0}}]")
    trainer = Trainer(cfg)
    run = trainer.fit()
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["cycle"].tolist() == [1, 2]
    assert metrics["lr"].tolist() == pytest.approx([0.01, 0.001])
    assert all(p.requires_grad for p in trainer.model.backbone.parameters())


def test_python_api_with_datasets(tmp_path, data_csv):
    from radvision.data import ImageDataset, build_transforms, read_csv_table

    table = read_csv_table(data_csv)
    tf = build_transforms("none", 32, train=False)
    train, valid = ImageDataset(table.subset("train"), tf), ImageDataset(table.subset("valid"), tf)
    cfg = tiny_config(tmp_path, data_csv, "schedule.monitor=macro_f1", "loss.pos_weight=auto",
                      "loss.name=weighted_bce")
    run = Trainer(cfg).fit(train, valid)
    assert load_config(run / "config.yaml").data.classes == CLASSES
    assert not (run / "test_metrics.csv").exists()
    assert (run / "valid_metrics.csv").is_file()


def test_unknown_class_weight_name(tmp_path, data_csv):
    cfg = tiny_config(tmp_path, data_csv, "loss.class_weights={Strpe: 2.0}")
    with pytest.raises(RadvisionError, match="did you mean 'Stripe'"):
        Trainer(cfg).fit()


def test_source_without_valid_rows_splits_valid_off_train_by_patient(tmp_path, make_images):
    from radvision.train import build_datasets

    csv = make_images(tmp_path, n=20, fractions=(0.8, 0.0, 0.2))  # train + test only, as NIH's official lists
    train, valid, test, classes = build_datasets(tiny_config(tmp_path, csv, "data.split={train: 0.75, valid: 0.25}"))
    frames = [ds.table.frame for ds in (train, valid, test)]
    assert [len(f) for f in frames] == [12, 4, 4]
    assert not set(frames[0]["patient_id"]) & set(frames[1]["patient_id"])


def test_monitor_min_positives_selects_on_well_supported_classes(tmp_path, make_images):
    csv = make_images(tmp_path, n=32)
    frame = pd.read_csv(csv)
    frame["Rare"] = 0
    frame.loc[frame.index[frame["split"] == "valid"][0], "Rare"] = 1  # one valid positive: a noisy AUROC
    frame.loc[frame.index[frame["split"] == "train"][:3], "Rare"] = 1
    frame.to_csv(csv, index=False)
    cfg = tiny_config(tmp_path, csv, "optim.epochs=2", "schedule.monitor_min_positives=2",
                      "data.classes=[Bright, Stripe, Rare]")
    run = Trainer(cfg).fit()
    metrics = pd.read_csv(run / "metrics.csv")
    wide = metrics[["auroc/Bright", "auroc/Stripe"]].mean(axis=1)
    np.testing.assert_allclose(metrics["monitored"], wide)  # Rare (1 positive) is left out of selection
    np.testing.assert_allclose(metrics["mean_auroc"], metrics[["auroc/Bright", "auroc/Stripe", "auroc/Rare"]]
                               .mean(axis=1))  # metrics.csv keeps the all-class mean
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["best"] == pytest.approx(metrics["monitored"].max())


def test_nih_reader_receives_classes_so_no_finding_can_be_an_output(tmp_path, make_images):
    from radvision.train import build_datasets

    csv = make_images(tmp_path, n=12, fractions=(0.5, 0.5, 0.0))
    src = pd.read_csv(csv)
    (tmp_path / "images").mkdir()
    for p in src["path"]:
        (tmp_path / p).rename(tmp_path / "images" / p.split("/")[-1])
    labels = ["Effusion" if b else "No Finding" for b in src["Bright"]]
    pd.DataFrame({"Image Index": [p.split("/")[-1] for p in src["path"]], "Finding Labels": labels,
                  "Patient ID": src["patient_id"], "split": src["split"]}).to_csv(tmp_path / "Data_Entry_x.csv",
                                                                                   index=False)
    cfg = load_config(None, ["data.dataset=nih", f"data.root={tmp_path}", "data.classes=[Effusion, No Finding]",
                             "data.image_size=32", "data.transforms=none", f"output.run_dir={tmp_path / 'run'}"])
    train, valid, test, classes = build_datasets(cfg)
    assert classes == ["Effusion", "No Finding"]
    y = train.table.labels()
    np.testing.assert_array_equal(y[:, 1], 1 - y[:, 0])
    assert len(train) == 6 and len(valid) == 6 and test is None


def test_unknown_backbone_fails_before_any_image_is_read(tmp_path, monkeypatch, data_csv):
    import radvision.train as train

    def read_nothing(cfg):
        raise AssertionError("the data table was read before the backbone name was checked")

    monkeypatch.setattr(train, "build_datasets", read_nothing)
    with pytest.raises(RadvisionError, match="Unknown backbone 'resnet5'; did you mean resnet50"):
        Trainer(tiny_config(tmp_path, data_csv, "model.backbone=resnet5")).fit()
    assert not (tmp_path / "run").exists()
