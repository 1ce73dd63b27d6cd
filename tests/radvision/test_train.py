import json

import numpy as np
import pandas as pd
import pytest
import torch

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
    assert state["outputs_written"] is True and state["staged"] == []  # no checkpoint left to promote
    summary = pd.read_csv(run / "test_metrics.csv").set_index("metric")["value"]
    assert "mean_auroc" in summary.index
    assert not [p for p in run.rglob("*.tmp")]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_resume_with_loader_processes_draws_the_same_augmentations(tmp_path, data_csv):
    extra = ("data.transforms=default", "optim.num_workers=2", "schedule.restore_best=false")
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=1", *extra)).fit()
    Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=3", *extra), resume=run).fit()
    straight = Trainer(tiny_config(tmp_path / "straight", data_csv, "optim.epochs=3", *extra)).fit()
    resumed, straight = pd.read_csv(run / "metrics.csv"), pd.read_csv(straight / "metrics.csv")
    np.testing.assert_allclose(resumed["train_loss"], straight["train_loss"], rtol=1e-5)


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
    # min_delta so large that only the first epoch restarts the patience count
    cfg = tiny_config(tmp_path, data_csv, "optim.epochs=6", "schedule.monitor=loss", "schedule.patience=2",
                      "schedule.min_delta=100", "model.strategy=layerwise", "data.channels=1", "model.in_chans=1")
    trainer = Trainer(cfg)
    run = trainer.fit()
    assert trainer.model.unfrozen_stages == 2  # layerwise: one more backbone stage per epoch after the first
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2, 3]
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["stopped_early"] is True
    assert state["best_epoch"] == int(metrics.loc[metrics["valid_loss"].idxmin(), "epoch"])  # the lowest loss
    assert (run / "model.safetensors").read_bytes() == (run / "best.safetensors").read_bytes()


def test_min_delta_restarts_patience_but_the_best_epoch_is_the_best_value(tmp_path, data_csv, monkeypatch):
    scripted = iter([0.50, 0.60, 0.61, 0.615, 0.40, 0.40])  # small gains after epoch 2: below min_delta
    monkeypatch.setattr(Trainer, "_monitored", lambda self, row, y_true, y_prob: next(scripted))
    cfg = tiny_config(tmp_path, data_csv, "optim.epochs=6", "schedule.patience=2", "schedule.min_delta=0.02")
    run = Trainer(cfg).fit()
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["epoch"] == 4 and state["stopped_early"] is True  # two epochs without a 0.02 gain
    assert state["best_epoch"] == 4 and state["best"] == pytest.approx(0.615)  # not epoch 2 (0.60)



def test_small_gains_that_add_up_past_min_delta_restart_patience(tmp_path, data_csv, monkeypatch):
    scripted = iter([0.800, 0.806, 0.812, 0.818, 0.824])  # +0.006 each: +0.012 every two epochs
    monkeypatch.setattr(Trainer, "_monitored", lambda self, row, y_true, y_prob: next(scripted))
    cfg = tiny_config(tmp_path, data_csv, "optim.epochs=5", "schedule.patience=2", "schedule.min_delta=0.01")
    state = json.loads((Trainer(cfg).fit() / "trainer_state.json").read_text())
    assert state["epoch"] == 5 and state["stopped_early"] is False and state["best_epoch"] == 5


def test_a_run_written_before_newer_keys_resumes_and_predicts_as_it_trained(tmp_path, data_csv):
    import yaml

    from radvision.predict import load_run

    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=1", "model.backbone=inception_v3",
                              "data.image_size=75", "optim.batch_size=16")).fit()
    assert load_run(run)[0].backbone.input_norm.__class__.__name__ == "InputNorm"
    # the run as an older radvision wrote it: no model.input_norm, backbone_lr_mult 0.1 recorded
    raw = yaml.safe_load((run / "config.yaml").read_text())
    del raw["model"]["input_norm"]
    raw["model"]["backbone_lr_mult"] = 0.1
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    assert isinstance(load_run(run)[0].backbone.input_norm, torch.nn.Identity)  # as it was trained then
    resumed = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2", "model.backbone=inception_v3",
                                  "data.image_size=75", "optim.batch_size=16"), resume=run)
    resumed.fit()  # not refused: auto and the default input_norm take the run's own values
    assert resumed.config.model.backbone_lr_mult == 0.1 and resumed.config.model.input_norm is False


def test_resuming_with_input_norm_changed_from_the_default_is_refused_by_name(tmp_path, data_csv):
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=1")).fit()
    with pytest.raises(RadvisionError, match="model.input_norm"):  # was: the run's true adopted, the false dropped
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2", "model.input_norm=false"), resume=run).fit()


def test_cycles_with_strategy_and_class_weights(tmp_path, data_csv):
    cfg = tiny_config(tmp_path, data_csv, "cycles=[{epochs: 1, strategy: frozen, lr: 0.01},"
                      " {epochs: 1, strategy: full, lr: 0.001, class_weights: {Stripe: 3.0}}]")
    trainer = Trainer(cfg)
    run = trainer.fit()
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["cycle"].tolist() == [1, 2]
    assert metrics["lr"].tolist() == pytest.approx([0.01, 0.001])
    assert all(p.requires_grad for p in trainer.model.backbone.parameters())


def test_the_valid_loss_keeps_the_run_wide_class_weights_in_every_cycle(tmp_path, data_csv, monkeypatch):
    """A cycle's own class_weights change its training loss only: the valid loss that best epoch, early stopping
    and the plateau compare across cycles is measured the same way in every cycle."""
    seen = []
    real_evaluate = Trainer._evaluate

    def evaluate(self, model, loss_fn, loader, split):
        if split == "valid" and loss_fn is not None:  # None: the final prediction, scored without a loss
            weights = getattr(loss_fn, "class_weights", None)
            seen.append(None if weights is None else weights.tolist())
        return real_evaluate(self, model, loss_fn, loader, split)

    monkeypatch.setattr(Trainer, "_evaluate", evaluate)
    Trainer(tiny_config(tmp_path, data_csv, "schedule.monitor=loss", "loss.class_weights={Bright: 2.0}",
                        "cycles=[{epochs: 1}, {epochs: 1, class_weights: {Stripe: 50.0}}]")).fit()
    assert seen == [[2.0, 1.0], [2.0, 1.0]]


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


def test_a_valid_split_without_known_labels_has_an_undefined_loss_not_zero(tmp_path, data_csv, caplog):
    from radvision.data import ImageDataset, build_transforms, read_csv_table

    table = read_csv_table(data_csv)
    unknown = table.subset("valid")
    unknown.frame[CLASSES] = np.nan
    tf = build_transforms("none", 32, train=False)
    cfg = tiny_config(tmp_path, data_csv, "schedule.monitor=loss", "optim.epochs=2")
    run = Trainer(cfg).fit(ImageDataset(table.subset("train"), tf), ImageDataset(unknown, tf))
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["valid_loss"].isna().all() and metrics["train_loss"].gt(0).all()  # valid_loss was 0.0
    assert caplog.text.count("The valid loss is undefined: the valid split has no known label") == 1
    assert json.loads((run / "trainer_state.json").read_text())["best_epoch"] is None


