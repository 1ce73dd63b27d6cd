from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radvision.data.chexpert import CHEXPERT_CLASSES, derive_no_finding, read_chexpert
from radvision.data.table import validate_table
from radvision.errors import RadvisionError

HEAD = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_CLASSES]


def row(path, sex, age, fl, apa, **labels):
    values = {c: np.nan for c in CHEXPERT_CLASSES}
    values.update({k.replace("_", " "): v for k, v in labels.items()})
    return [path, sex, age, fl, apa, *values.values()]


def make_chexpert(parent: Path, helpers) -> Path:
    root = parent / "CheXpert-v1.0-small"
    rows = [
        row("CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg", "Female", 68, "Frontal", "AP",
            Edema=-1.0, Cardiomegaly=1.0),
        row("CheXpert-v1.0-small/train/patient00001/study1/view2_lateral.jpg", "Female", 68, "Lateral", np.nan,
            Edema=-1.0),
        row("CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg", "Male", 87, "Frontal", "PA",
            No_Finding=1.0, Support_Devices=1.0),
        row("CheXpert-v1.0-small/train/patient00003/study2/view1_frontal.jpg", "Unknown", 41, "Frontal", "AP",
            Pneumothorax=0.0, Support_Devices=1.0),
    ]
    root.mkdir(parents=True)
    pd.DataFrame(rows, columns=HEAD).to_csv(root / "train.csv", index=False)
    pd.DataFrame(rows[2:3], columns=HEAD).to_csv(root / "valid.csv", index=False)
    for i, r in enumerate(rows):
        helpers.save_gray(parent / r[0], seed=i)
    return root


@pytest.mark.parametrize("policy, edema", [("U-Ignore", np.nan), ("U-Zeros", 0.0), ("U-Ones", 1.0),
                                           ("U-MultiClass", -1.0)])
def test_policies(tmp_path, helpers, policy, edema):
    t = read_chexpert(make_chexpert(tmp_path, helpers), policy=policy)
    validate_table(t)
    np.testing.assert_array_equal(t.frame["Edema"].to_numpy()[:1], [edema])


def test_frontal_no_finding_meta_and_paths(tmp_path, helpers):
    root = make_chexpert(tmp_path, helpers)
    t = read_chexpert(root)
    f = t.frame
    assert len(t) == 3 and t.classes == CHEXPERT_CLASSES
    assert all(Path(p).is_file() for p in f["path"])
    assert f["patient_id"].tolist() == ["patient00001", "patient00002", "patient00003"]
    # derived No Finding: 0 with a finding, 1 with only Support Devices / negatives
    assert f["No Finding"].tolist() == [0.0, 1.0, 1.0]
    assert np.isnan(f["Fracture"]).all()  # blanks stay unknown
    assert f["sex"].tolist()[:2] == ["F", "M"] and pd.isna(f["sex"].iloc[2])
    assert f["view"].tolist() == ["AP", "PA", "AP"] and set(f["split"]) == {"train"}
    both = read_chexpert(root, frontal_only=False)
    assert len(both) == 4 and both.frame["view"].iloc[1] == "LATERAL"
    # root may also be the folder above the dataset folder
    assert read_chexpert(tmp_path, classes=["Edema"]).frame["path"].tolist() == f["path"].tolist()
    v = read_chexpert(root, split="valid", classes=["Support Devices", "No Finding"])
    assert v.labels().tolist() == [[1.0, 1.0]] and v.frame["split"].tolist() == ["valid"]


def test_derive_no_finding_counts_uncertain():
    raw = pd.DataFrame({"Edema": [-1.0, np.nan, 0.0], "Support Devices": [np.nan, 1.0, np.nan]})
    assert derive_no_finding(raw).tolist() == [0.0, 1.0, 1.0]


def test_errors(tmp_path, helpers):
    root = make_chexpert(tmp_path, helpers)
    with pytest.raises(RadvisionError, match=r"uncertainty policy 'U-one'.*U-Ignore"):
        read_chexpert(root, policy="U-one")
    with pytest.raises(RadvisionError, match=r"'Pleural effusion'.*did you mean 'Pleural Effusion'"):
        read_chexpert(root, classes=["Pleural effusion"])
    with pytest.raises(RadvisionError, match="valid choices: train, valid, test"):
        read_chexpert(root, split="validation")
    with pytest.raises(RadvisionError, match="test.csv"):
        read_chexpert(root, split="test")
    (tmp_path / "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg").unlink()
    with pytest.raises(RadvisionError, match="patient00002/study1/view1_frontal.jpg"):
        read_chexpert(root)
    assert len(read_chexpert(root, missing="drop")) == 2
