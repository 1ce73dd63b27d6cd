"""U-MultiClass end to end: a 3-way (negative / positive / uncertain) head per class, trained, reloaded from its
run folder, predicting P(positive) = p_pos / (p_neg + p_pos), evaluated, explained and used for features."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from radvision.cli import main
from radvision.config import load_config
from radvision.errors import RadvisionError
from radvision.features import extract_features
from radvision.predict import evaluate_files, explain_images, image_transform, load_run, predict
from radvision.train import Trainer

CLASSES = ["Bright", "Stripe"]


def uncertain_table(root, make_images):
    """The shared tiny images with CheXpert-style labels: some -1 (uncertain) and blanks, in every split."""
    csv = make_images(root, n=32, seed=3)
    table = pd.read_csv(csv)
    table["Stripe"] = table["Stripe"].astype(float)
    table["Bright"] = table["Bright"].astype(float)
    table.loc[[3, 9, 12, 20, 28], "Stripe"] = -1.0  # train, valid (20) and test (28) rows
    table.loc[[5, 17], "Bright"] = np.nan
    table.to_csv(csv, index=False)
    return csv


def config(run_dir, *extra):
    return load_config(None, [
        "data.policy=U-MultiClass", "data.image_size=32", "data.transforms=none", "model.backbone=simple_cnn",
        "optim.batch_size=8", "optim.epochs=2", "optim.lr=0.01", "runtime.device=cpu", "runtime.progress=false",
        "runtime.seed=0", "schedule.plateau_patience=null", f"output.run_dir={run_dir}", *extra,
    ])


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_images):
    root = tmp_path_factory.mktemp("multiclass")
    csv = uncertain_table(root, make_images)
    return Trainer(config(root / "run", "data.dataset=csv", f"data.csv={csv}", "loss.class_weights={Stripe: 2.0}")).fit()


def gold(run, split):
    table = pd.read_csv(run.parent / "labels.csv")
    table = table[table["split"] == split].drop(columns=["patient_id", "split"])
    table["path"] = [str(run.parent / p) for p in table["path"]]
    return table


def test_a_u_multiclass_run_records_its_policy_and_writes_every_result(run):
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["policy"] == "U-MultiClass" and saved["data"]["classes"] == CLASSES
    for name in ("thresholds.json", "valid_metrics.csv", "test_metrics.csv", "test_per_class.csv",
                 "plots/roc_valid.png", "plots/confusion_test.png", "plots/curves.png"):
        assert (run / name).is_file(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert np.isfinite(metrics[["train_loss", "valid_loss", "mean_auroc", "monitored"]]).all().all()
    model, cfg, classes, thresholds = load_run(run)
    assert model.outputs_per_class == 3 and classes == CLASSES and cfg.data.policy == "U-MultiClass"
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 6)
    assert thresholds.shape == (2,) and np.all((thresholds > 0) & (thresholds <= 1))


def test_the_reloaded_run_predicts_p_positive_over_negative_and_positive(run):
    frame = gold(run, "valid")
    out = predict(run, frame[["path"]], device="cpu")
    assert list(out.columns) == ["path", *CLASSES, "error"]
    model, cfg, _, _ = load_run(run)
    transform = image_transform(cfg)
    from radvision.data import load_image

    x = torch.stack([transform(load_image(p)) for p in frame["path"]])
    with torch.no_grad():
        p = torch.softmax(model(x).reshape(len(x), 2, 3), dim=-1).numpy()
    np.testing.assert_allclose(out[CLASSES].to_numpy(), p[..., 1] / (p[..., 0] + p[..., 1]), rtol=1e-5)


def test_evaluate_of_the_reloaded_predictions_reproduces_the_runs_metrics_with_uncertain_gold(run, tmp_path):
    """The trainer's valid / test probabilities and the reloaded run's agree, and -1 gold labels are left out of
    the binary metrics on both sides."""
    for split in ("valid", "test"):
        frame = gold(run, split)
        assert (frame["Stripe"] == -1).any()
        predict(run, frame[["path"]], device="cpu").to_csv(tmp_path / "pred.csv", index=False)
        frame.to_csv(tmp_path / "gold.csv", index=False)
        summary, per_class = evaluate_files(tmp_path / "pred.csv", tmp_path / "gold.csv",
                                            thresholds=run / "thresholds.json")
        expected = pd.read_csv(run / f"{split}_metrics.csv").set_index("metric")["value"]
        for key in ("mean_auroc", "macro_f1", "micro_f1"):
            assert summary[key] == pytest.approx(expected[key], nan_ok=True), (split, key)
        assert int(per_class.set_index("class").loc["Stripe", "support"]) == int((frame["Stripe"] == 1).sum())
    assert main(["-q", "evaluate", str(tmp_path / "pred.csv"), str(tmp_path / "gold.csv")]) == 0


def test_explain_targets_the_positive_output_and_features_come_from_the_backbone(run, tmp_path):
    image = run.parent / "img" / "003.png"
    written = explain_images(run, [image], tmp_path / "cams", classes=["Stripe"])
    assert len(written) == 1 and written[0].is_file()
    listed = pd.read_csv(tmp_path / "cams" / "overlays.csv")
    expected = predict(run, [str(image)], device="cpu").loc[0, "Stripe"]
    assert listed.loc[0, "probability"] == pytest.approx(expected, abs=1e-6)
    feats = extract_features(run, [str(image), str(run.parent / "img" / "004.png")])
    model, _, _, _ = load_run(run)
    assert feats.shape == (2, model.backbone.num_features)


def test_u_multiclass_trains_through_the_chexpert_reader_and_refuses_sigmoid_losses(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "chexpert_study", Path(__file__).resolve().parents[2] / "examples" / "chexpert_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    root = study.make_synthetic_chexpert(tmp_path, n_patients=16, n_valid=6, size=32)
    demo = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
    data = ["data.dataset=chexpert", f"data.root={root}", "data.policy=U-MultiClass"]
    assert main(["-q", "data", demo, *data]) == 0
    assert main(["-q", "data", demo, *data, "loss.name=focal"]) == 2
    cfg = config(tmp_path / "run", *data, "data.classes=[Cardiomegaly, Edema]", "loss.pos_weight=auto",
                 "optim.epochs=1")
    run = Trainer(cfg).fit()
    assert load_run(run)[0].outputs_per_class == 3
    with pytest.raises(RadvisionError, match="Training label -1 .*U-MultiClass"):
        Trainer(config(tmp_path / "binary", *data, "data.policy=U-Ones")).fit(
            *_datasets_with_uncertain_labels(cfg))


def _datasets_with_uncertain_labels(cfg):
    """train / valid datasets whose labels keep -1, for a trainer whose policy does not allow it."""
    from radvision.train import build_datasets

    train, valid, _, _ = build_datasets(cfg)
    return train, valid