def test_class_weights_of_zero_for_every_class_are_refused(tmp_path, data_csv):
    with pytest.raises(RadvisionError, match="every class the weight 0"):
        Trainer(tiny_config(tmp_path, data_csv, "loss.class_weights={Bright: 0, Stripe: 0}")).fit()
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_class_without_positives_in_a_split_is_named(tmp_path, data_csv, caplog, monkeypatch):
    table = pd.read_csv(data_csv)
    table.loc[table["split"] != "test", "Stripe"] = 0  # Stripe positive only in test
    table["path"] = [str(data_csv.parent / p) for p in table["path"]]
    table.to_csv(tmp_path / "labels.csv", index=False)
    import radvision.train as train_module

    seen = {}
    real_build_loss = train_module.build_loss
    monkeypatch.setattr(train_module, "build_loss",
                        lambda *a: seen.setdefault("loss", real_build_loss(*a)))
    Trainer(tiny_config(tmp_path, tmp_path / "labels.csv", "loss.class_weights=auto")).fit()
    assert "No positive label for Stripe among the 16 train images: the model cannot learn" in caplog.text
    assert "No positive label for Stripe among the 8 valid images" in caplog.text
    assert "among the 8 test images" not in caplog.text
    weights = seen["loss"].class_weights.tolist()
    assert weights == pytest.approx([1.0, 1.0])  # Stripe gets the mean weight, not most of the loss


