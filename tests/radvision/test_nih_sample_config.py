"""configs/nih_sample.yaml (the NIH sample accuracy recipe) and the NIH scoring helper of
examples/nih_densenet_fpn.py.  Training on real images runs only where ../shared/data/nih_sample exists."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radvision.config import load_config
from radvision.errors import RadvisionError

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "nih_sample.yaml"
EXAMPLE = REPO / "examples" / "nih_densenet_fpn.py"
SHARED = REPO.parent / "shared" / "data" / "nih_sample"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("nih_densenet_fpn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



def test_config_loads_with_overrides(tmp_path):
    cfg = load_config(CONFIG, [f"data.root={tmp_path}", "optim.epochs=1", f"output.run_dir={tmp_path / 'run'}"])
    assert cfg.data.dataset == "nih"
    assert cfg.data.root == str(tmp_path)
    assert cfg.data.image_size == 64
    assert cfg.optim.epochs == 1
    assert cfg.output.run_dir == str(tmp_path / "run")
    # the recipe trains from scratch: no weights can be downloaded
    assert cfg.model.pretrained is None


def test_config_rejects_a_misspelt_override():
    with pytest.raises(RadvisionError, match="epochs"):
        load_config(CONFIG, ["optim.epocs=1"])


def _gold(n=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = []
    for _ in range(n):
        found = [c for c, p in (("Effusion", 0.4), ("Mass", 0.1)) if rng.random() < p]
        labels.append("|".join(found) if found else "No Finding")
    return pd.DataFrame({"Image Index": [f"{i:08d}_000.png" for i in range(n)], "Finding Labels": labels})


def test_score_perfect_and_inverted_predictions(example):
    gold = _gold()
    eff = gold["Finding Labels"].str.contains("Effusion").astype(float)
    mass = gold["Finding Labels"].str.contains("Mass").astype(float)
    pred = pd.DataFrame({"path": "/imgs/" + gold["Image Index"], "Effusion": 0.1 + 0.8 * eff,
                         "Mass": 0.05 + 0.9 * mass})
    perfect = example.score_predictions(pred, gold, min_positives=10)
    assert perfect["Effusion"] == pytest.approx(1.0)
    assert "Mass" not in perfect  # fewer than 10 positives: not scored
    assert perfect["any_finding"] == pytest.approx(1.0)  # noisy-OR of the class probabilities
    assert perfect["mean_auroc"] == pytest.approx(1.0)
    assert perfect["n_images"] == len(gold)

    inverted = example.score_predictions(pred.assign(Effusion=1 - pred["Effusion"]), gold, min_positives=10)
    assert inverted["Effusion"] == pytest.approx(0.0)
    assert inverted["mean_auroc"] < 0.75


def test_score_uses_no_finding_output_and_label_tables(example):
    gold = _gold(seed=1)
    table = pd.DataFrame({"path": "/data/" + gold["Image Index"],
                          "Effusion": gold["Finding Labels"].str.contains("Effusion").astype(float),
                          "Mass": gold["Finding Labels"].str.contains("Mass").astype(float)})
    no_finding = (gold["Finding Labels"] == "No Finding").astype(float)
    # Effusion output is uninformative; the "No Finding" output alone decides any-finding
    pred = pd.DataFrame({"path": table["path"], "Effusion": 0.5, "Mass": 0.5, "No Finding": no_finding})
    result = example.score_predictions(pred, table, min_positives=1)
    assert result["Effusion"] == pytest.approx(0.5)
    assert result["any_finding"] == pytest.approx(1.0)


def test_score_cli_prints_json(example, tmp_path, capsys):
    gold = _gold(seed=2)
    gold.to_csv(tmp_path / "gold.csv", index=False)
    eff = gold["Finding Labels"].str.contains("Effusion").astype(float)
    pd.DataFrame({"path": gold["Image Index"], "Effusion": eff}).to_csv(tmp_path / "pred.csv", index=False)
    assert example.main(["--score", str(tmp_path / "pred.csv"), str(tmp_path / "gold.csv")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["Effusion"] == pytest.approx(1.0)


def test_score_a_split_warn_about_mixed_splits_and_refuse_nothing_to_score(example, tmp_path, caplog):
    gold = _gold(n=60, seed=3).assign(split=["train"] * 20 + ["valid"] * 40)
    eff = gold["Finding Labels"].str.contains("Effusion").astype(float)
    pred = pd.DataFrame({"path": gold["Image Index"], "Effusion": eff})
    both = example.score_predictions(pred, gold, min_positives=5)
    assert both["n_images"] == 60 and "scoring images of several splits together (valid: 40, train: 20)" in caplog.text
    assert example.score_predictions(pred, gold, min_positives=5, split="valid")["n_images"] == 40
    with pytest.raises(RadvisionError, match="no 'test' rows; its splits are train, valid"):
        example.score_predictions(pred, gold, split="test")
    with pytest.raises(RadvisionError, match="nothing to score among the 60 matched images"):
        example.score_predictions(pred, gold.assign(**{"Finding Labels": "Effusion"}))  # no negatives
    # a prediction table given as the gold table (arguments swapped) is named
    pred.assign(Effusion=0.37).to_csv(tmp_path / "pred.csv", index=False)
    table = pd.DataFrame({"path": gold["Image Index"], "Effusion": eff})
    with pytest.raises(RadvisionError, match="holds 0.37, not 1 / 0 / -1 / blank; is it a prediction table"):
        example.score_predictions(table, tmp_path / "pred.csv")


def test_study_tables_follow_the_config_data_section(example):
    from radvision.config import config_from_dict

    cfg = config_from_dict({"data": {"dataset": "nih_sample", "classes": ["Effusion", "Atelectasis"]}})
    parts = example.study_tables(cfg)
    assert parts["train"].classes == ["Effusion", "Atelectasis"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/nih_sample is not available")
def test_recipe_trains_one_epoch_on_real_images(tmp_path):
    from radvision.data import ImageDataset, build_transforms, read_nih
    from radvision.train import Trainer

    cfg = load_config(CONFIG, [f"data.root={SHARED}", "optim.epochs=1", "runtime.progress=false",
                               f"output.run_dir={tmp_path / 'run'}", "cycles=[]"])
    table = read_nih(SHARED)
    d = cfg.data
    ds = {}
    for split, n in (("train", 48), ("valid", 32)):
        part = table.subset(split)
        part = part.subset(np.arange(n))
        ds[split] = ImageDataset(part, build_transforms(d.transforms, d.image_size, train=split == "train",
                                                        channels=d.channels))
    run = Trainer(cfg).fit(ds["train"], ds["valid"])
    metrics = pd.read_csv(run / "metrics.csv")
    assert len(metrics) == 1
    assert np.isfinite(metrics["train_loss"]).all()
    assert (run / "model.safetensors").is_file()