class _Unnamed(torch.utils.data.Dataset):
    """A dataset that knows no class names (no table, no `classes`)."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.mark.parametrize("extra, build, message", [
    (["data.classes=[Stripe,Bright]"], {}, "differs from the datasets' classes ['Bright', 'Stripe']"),
    (["data.image_size=48"], {}, "images of shape (3, 32, 32) but the config says (3, 48, 48)"),
    ([], {"channels": 1}, "images of shape (1, 32, 32) but the config says (3, 32, 32)"),
    ([], {"return_meta": True}, "needs dataset items (image, labels)"),
    ([], {"empty_valid": True}, "valid dataset passed to fit() is empty"),
    ([], {"empty_test": True}, "test dataset passed to fit() is empty"),  # was a torch.cat crash after training
    ([], {"policy": "U-MultiClass"}, "labels must be 1, 0 or blank"),
    # valid / test were not checked: reordered columns were scored against the wrong classes without a word
    ([], {"valid_order": ["Stripe", "Bright"]},
     "The valid dataset's classes ['Stripe', 'Bright'] differ from the train dataset's ['Bright', 'Stripe']"),
    ([], {"valid_size": 40}, "The valid dataset gives images of shape (3, 40, 40) but the config says (3, 32, 32)"),
    # a train dataset that names no classes takes data.classes; the valid one must follow those
    (["data.classes=[Bright,Stripe]"], {"valid_order": ["Stripe", "Bright"], "train_unnamed": True},
     "The valid dataset's classes ['Stripe', 'Bright'] differ from the train dataset's ['Bright', 'Stripe']"),
    ([], {"policy": "U-MultiClass", "valid_uncertain": True}, "The valid label -1 for 'Bright'"),
])
def test_datasets_passed_to_fit_are_checked_against_the_config(tmp_path, make_images, extra, build, message):
    from radvision.data import ImageDataset, build_transforms, read_csv_table

    csv = make_images(tmp_path / "d", n=16)
    frame = pd.read_csv(csv)
    frame.loc[0, "Bright"] = -1  # an uncertain train label: kept as -1 by U-MultiClass only
    if build.get("valid_uncertain"):  # only valid keeps a -1: train is fine, so the valid table is what is named
        frame.loc[0, "Bright"] = 0
        frame.loc[frame.index[frame["split"] == "valid"][0], "Bright"] = -1
    frame.to_csv(csv, index=False)
    table = read_csv_table(csv, policy=build.get("policy", "U-Ignore"))
    tf = build_transforms("none", 32, train=False, channels=build.get("channels", 3))
    meta = build.get("return_meta", False)
    train = ImageDataset(table.subset("train"), tf, return_meta=meta)
    if build.get("train_unnamed"):
        train = _Unnamed(train)
    valid_table = table.subset("valid")
    if build.get("valid_order"):
        frame[["path", *build["valid_order"], "patient_id", "split"]].to_csv(tmp_path / "reordered.csv", index=False)
        valid_table = read_csv_table(tmp_path / "reordered.csv", root=csv.parent).subset("valid")
    valid_tf = build_transforms("none", build["valid_size"], train=False) if build.get("valid_size") else tf
    valid = ImageDataset(valid_table.subset(np.zeros(4, bool)) if build.get("empty_valid") else valid_table, valid_tf)
    test = ImageDataset(table.subset("test").subset(np.zeros(len(table.subset("test")), bool)), tf) \
        if build.get("empty_test") else None
    with pytest.raises(RadvisionError) as err:
        Trainer(tiny_config(tmp_path, csv, *extra)).fit(train, valid, test)
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, message", [
    ("loss.class_weights={stripe: 2.0}", "unknown class 'stripe' (did you mean 'Stripe'?)"),
    ("loss.class_weights={Stripe: -2.0}", "'loss.class_weights' gives 'Stripe' the weight -2.0"),
    ("thresholds.min_labels=3", "thresholds.min_labels is 3 but there are only 2 classes"),
    ("thresholds.cardinality=2.5", "thresholds.cardinality is 2.5 but there are only 2 classes"),
])
def test_class_dependent_settings_fail_before_any_training(tmp_path, data_csv, override, message):
    with pytest.raises(RadvisionError) as err:
        Trainer(tiny_config(tmp_path, data_csv, override)).fit()
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()


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


def test_a_valid_split_carved_empty_out_of_the_source_train_rows_says_so(tmp_path, make_images):
    from radvision.train import split_tables

    csv = make_images(tmp_path, n=8, fractions=(1.0, 0.0, 0.0))  # the source names train rows only
    with pytest.raises(RadvisionError, match=r"Carving train and valid out of the source's 8 train images \(8 "
                                             r"patients\).*left no 'valid' image; give it a larger fraction"):
        split_tables(tiny_config(tmp_path, csv, "data.split={train: 0.99, valid: 0.01}"))


def test_the_suggested_class_list_is_whole(tmp_path, make_images):
    csv = make_images(tmp_path, n=16)
    frame = pd.read_csv(csv)
    long_names = {c: c + "_with_a_rather_long_class_name_for_the_message_that_goes_on_and_on" for c in ("Bright", "Stripe")}
    frame = frame.rename(columns=long_names).assign(Never=np.nan)
    frame.to_csv(csv, index=False)
    with pytest.raises(RadvisionError) as err:
        Trainer(tiny_config(tmp_path, csv, "data.classes=[" + ",".join([*long_names.values(), "Never"]) + "]")).fit()
    assert "data.classes=[" + ", ".join(long_names.values()) + "]" in str(err.value)


def test_an_image_file_in_train_and_valid_under_two_patient_ids_is_warned_about(tmp_path, make_images, caplog):
    from radvision.train import split_tables

    csv = make_images(tmp_path, n=12)
    frame = pd.read_csv(csv)
    again = frame.assign(patient_id="site2_" + frame["patient_id"], split=frame["split"].shift(-6).fillna("train"))
    pd.concat([frame, again]).to_csv(csv, index=False)  # the second table numbers patients apart
    parts, _ = split_tables(tiny_config(tmp_path, csv))
    assert set(parts["train"].frame["path"]) & set(parts["valid"].frame["path"])
    assert "image file(s) are also train images" in caplog.text  # nothing said so: 0 patients shared


def test_monitor_min_positives_selects_on_well_supported_classes(tmp_path, make_images, caplog):
    csv = make_images(tmp_path, n=32)
    frame = pd.read_csv(csv)
    frame["Rare"] = 0
    frame.loc[frame.index[frame["split"] == "valid"][0], "Rare"] = 1  # one valid positive: a noisy AUROC
    frame.loc[frame.index[frame["split"] == "train"][:3], "Rare"] = 1
    frame.to_csv(csv, index=False)
    cfg = tiny_config(tmp_path, csv, "optim.epochs=2", "schedule.monitor_min_positives=2",
                      "data.classes=[Bright, Stripe, Rare]")
    with caplog.at_level("INFO", logger="radvision.train"):
        run = Trainer(cfg).fit()
    metrics = pd.read_csv(run / "metrics.csv")
    # the epoch log labels the selection value as such, beside metrics.csv's all-class mean
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1 "))
    assert (f"mean_auroc {metrics['mean_auroc'][0]:.4f}  monitored {metrics['monitored'][0]:.4f} "
            "(mean_auroc over classes with >= 2 valid positives)") in line
    wide = metrics[["auroc/Bright", "auroc/Stripe"]].mean(axis=1)
    np.testing.assert_allclose(metrics["monitored"], wide)  # Rare (1 positive) is left out of selection
    np.testing.assert_allclose(metrics["mean_auroc"], metrics[["auroc/Bright", "auroc/Stripe", "auroc/Rare"]]
                               .mean(axis=1))  # metrics.csv keeps the all-class mean
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["best"] == pytest.approx(metrics["monitored"].max())
    assert (f"Restored the best epoch ({state['best_epoch']}) by mean_auroc over classes with >= 2 valid "
            "positives") in caplog.text


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


def test_fpn_over_several_backbones_fails_before_any_image_is_read(tmp_path, monkeypatch, data_csv):
    _no_data(monkeypatch)
    with pytest.raises(RadvisionError, match="model.head 'fpn' works with one backbone, not 2"):
        Trainer(tiny_config(tmp_path, data_csv, "model.backbone=[simple_cnn,resnet18]", "model.head=fpn")).fit()


def test_unknown_backbone_fails_before_any_image_is_read(tmp_path, monkeypatch, data_csv):
    import radvision.train as train

    def read_nothing(cfg):
        raise AssertionError("the data table was read before the backbone name was checked")

    monkeypatch.setattr(train, "build_datasets", read_nothing)
    with pytest.raises(RadvisionError, match="Unknown backbone 'resnet5'; did you mean resnet50"):
        Trainer(tiny_config(tmp_path, data_csv, "model.backbone=resnet5")).fit()
    assert not (tmp_path / "run").exists()


# -- resume: the config must describe the run --------------------------------------------------------------


def _no_data(monkeypatch):
    import radvision.train as train

    def read_nothing(cfg):
        raise AssertionError("the data table was read before the config was checked")

    monkeypatch.setattr(train, "build_datasets", read_nothing)


def test_resume_with_other_model_or_data_fails_before_data_and_keeps_the_record(tmp_path, data_csv, monkeypatch):
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=1")).fit()
    record = (run / "config.yaml").read_text()
    _no_data(monkeypatch)
    changed = tiny_config(tmp_path, data_csv, "model.backbone=resnet18", "loss.name=focal", "optim.epochs=2",
                          "runtime.progress=true")
    with pytest.raises(RadvisionError) as err:
        Trainer(changed, resume=run).fit()
    msg = str(err.value)
    assert "model.backbone ('simple_cnn' -> 'resnet18')" in msg and "loss.name ('bce' -> 'focal')" in msg
    assert "output.run_dir" in msg and "new run" in msg
    assert "optim.epochs" not in msg and "runtime.progress" not in msg  # extending and steering are allowed
    assert (run / "config.yaml").read_text() == record


def test_resume_cannot_rewrite_trained_cycles(tmp_path, data_csv, monkeypatch):
    cycles = "cycles=[{epochs: 1, strategy: frozen}, {epochs: 1}, {epochs: 1, lr: 0.001}]"
    run = Trainer(tiny_config(tmp_path, data_csv, cycles)).fit()
    record = (run / "config.yaml").read_text()
    _no_data(monkeypatch)
    with pytest.raises(RadvisionError, match=r"cycles \(\[\{epochs: 1, strategy: frozen\}, .* -> \[\]\).*changes cycle 1"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2"), resume=run).fit()
    assert (run / "config.yaml").read_text() == record


def test_resume_asking_for_fewer_epochs_trains_nothing_and_keeps_the_schedule(tmp_path, data_csv, caplog):
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2")).fit()
    with caplog.at_level("INFO", logger="radvision.train"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=1", "thresholds.min_precision=0.5"), resume=run).fit()
    assert "already finished epoch 2 and the config asks for 1 epoch(s); raise optim.epochs" in caplog.text
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2]
    record = load_config(run / "config.yaml")
    assert record.optim.epochs == 2  # the record still describes the run
    assert record.thresholds.min_precision == 0.5  # a free key: thresholds are chosen again on every fit
    caplog.clear()
    with caplog.at_level("INFO", logger="radvision.train"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2"), resume=run).fit()
    assert "already finished epoch 2 of 2; raise optim.epochs" in caplog.text
    # a new cycle after the trained one extends the run
    Trainer(tiny_config(tmp_path, data_csv, "cycles=[{epochs: 2}, {epochs: 1, lr: 0.001}]"), resume=run).fit()
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2, 3] and metrics["lr"].iloc[-1] == pytest.approx(0.001)


def test_resume_of_a_missing_run_or_training_over_a_run_fails_before_data(tmp_path, data_csv, monkeypatch):
    _no_data(monkeypatch)
    with pytest.raises(RadvisionError, match="Cannot resume: .*nope.* holds no trainer_state.json"):
        Trainer(tiny_config(tmp_path, data_csv), resume=tmp_path / "nope").fit()
    assert not (tmp_path / "nope").exists()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trainer_state.json").write_text("{}")
    with pytest.raises(RadvisionError, match="already holds a run"):
        Trainer(tiny_config(tmp_path, data_csv)).fit()


def test_overwrite_keeps_the_old_run_when_a_check_fails(tmp_path, data_csv):
    run = Trainer(tiny_config(tmp_path, data_csv)).fit()
    with pytest.raises(RadvisionError, match="did you mean 'Stripe'"):
        Trainer(tiny_config(tmp_path, data_csv, "output.overwrite=true", "loss.class_weights={Strpe: 2.0}")).fit()
    assert (run / "trainer_state.json").is_file() and (run / "metrics.csv").is_file()


def test_too_small_images_fail_before_data_and_suggest_another_backbone(tmp_path, data_csv, monkeypatch):
    _no_data(monkeypatch)
    with pytest.raises(RadvisionError, match="simple_cnn needs data.image_size of at least 16, got 8") as err:
        Trainer(tiny_config(tmp_path, data_csv, "data.image_size=8")).fit()
    assert "such as" not in str(err.value)  # no backbone of the registry takes 8x8: do not suggest simple_cnn
    with pytest.raises(RadvisionError, match="resnet18 needs .* at least 32, got 24.*such as simple_cnn\\.$"):
        Trainer(tiny_config(tmp_path, data_csv, "data.image_size=24", "model.backbone=resnet18")).fit()
    with pytest.raises(RadvisionError, match="timm/vit_tiny_patch16_224 takes only 224x224 images .* got "
                                             "data.image_size 32; set data.image_size=224"):
        Trainer(tiny_config(tmp_path, data_csv, "model.backbone=timm/vit_tiny_patch16_224")).fit()


# -- weighted sampling, pretrained lists, log lines --------------------------------------------------------


def test_weighted_sampler_trains_and_resumes_exactly(tmp_path, data_csv):
    weighted = Trainer(tiny_config(tmp_path / "w", data_csv, "optim.epochs=2", "data.sampler=weighted"))
    straight = pd.read_csv(weighted.fit() / "metrics.csv")
    assert weighted.sampler is not None
    shuffled = pd.read_csv(Trainer(tiny_config(tmp_path / "s", data_csv, "optim.epochs=2")).fit() / "metrics.csv")
    assert not np.allclose(straight["train_loss"], shuffled["train_loss"])
    run = Trainer(tiny_config(tmp_path / "r", data_csv, "optim.epochs=1", "data.sampler=weighted")).fit()
    Trainer(tiny_config(tmp_path / "r", data_csv, "optim.epochs=2", "data.sampler=weighted"), resume=run).fit()
    resumed = pd.read_csv(run / "metrics.csv")
    np.testing.assert_allclose(resumed["train_loss"], straight["train_loss"], rtol=1e-5)


def test_weighted_sampler_is_shared_out_across_processes():
    import torch
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import TensorDataset

    from radvision.train import build_train_loader

    y = np.array([[1, 0]] * 2 + [[0, 1]] * 12 + [[0, 0]] * 10, dtype=np.float32)  # 6 batches: 3 per process
    cfg = load_config(None, ["data.sampler=weighted"])
    loader, sampler = build_train_loader(cfg, TensorDataset(torch.arange(len(y))), y, batch_size=4)
    sampler.generator.manual_seed(7)
    whole = [int(i) for i in sampler]
    shards = []
    for rank in (0, 1):
        sampler.generator.manual_seed(7)
        shard = prepare_data_loader(loader, num_processes=2, process_index=rank, put_on_device=False)
        assert shard.batch_sampler.batch_sampler.sampler is sampler  # accelerate keeps the custom sampler
        shards.append([int(i) for (batch,) in shard for i in batch])
    # every process draws the same sample and takes every other batch of it
    assert sorted(shards[0] + shards[1]) == sorted(whole)
    assert shards[0][:4] == whole[:4] and shards[1][:4] == whole[4:8]


def test_pretrained_list_loads_one_file_per_backbone(tmp_path):
    import torch
    from safetensors.torch import save_file

    from radvision.backbones import create_backbone
    from radvision.train import build_model_from_config

    donor = create_backbone("simple_cnn")
    save_file({k: v.contiguous() for k, v in donor.model.state_dict().items()}, tmp_path / "cnn.safetensors")
    cfg = load_config(None, ["model.backbone=[simple_cnn, simple_cnn]",
                             f"model.pretrained=[null, {tmp_path / 'cnn.safetensors'}]"])
    assert cfg.model.pretrained == [None, str(tmp_path / "cnn.safetensors")]
    model = build_model_from_config(cfg, CLASSES, pretrained=cfg.model.pretrained)
    first, second = (b.model.blocks[0][0].weight for b in model.backbone.backbones)
    assert torch.equal(second, donor.model.blocks[0][0].weight) and not torch.equal(first, second)


def test_overwrite_keeps_the_old_run_when_an_image_cannot_be_read(tmp_path, make_images):
    csv = make_images(tmp_path)
    run = Trainer(tiny_config(tmp_path, csv)).fit()
    record = (run / "config.yaml").read_text()
    (tmp_path / "img" / "000.png").write_bytes(b"not a png")  # a train image, found only when it is loaded
    with pytest.raises(RadvisionError, match="000.png"):
        Trainer(tiny_config(tmp_path, csv, "output.overwrite=true", "optim.epochs=2")).fit()
    assert (run / "trainer_state.json").is_file() and (run / "config.yaml").read_text() == record
    (tmp_path / "img" / "000.png").unlink()
    make_images(tmp_path)  # the image is readable again: the overwrite goes through
    Trainer(tiny_config(tmp_path, csv, "output.overwrite=true", "optim.epochs=2")).fit()
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2]
    assert load_config(run / "config.yaml").optim.epochs == 2


def test_chexpert_official_valid_csv_becomes_the_test_split(tmp_path):
    import importlib.util
    from pathlib import Path

    from radvision.train import build_datasets

    spec = importlib.util.spec_from_file_location(
        "chexpert_study", Path(__file__).resolve().parents[2] / "examples" / "chexpert_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    root = study.make_synthetic_chexpert(tmp_path, n_patients=24, n_valid=8, size=32)
    cfg = load_config(None, ["data.dataset=chexpert", f"data.root={root}", "data.image_size=32",
                             "runtime.progress=false"])
    train, valid, test, _ = build_datasets(cfg)
    assert test is not None and len(test) > 0
    assert all("/valid/" in str(p) for p in test.table.paths)
    assert not any("/valid/" in str(p) for p in [*train.table.paths, *valid.table.paths])
    assert not set(train.table.frame["patient_id"]) & set(valid.table.frame["patient_id"])


# -- what a run says about itself ------------------------------------------------------------------------


def test_a_fresh_run_with_no_epochs_is_refused_before_any_data(tmp_path, data_csv, monkeypatch):
    _no_data(monkeypatch)
    with pytest.raises(RadvisionError, match="Nothing to train: optim.epochs is 0"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=0")).fit()
    with pytest.raises(RadvisionError, match="every cycle has epochs: 0"):
        Trainer(tiny_config(tmp_path, data_csv, "cycles=[{epochs: 0}]")).fit()
    assert not (tmp_path / "run").exists()


def test_an_undefined_monitor_neither_stops_training_nor_picks_a_best_epoch(tmp_path, make_images, caplog):
    csv = make_images(tmp_path / "d", n=16)
    frame = pd.read_csv(csv)
    frame.loc[frame["split"] == "valid", ["Bright", "Stripe"]] = 0  # no positives: AUROC is undefined
    frame.to_csv(csv, index=False)
    cfg = tiny_config(tmp_path, csv, "optim.epochs=3", "schedule.patience=1", "schedule.restore_best=true")
    run = Trainer(cfg).fit()
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["epoch"] == 3 and not state["stopped_early"] and state["best_epoch"] is None
    assert caplog.text.count("is undefined on the valid split") == 1
    assert "keeps the last epoch's weights" in caplog.text



def test_a_per_image_monitor_with_no_fully_labelled_valid_image_names_the_blanks(tmp_path, make_images, caplog):
    csv = make_images(tmp_path / "d", n=16)
    frame = pd.read_csv(csv)
    frame.loc[frame["split"] == "valid", "Stripe"] = np.nan  # masked blanks: no valid row is complete
    frame.to_csv(csv, index=False)
    Trainer(tiny_config(tmp_path, csv, "optim.epochs=2", "schedule.monitor=samples_f1")).fit()
    assert "no valid image has every label known" in caplog.text and "data.unmentioned=negative" in caplog.text


@pytest.mark.parametrize("cache", [False, True])
def test_skipped_images_are_listed_in_the_run_folder(tmp_path, make_images, cache):
    csv = make_images(tmp_path / "d", n=16)
    (tmp_path / "d" / "img" / "001.png").write_bytes(b"not a png")  # a train image
    frame = pd.read_csv(csv)
    frame.loc[len(frame)] = {"path": "img/missing.png", "Bright": 1, "Stripe": 0, "patient_id": "px",
                             "split": "valid"}
    frame.to_csv(csv, index=False)
    extra = [f"data.cache_dir={tmp_path / 'cache'}"] if cache else []
    run = Trainer(tiny_config(tmp_path, csv, "data.on_error=skip", *extra)).fit()
    skipped = pd.read_csv(run / "skipped_images.csv")
    assert list(skipped.columns) == ["split", "path", "reason", "error"]
    names = skipped["path"].map(lambda p: p.rsplit("/", 1)[1])
    assert sorted(zip(skipped["split"], names, skipped["reason"], strict=True)) == [
        ("train", "001.png", "unreadable"), ("valid", "missing.png", "missing")]
    assert skipped["error"].str.len().gt(0).all()
    # a new run over the same folder whose images all read leaves no stale list behind
    (tmp_path / "d" / "img" / "001.png").unlink()
    frame[~frame["path"].isin(["img/001.png", "img/missing.png"])].to_csv(csv, index=False)
    Trainer(tiny_config(tmp_path, csv, "data.on_error=skip", "output.overwrite=true", *extra)).fit()
    assert not (run / "skipped_images.csv").exists()


def test_resume_writes_into_the_resume_folder_and_says_output_run_dir_is_not_used(tmp_path, data_csv, caplog):
    import logging

    run = Trainer(tiny_config(tmp_path, data_csv)).fit()
    other = tmp_path / "elsewhere"
    with caplog.at_level(logging.INFO, logger="radvision.train"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2", f"output.run_dir={other}"), resume=run).fit()
    assert f"output.run_dir {other} is not used" in caplog.text
    assert not other.exists() and json.loads((run / "trainer_state.json").read_text())["epoch"] == 2


def test_run_metrics_follow_the_whole_decision_rule(tmp_path, data_csv):
    run = Trainer(tiny_config(tmp_path, data_csv, "thresholds.top_k=1", "thresholds.min_labels=1")).fit()
    for split in ("valid", "test"):
        summary = pd.read_csv(run / f"{split}_metrics.csv").set_index("metric")["value"]
        assert summary["label_cardinality_pred"] == 1.0  # exactly one label per image
    train = pd.read_csv(data_csv).query("split == 'train'")
    recorded = json.loads((run / "thresholds.json").read_text())["train_cardinality"]
    assert recorded == pytest.approx(train[CLASSES].sum(axis=1).mean())


def test_unmentioned_negative_reaches_the_reader(tmp_path, make_images, caplog):
    from radvision.train import build_datasets

    csv = make_images(tmp_path / "d", n=16)
    frame = pd.read_csv(csv)
    frame.loc[::2, "Stripe"] = np.nan  # not mentioned
    frame.loc[1, "Stripe"] = -1
    frame.to_csv(csv, index=False)

    def labels(*extra):
        parts = build_datasets(tiny_config(tmp_path, csv, "data.policy=U-Ignore", *extra))[:3]
        return pd.concat([ds.table.frame for ds in parts]).set_index("path").sort_index()["Stripe"]

    masked, negative = labels(), labels("data.unmentioned=negative")
    assert masked.isna().sum() == 9 and negative.isna().sum() == 1  # the -1 stays masked under U-Ignore
    assert (negative[masked.isna() & negative.notna()] == 0).all()
    with caplog.at_level("WARNING", logger="radvision.train"):
        build_datasets(load_config(None, ["data.unmentioned=negative"]))
    assert "changes nothing for dataset 'nih_sample'" in caplog.text


def test_frontal_only_keeps_frontal_and_blank_views_of_a_generic_table(tmp_path, make_images, caplog):
    import logging

    from radvision.train import build_datasets

    csv = make_images(tmp_path / "d", n=16)
    frame = pd.read_csv(csv)
    frame["view"] = ["PA", "AP", "LATERAL", "", "AP SUPINE", "LL", "Frontal", "PA"] * 2
    frame.to_csv(csv, index=False)
    with caplog.at_level(logging.INFO, logger="radvision.train"):
        train, valid, test, _ = build_datasets(tiny_config(tmp_path, csv, "data.frontal_only=true"))
    kept = pd.concat([ds.table.frame for ds in (train, valid, test)])
    assert len(kept) == 12 and not kept["view"].isin(["LATERAL", "LL"]).any()
    assert "dropping 4 of 16 rows whose view is not frontal (LATERAL: 2, LL: 2)" in caplog.text



def test_resume_compares_data_folders_not_their_spelling(tmp_path, make_images, monkeypatch):
    csv = make_images(tmp_path / "d", n=16)
    monkeypatch.chdir(tmp_path)
    run = Trainer(tiny_config(tmp_path, "d/labels.csv", f"output.run_dir={tmp_path / 'run'}")).fit()
    assert load_config(run / "config.yaml").data.csv == str(csv)  # recorded as an absolute path
    monkeypatch.chdir(tmp_path / "d")  # elsewhere, the same file spelt another way
    Trainer(tiny_config(tmp_path, "labels.csv", "optim.epochs=2"), resume=run).fit()
    assert json.loads((run / "trainer_state.json").read_text())["epoch"] == 2
    with pytest.raises(RadvisionError, match="data.csv"):  # another file is still a change
        Trainer(tiny_config(tmp_path, str(make_images(tmp_path / "e", n=16)), "optim.epochs=3"), resume=run).fit()


class _Killed(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way catches it."""


@pytest.mark.parametrize("where", ["save_optimizer", "promote"])
def test_a_run_killed_while_saving_an_epoch_resumes_exactly(tmp_path, data_csv, monkeypatch, where):
    from radvision.rundir import RunDir

    straight = pd.read_csv(Trainer(tiny_config(tmp_path / "straight", data_csv, "optim.epochs=3")).fit()
                           / "metrics.csv")
    real, calls = getattr(RunDir, where), []

    def dies_in_epoch_2(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # epoch 2: before trainer_state.json (save_optimizer) or just after it (promote)
            raise _Killed
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RunDir, where, dies_in_epoch_2)
    cfg = tiny_config(tmp_path, data_csv, "optim.epochs=3")
    with pytest.raises(_Killed):
        Trainer(cfg).fit()
    monkeypatch.setattr(RunDir, where, real)
    run = tmp_path / "run"
    assert list(run.glob("*.pending"))  # the interrupted epoch's files were left staged
    Trainer(cfg, resume=run).fit()
    resumed = pd.read_csv(run / "metrics.csv")
    assert resumed["epoch"].tolist() == [1, 2, 3] and not list(run.glob("*.pending"))
    np.testing.assert_allclose(resumed["train_loss"], straight["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed["valid_loss"], straight["valid_loss"], rtol=1e-5)


def test_a_diverging_run_stops_naming_the_epoch_and_the_learning_rate(tmp_path, data_csv):
    import re

    with pytest.raises(RadvisionError) as err:
        Trainer(tiny_config(tmp_path, data_csv, "optim.name=sgd", "optim.lr=1e12", "optim.epochs=4")).fit()
    found = re.search(r"Training diverged in epoch (\d): .*optim.lr / the cycle's lr, now 1e\+12", str(err.value))
    assert found, str(err.value)
    state = tmp_path / "run" / "trainer_state.json"
    confirmed = json.loads(state.read_text())["epoch"] if state.exists() else 0
    assert confirmed == int(found.group(1)) - 1  # the diverged epoch was not saved


@pytest.mark.parametrize("extra, backbone_lr", [
    ([], 1e-2),  # auto, from scratch: the backbone learns at the full rate
    (["model.backbone_lr_mult=0.25"], 2.5e-3),
    (["model.pretrained={weights}"], 1e-3),  # auto with pretrained weights: lr x 0.1
])
def test_backbone_learning_rate_follows_backbone_lr_mult(tmp_path, data_csv, extra, backbone_lr):
    from radvision.backbones import create_backbone
    from radvision.train import build_model_from_config, build_optimizer

    weights = tmp_path / "cnn.pth"
    torch.save(create_backbone("simple_cnn").model.state_dict(), weights)
    cfg = tiny_config(tmp_path, data_csv, *(e.format(weights=weights) for e in extra))
    model = build_model_from_config(cfg, CLASSES, pretrained=cfg.model.pretrained)
    rates = {g["name"]: g["lr"] for g in build_optimizer(cfg, model, 1e-2).param_groups}
    assert rates["backbone"] == pytest.approx(backbone_lr) and rates["head"] == pytest.approx(1e-2)


def test_compiled_training_saves_plain_weights_that_predict_loads(tmp_path, data_csv, monkeypatch):
    # Dynamo's tracing and its OptimizedModule wrapper (the part that renames parameters `_orig_mod.*`) on the
    # eager backend, so the test does not wait on inductor's C++ build
    from radvision.predict import predict

    calls = []
    real_compile = torch.compile

    def eager_compile(model, **kwargs):
        calls.append(type(model).__name__)
        return real_compile(model, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2", "runtime.compile=true")).fit()
    assert calls, "runtime.compile=true did not compile the model"
    assert np.isfinite(pd.read_csv(run / "metrics.csv")["train_loss"]).all()
    from safetensors.torch import load_file

    assert not [k for k in load_file(run / "model.safetensors") if "_orig_mod" in k]
    frame = pd.read_csv(data_csv)
    frame["path"] = [str(data_csv.parent / p) for p in frame["path"]]
    probs = predict(run, frame, device="cpu")
    assert len(probs) == len(frame) and np.isfinite(probs[CLASSES].to_numpy()).all()


def test_own_column_names_and_a_class_no_image_labels(tmp_path, make_images):
    from radvision.train import build_datasets

    csv = make_images(tmp_path / "d", n=16)
    frame = pd.read_csv(csv).rename(columns={"path": "file", "patient_id": "subject"})
    frame["Edema"] = np.nan  # a class the labeler knows but no report of this corpus mentions
    frame.to_csv(csv, index=False)
    names = ("data.path_column=file", "data.patient_column=subject")
    parts = build_datasets(tiny_config(tmp_path, csv, *names, "data.classes=[Bright, Stripe]"))
    assert parts[3] == ["Bright", "Stripe"] and parts[0].table.frame["patient_id"].iloc[0].startswith("p")
    with pytest.raises(RadvisionError, match=r"No training image has a label for 'Edema'.*data.classes=\[Bright, "
                                             r"Stripe\].*data.unmentioned=negative.*U-Zeros / U-Ones"):
        Trainer(tiny_config(tmp_path, csv, *names)).fit()


def test_a_python_config_resumes_and_an_old_run_with_an_unlabelled_class_goes_on(tmp_path, make_images, caplog):
    from radvision.config import Config

    csv = make_images(tmp_path / "d", n=16)

    def by_hand(epochs):
        c = Config()
        c.data.dataset, c.data.csv, c.data.image_size, c.data.transforms = "csv", str(csv), 32, "none"
        c.model.backbone, c.optim.epochs, c.optim.batch_size = "simple_cnn", epochs, 8
        c.runtime.device, c.runtime.progress, c.output.run_dir = "cpu", False, str(tmp_path / "hand")
        return c

    config = by_hand(1)
    Trainer(config).fit()
    assert config.model.in_chans is None  # resolved on the trainer's copy: the caller's config can be reused
    assert len(pd.read_csv(Trainer(by_hand(2), resume=tmp_path / "hand").fit() / "metrics.csv")) == 2
    # a run that trained a class without training labels (before that was refused) still resumes, with a warning
    frame = pd.read_csv(csv)
    frame["Edema"] = np.where(frame["split"] == "train", np.nan, 1.0)
    frame.to_csv(csv, index=False)
    with pytest.MonkeyPatch.context() as monkey:
        monkey.setattr("radvision.train.check_training_labels", lambda y, names, **kwargs: None)
        Trainer(tiny_config(tmp_path, csv)).fit()  # as the old code trained it ...
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    state.pop("labels_checked")  # ... which wrote no labels_checked
    (tmp_path / "run" / "trainer_state.json").write_text(json.dumps(state))
    with caplog.at_level("WARNING", logger="radvision.train"):
        Trainer(tiny_config(tmp_path, csv, "optim.epochs=2"), resume=tmp_path / "run").fit()
    assert "No training image has a label for 'Edema'" in caplog.text and "it goes on" in caplog.text
    # a run saved with the check in place trained with labels: losing them since is refused on resume too
    Trainer(tiny_config(tmp_path, csv, "data.classes=[Bright, Stripe]", "output.run_dir=" + str(tmp_path / "new"))).fit()
    pd.read_csv(csv).assign(Stripe=np.nan).to_csv(csv, index=False)
    with pytest.raises(RadvisionError, match="No training image has a label for 'Stripe'"):
        Trainer(tiny_config(tmp_path, csv, "data.classes=[Bright, Stripe]", "optim.epochs=2"),
                resume=tmp_path / "new").fit()


def test_no_class_with_a_label_does_not_suggest_an_empty_class_list():
    from radvision.train import check_training_labels

    with pytest.raises(RadvisionError, match="No training image has a label for 'A', 'B'") as err:
        check_training_labels(np.full((3, 2), np.nan), ["A", "B"])
    assert "data.classes=[]" not in str(err.value) and "data.unmentioned=negative" in str(err.value)


def test_a_tie_on_the_monitored_metric_goes_to_the_lower_valid_loss(tmp_path, data_csv, monkeypatch):
    monkeypatch.setattr(Trainer, "_monitored", lambda self, row, y_true, y_prob: 1.0)  # AUROC saturated
    cfg = tiny_config(tmp_path, data_csv, "optim.epochs=4", "schedule.patience=null")
    run = Trainer(cfg).fit()
    metrics = pd.read_csv(run / "metrics.csv")
    state = json.loads((run / "trainer_state.json").read_text())
    assert metrics["valid_loss"].nunique() == 4  # the loss moves while the metric stands still
    assert state["best_epoch"] == int(metrics.loc[metrics["valid_loss"].idxmin(), "epoch"])
    assert state["best_loss"] == pytest.approx(metrics["valid_loss"].min(), abs=1e-4)


def test_the_epoch_log_names_the_loss_once_when_it_is_monitored(tmp_path, data_csv, caplog):
    with caplog.at_level("INFO", logger="radvision.train"):
        Trainer(tiny_config(tmp_path, data_csv, "schedule.monitor=loss")).fit()
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1 "))
    assert line.count("loss") == 2 and line.endswith("(best)")  # train_loss, valid_loss


def test_a_last_batch_of_one_image_is_left_out(tmp_path, data_csv):
    from torch.utils.data import TensorDataset

    from radvision.train import build_train_loader

    cfg = tiny_config(tmp_path, data_csv)
    nine = TensorDataset(torch.zeros(9, 1), torch.zeros(9, 1))
    loader, _ = build_train_loader(cfg, nine, np.zeros((9, 1)), batch_size=8)
    assert loader.drop_last and len(loader) == 1  # BatchNorm cannot train on a batch of one
    loader, _ = build_train_loader(cfg, TensorDataset(torch.zeros(10, 1)), np.zeros((10, 1)), batch_size=8)
    assert not loader.drop_last and len(loader) == 2
    # several processes: accelerate pads the last batch, and drop_last would drop whole batches there
    loader, _ = build_train_loader(cfg, nine, np.zeros((9, 1)), processes=2, batch_size=8)
    assert not loader.drop_last


def test_source_splits_without_train_rows_or_with_gaps_are_named(tmp_path, make_images, caplog):
    from radvision.train import build_datasets

    csv = make_images(tmp_path / "d", n=16)
    frame = pd.read_csv(csv)
    frame.loc[frame["split"] == "train", "split"] = "test"
    frame.to_csv(csv, index=False)
    with pytest.raises(RadvisionError, match=r"source's own splits .* hold no 'train' images \(found: valid 4, "
                                             r"test 12\); data.split applies only when the source names no split"):
        build_datasets(tiny_config(tmp_path, csv, "data.split={train: 0.5, valid: 0.5}"))
    frame["split"] = ["train"] * 8 + ["valid"] * 8
    frame.loc[3, "split"] = np.nan  # e.g. an image that is in neither of NIH's official lists
    frame.to_csv(csv, index=False)
    with caplog.at_level("WARNING", logger="radvision.train"):
        build_datasets(tiny_config(tmp_path, csv))
    assert "1 of 16 images have no split in the source (first: " in caplog.text and "003.png" in caplog.text
    assert "patients are split by data.split instead" in caplog.text


def test_an_empty_source_table_is_named(tmp_path):
    from radvision.train import build_datasets

    (tmp_path / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels,Follow-up #,Patient ID\n")
    config = load_config(None, ["data.dataset=nih", f"data.root={tmp_path}", "runtime.progress=false"])
    with pytest.raises(RadvisionError, match=r"The nih label table \(.*\) holds no images"):
        build_datasets(config)


def test_a_cycles_class_weights_error_names_its_cycle_and_a_bad_weight_file_leaves_no_folder(tmp_path, data_csv):
    with pytest.raises(RadvisionError, match=r"^cycles\[1\].class_weights names unknown class 'Brigth' \(did you mean"):
        Trainer(tiny_config(tmp_path, data_csv, "loss.class_weights={Bright: 2}",
                            "cycles=[{epochs: 1}, {epochs: 1, class_weights: {Brigth: 2}}]")).fit()
    with pytest.raises(RadvisionError, match=r"^loss.class_weights names unknown class 'Strip'"):
        Trainer(tiny_config(tmp_path, data_csv, "loss.class_weights={Strip: 2}", "cycles=[{epochs: 1}]")).fit()
    with pytest.raises(RadvisionError, match="missing.pth does not exist"):
        Trainer(tiny_config(tmp_path, data_csv, f"model.pretrained={tmp_path / 'missing.pth'}")).fit()
    assert not (tmp_path / "run").exists()


def test_names_only_training_resolves_are_checked_before_any_image_is_read(tmp_path, data_csv):
    from radvision.config import config_from_dict

    (tmp_path / "weights").mkdir()
    # the last three were found only after the table was read and the image cache built
    for section, key, value, message in (("model", "pretrained", "imagnet", "did you mean 'imagenet'"),
                                         ("data", "transforms", "defualt", "did you mean 'default'"),
                                         ("model", "pretrained", str(tmp_path / "typo.pth"), "typo.pth does not exist"),
                                         ("model", "pretrained", str(tmp_path / "weights"), "weights is a folder"),
                                         ("model", "pretrained", "imagenet", "simple_cnn has no ImageNet weights")):
        values = {"data": {"dataset": "csv", "csv": str(data_csv), "cache_dir": str(tmp_path / "cache")},
                  "model": {"backbone": "simple_cnn"}, "output": {"run_dir": str(tmp_path / "run")}}
        values[section][key] = value
        with pytest.raises(RadvisionError, match=message):
            Trainer(config_from_dict(values)).fit()
        assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_offline_imagenet_and_a_bad_cache_folder_are_refused_before_any_data(tmp_path, data_csv, monkeypatch,
                                                                              offline_caches):
    _no_data(monkeypatch)
    # downloads disabled and no cache holds the weights: said before the table is read, not after the cache build
    for backbone, message in (("resnet18", r"ImageNet weights for resnet18 are not cached at .*resnet18"),
                              ("timm/resnet18", "ImageNet weights for timm/resnet18 are not in the local caches")):
        with pytest.raises(RadvisionError, match=message):
            Trainer(tiny_config(tmp_path, data_csv, f"model.backbone={backbone}", "model.pretrained=imagenet")).fit()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    for folder, message in ((tmp_path / "afile" / "cache", "is a file; give a folder path"),
                            (tmp_path / "mine", r"is not a radvision image cache and holds other files \(notes.txt\)")):
        with pytest.raises(RadvisionError, match=message):
            Trainer(tiny_config(tmp_path, data_csv, f"data.cache_dir={folder}")).fit()
    assert not (tmp_path / "run").exists()


def test_an_fpn_head_over_a_backbone_without_2d_maps_is_refused_before_any_data(tmp_path, data_csv, monkeypatch):
    """A ViT's tokens failed at the first batch, leaving config.yaml and plots/ in a fresh folder."""
    _no_data(monkeypatch)
    with pytest.raises(RadvisionError, match="does not produce 2-D feature maps .* the fpn head needs a convolutional"):
        Trainer(tiny_config(tmp_path, data_csv, "model.backbone=timm/vit_tiny_patch16_224", "model.head=fpn",
                            "data.image_size=224")).fit()
    assert not (tmp_path / "run").exists()


def test_a_run_that_named_a_bare_weight_file_resumes_from_elsewhere(tmp_path, data_csv, monkeypatch):
    from radvision.backbones import create_backbone

    (tmp_path / "start").mkdir()
    torch.save(create_backbone("simple_cnn").model.state_dict(), tmp_path / "start" / "myweights")
    monkeypatch.chdir(tmp_path / "start")
    run = Trainer(tiny_config(tmp_path, data_csv, "model.pretrained=myweights")).fit()
    monkeypatch.chdir(tmp_path)  # the bare name means nothing here, and a resume does not read it
    resumed = Trainer(load_config(run / "config.yaml", ["optim.epochs=2"]), resume=run).fit()
    assert len(pd.read_csv(resumed / "metrics.csv")) == 2


def test_imageclef_concept_filters_are_config_keys(tmp_path):
    from PIL import Image

    from radvision.train import _read_table

    for i in range(4):
        Image.new("L", (8, 8), 10 * i).save(tmp_path / f"img{i}.jpg")
    concepts = tmp_path / "concepts.csv"
    concepts.write_text("ID,CUIs\nimg0,C1;C2;C3\nimg1,C1;C2\nimg2,C1\nimg3,C4\n")
    base = ["data.dataset=imageclef", f"data.root={tmp_path}", f"data.csv={concepts}"]
    assert _read_table(load_config(None, base)).classes == ["C1", "C2", "C3", "C4"]
    assert _read_table(load_config(None, [*base, "data.concept_min_frequency=2"])).classes == ["C1", "C2"]
    assert _read_table(load_config(None, [*base, "data.concept_top_k=3"])).classes == ["C1", "C2", "C3"]
    with pytest.raises(RadvisionError, match="data.concept_top_k' must be 1 or more"):
        load_config(None, [*base, "data.concept_top_k=0"])
    with pytest.raises(RadvisionError, match="data.concept_min_frequency' must be 1 or more"):
        load_config(None, [*base, "data.concept_min_frequency=0"])
    # the separator: detected by default (comma here), or set; a wrong one names the key to change
    assert _read_table(load_config(None, [*base, "data.concept_sep=,"])).classes == ["C1", "C2", "C3", "C4"]
    with pytest.raises(RadvisionError, match=r"gives no concepts with sep='\\t'.*data.concept_sep"):
        _read_table(load_config(None, [*base, "data.concept_sep=tab"]))


@pytest.mark.parametrize(("monitor", "mode"), [("hamming_loss", "min"), ("lrap", "max"), ("valid_loss", "min"),
                                               ("auroc_any_finding", "max")])
def test_any_metric_of_metrics_csv_can_be_monitored(tmp_path, data_csv, monitor, mode):
    run = Trainer(tiny_config(tmp_path, data_csv, f"schedule.monitor={monitor}", "optim.epochs=3",
                              "schedule.patience=null")).fit()
    metrics = pd.read_csv(run / "metrics.csv")
    state = json.loads((run / "trainer_state.json").read_text())
    column = "valid_loss" if monitor == "valid_loss" else monitor
    assert metrics["monitored"].tolist() == pytest.approx(metrics[column].tolist(), nan_ok=True)
    best = metrics[column].min() if mode == "min" else metrics[column].max()
    assert metrics.set_index("epoch").loc[state["best_epoch"], column] == pytest.approx(best)


def test_a_data_split_the_source_overrides_is_named(tmp_path, data_csv, caplog):
    """The table's own split column wins; a data.split given anyway was ignored without a word."""
    from radvision.train import split_tables

    split_tables(tiny_config(tmp_path, data_csv))
    assert "is not used" not in caplog.text
    split_tables(tiny_config(tmp_path, data_csv, "data.split={train: 0.5, valid: 0.5}"))
    assert "data.split {'train': 0.5, 'valid': 0.5} is not used: the source names every image's split" in caplog.text


def test_a_folder_in_use_of_the_users_or_a_file_is_refused_before_data(tmp_path, data_csv, monkeypatch):
    from radvision.rundir import RunDir

    run = Trainer(tiny_config(tmp_path, data_csv)).fit()
    _no_data(monkeypatch)
    held = RunDir(run).lock("output.run_dir")  # another process training into the folder
    try:
        for resume in (None, run):
            with pytest.raises(RadvisionError, match=r"'.*run' is in use by another radvision training \(pid"):
                Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2", "output.overwrite=true"),
                        resume=resume).fit()
    finally:
        held.release()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.csv").write_text("my,own\n")
    with pytest.raises(RadvisionError, match=r"output.run_dir '.*mine' is not a radvision run folder but holds "
                                             r"other files \(metrics.csv\)"):
        Trainer(tiny_config(tmp_path, data_csv, f"output.run_dir={mine}")).fit()
    assert [p.name for p in mine.iterdir()] == ["metrics.csv"] and (mine / "metrics.csv").read_text() == "my,own\n"
    with pytest.raises(RadvisionError, match=r"output.run_dir '.*metrics.csv' is a file; give a folder path"):
        Trainer(tiny_config(tmp_path, data_csv, f"output.run_dir={mine / 'metrics.csv'}")).fit()


def test_resume_of_a_run_stopped_in_its_first_epoch_trains_it_from_epoch_1(tmp_path, data_csv, monkeypatch, caplog):
    def killed(*args, **kwargs):
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_train_epoch", killed)
        with pytest.raises(_Killed):
            Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2")).fit()
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and not (run / "trainer_state.json").exists()
    with pytest.raises(RadvisionError, match=r"differs from its config.yaml in model.head"):  # still the run's config
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2", "model.head=mlp"), resume=run).fit()
    with caplog.at_level("WARNING", logger="radvision.train"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.epochs=2"), resume=run).fit()
    assert "has no finished epoch (it stopped during its first one); training it from epoch 1" in caplog.text
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2]
    assert json.loads((run / "trainer_state.json").read_text())["finished"]


def test_a_policy_or_frontal_only_a_dataset_cannot_apply_is_named(tmp_path, caplog):
    from PIL import Image

    from radvision.train import split_tables

    with pytest.raises(RadvisionError, match="U-MultiClass trains an 'uncertain' output per class, but dataset "
                                             "'nih_sample' has no uncertain"):  # was: 3 outputs, nothing uncertain
        split_tables(load_config(None, ["data.dataset=nih_sample", "data.policy=U-MultiClass"]))
    split_tables(load_config(None, ["data.dataset=nih_sample", "data.policy=U-Zeros"]))
    assert "data.policy=U-Zeros changes nothing for dataset 'nih_sample'" in caplog.text
    for cls in ("a", "b"):
        (tmp_path / "tree" / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / "tree" / cls / f"{i}.png")
    split_tables(load_config(None, ["data.dataset=folder", f"data.root={tmp_path / 'tree'}", "data.frontal_only=true"]))
    assert "data.frontal_only changes nothing for dataset 'folder'" in caplog.text


def test_an_image_listed_twice_is_named(tmp_path, caplog):
    from PIL import Image

    from radvision.train import split_tables

    rows = []
    for i in range(8):
        Image.new("L", (8, 8), 30 * i).save(tmp_path / f"{i}.png")
        rows.append({"path": f"{i}.png", "A": i % 2, "patient_id": f"p{i}"})
    pd.DataFrame(rows + [rows[3]]).to_csv(tmp_path / "t.csv", index=False)
    split_tables(load_config(None, ["data.dataset=csv", f"data.csv={tmp_path / 't.csv'}"]))
    assert "the csv label table lists 1 image file(s) more than once (first: " in caplog.text  # was silent


def test_a_batch_of_one_image_is_refused_only_where_batch_norm_cannot_train_on_it(tmp_path, data_csv):
    # resnet18 at 32 px ends on a 1 x 1 map: one value per channel, which torch refused mid-epoch
    with pytest.raises(RadvisionError, match="optim.batch_size is 1, but at 32 px a BatchNorm layer"):
        Trainer(tiny_config(tmp_path, data_csv, "optim.batch_size=1", "model.backbone=resnet18")).fit()
    assert not (tmp_path / "run").exists()
    run = Trainer(tiny_config(tmp_path, data_csv, "optim.batch_size=1")).fit()  # simple_cnn's maps are larger
    assert len(pd.read_csv(run / "metrics.csv")) == 1


def test_an_interruption_while_writing_the_outputs_is_recorded_and_resume_completes_them(tmp_path, data_csv,
                                                                                          monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    cfg = tiny_config(tmp_path, data_csv)
    with monkeypatch.context() as m:
        m.setattr(Trainer, "_finish", interrupted)
        with pytest.raises(KeyboardInterrupt):
            Trainer(cfg).fit()
    run = tmp_path / "run"
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["finished"] is True and state["outputs_written"] is False
    assert not (run / "test_metrics.csv").exists()
    Trainer(cfg, resume=run).fit()
    assert json.loads((run / "trainer_state.json").read_text())["outputs_written"] is True
    assert (run / "test_metrics.csv").is_file() and len(pd.read_csv(run / "metrics.csv")) == 1
