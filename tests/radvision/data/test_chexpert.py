import re
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
    valid = [  # the official valid set: its own patients, labelled by radiologists (here with a -1 to test policies)
        row("CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg", "Male", 73, "Frontal", "AP",
            Edema=-1.0, Support_Devices=1.0),
        row("CheXpert-v1.0-small/valid/patient64541/study1/view2_lateral.jpg", "Male", 73, "Lateral", np.nan,
            Edema=-1.0, Support_Devices=1.0),
    ]
    root.mkdir(parents=True)
    pd.DataFrame(rows, columns=HEAD).to_csv(root / "train.csv", index=False)
    pd.DataFrame(valid, columns=HEAD).to_csv(root / "valid.csv", index=False)
    for i, r in enumerate(rows + valid):
        helpers.save_gray(parent / r[0], seed=i)
    return root


@pytest.mark.parametrize("policy, edema", [("U-Ignore", np.nan), ("U-Zeros", 0.0), ("U-Ones", 1.0),
                                           ("U-MultiClass", -1.0)])
def test_policies(tmp_path, helpers, policy, edema):
    t = read_chexpert(make_chexpert(tmp_path, helpers), policy=policy)
    validate_table(t)
    np.testing.assert_array_equal(t.frame["Edema"].to_numpy()[:1], [edema])
    # the policy applies to the official valid.csv rows (the test split) too
    np.testing.assert_array_equal(t.subset("test").frame["Edema"].to_numpy(), [edema])


def test_frontal_no_finding_meta_and_paths(tmp_path, helpers):
    root = make_chexpert(tmp_path, helpers)
    t = read_chexpert(root, split="train")
    f = t.frame
    assert len(t) == 3 and t.classes == CHEXPERT_CLASSES
    assert all(Path(p).is_file() for p in f["path"])
    assert f["patient_id"].tolist() == ["patient00001", "patient00002", "patient00003"]
    # derived No Finding: 0 with a finding, 1 with only Support Devices / negatives
    assert f["No Finding"].tolist() == [0.0, 1.0, 1.0]
    assert np.isnan(f["Fracture"]).all()  # blanks stay unknown
    negative = read_chexpert(root, split="train", unmentioned="negative", policy="U-Ignore").frame
    assert (negative["Fracture"] == 0).all() and np.isnan(negative["Edema"].iloc[0])  # -1 is still masked
    assert f["sex"].tolist()[:2] == ["F", "M"] and pd.isna(f["sex"].iloc[2])
    assert f["view"].tolist() == ["AP", "PA", "AP"] and set(f["split"]) == {"train"}
    both = read_chexpert(root, split="train", frontal_only=False)
    assert len(both) == 4 and both.frame["view"].iloc[1] == "LATERAL"
    # root may also be the folder above the dataset folder
    assert read_chexpert(tmp_path, split="train", classes=["Edema"]).frame["path"].tolist() == f["path"].tolist()
    v = read_chexpert(root, split="valid", classes=["Support Devices", "No Finding"])
    assert v.labels().tolist() == [[1.0, 0.0]] and v.frame["split"].tolist() == ["valid"]


def test_official_valid_csv_is_the_test_split(tmp_path, helpers, caplog):
    root = make_chexpert(tmp_path, helpers)
    t = read_chexpert(root)  # every official file, each row marked with its split
    validate_table(t)
    f = t.frame
    assert f["split"].tolist() == ["train", "train", "train", "test"]  # valid.csv's lateral is filtered out
    assert f["path"].iloc[3].endswith("valid/patient64541/study1/view1_frontal.jpg") and Path(f["path"].iloc[3]).is_file()
    assert f["view"].iloc[3] == "AP" and f["No Finding"].iloc[3] == 0.0
    assert len(read_chexpert(root, frontal_only=False).subset("test")) == 2
    assert read_chexpert(tmp_path).frame["path"].tolist() == f["path"].tolist()  # from the folder above too
    # the Trainer's contract: a source with train and test rows gets valid carved from train by patient
    from radvision.data.splits import assert_patient_disjoint, patient_split, source_splits

    parts = source_splits(t)
    assert set(parts) == {"train", "test"}
    parts.update(patient_split(parts["train"], {"train": 0.5, "valid": 0.5}, seed=0))
    assert_patient_disjoint(parts)
    # a relabelled train file (csv=) replaces train.csv only
    pd.read_csv(root / "train.csv").iloc[:1].to_csv(tmp_path / "relabelled.csv", index=False)
    assert read_chexpert(root, csv=tmp_path / "relabelled.csv").frame["split"].tolist() == ["train", "test"]
    # with a labelled test file, valid.csv is the valid split and the test file the test split
    test = pd.read_csv(root / "valid.csv")
    test["Path"] = test["Path"].str.replace("patient64541", "patient64741")
    test.to_csv(root / "test_labels.csv", index=False)
    for name in ("view1_frontal.jpg", "view2_lateral.jpg"):
        helpers.save_gray(tmp_path / "CheXpert-v1.0-small/valid/patient64741/study1" / name)
    assert read_chexpert(root).frame["split"].tolist() == ["train", "train", "train", "valid", "test"]
    # a patient in train.csv and in another file is reported
    pd.read_csv(root / "train.csv").iloc[:1].to_csv(root / "test_labels.csv", index=False)
    with caplog.at_level("WARNING", logger="radvision.data.chexpert"):
        read_chexpert(root)
    assert "patient00001" in caplog.text and "not patient-disjoint" in caplog.text


def test_a_test_file_without_view_columns_takes_the_view_from_the_file_name(tmp_path, helpers, caplog):
    # the labelled test set (test_labels.csv) has Path and the 14 labels only
    root = make_chexpert(tmp_path, helpers)
    names = ["test/patient64741/study1/view1_frontal.jpg", "test/patient64741/study1/view2_lateral.jpg",
             "test/patient64742/study1/image.jpg"]
    pd.DataFrame({"Path": names, "Cardiomegaly": [1.0, 1.0, 0.0]}).to_csv(root / "test_labels.csv", index=False)
    for name in names:
        helpers.save_gray(root / name)
    with caplog.at_level("WARNING", logger="radvision.data.chexpert"):
        f = read_chexpert(root).frame  # frontal_only: the lateral goes, the file name that says nothing stays
    test = f[f["split"] == "test"]
    assert [Path(p).name for p in test["path"]] == ["view1_frontal.jpg", "image.jpg"]
    assert test["view"].isna().all()  # frontal, projection unknown: never "LATERAL"
    assert "1 row(s) say neither" in caplog.text
    everything = read_chexpert(root, frontal_only=False).frame
    views = everything.loc[everything["split"] == "test", "view"]
    assert views.isna().tolist() == [True, False, True] and views.iloc[1] == "LATERAL"
    assert len(read_chexpert(root, split="test")) == 2  # the same filter when the file is read alone


def test_a_relabelled_file_from_the_folder_above_keeps_valid_csv(tmp_path, helpers, monkeypatch):
    root = make_chexpert(tmp_path, helpers)
    pd.read_csv(root / "train.csv").to_csv(root / "relabelled.csv", index=False)
    monkeypatch.chdir(tmp_path.parent)  # a relative name is not found from the working directory
    for given in ("relabelled.csv", root / "relabelled.csv"):
        t = read_chexpert(tmp_path, csv=given)
        assert t.frame["split"].tolist() == ["train", "train", "train", "test"]  # valid.csv is still the test split
    with pytest.raises(RadvisionError, match="'nope.csv' not found .*CheXpert-v1.0-small/nope.csv"):
        read_chexpert(tmp_path, csv="nope.csv")


def test_each_file_finds_its_own_path_base(tmp_path, helpers):
    root = make_chexpert(tmp_path, helpers)
    train = pd.read_csv(root / "train.csv")
    train["Path"] = train["Path"].str.replace("CheXpert-v1.0-small/", "", regex=False)  # relative to the dataset
    train.to_csv(root / "relabelled.csv", index=False)
    t = read_chexpert(root, csv=root / "relabelled.csv")  # valid.csv keeps the official prefix
    assert t.frame["split"].tolist() == ["train", "train", "train", "test"]
    assert all(Path(p).is_file() for p in t.frame["path"])


def test_an_explicit_no_finding_is_kept(tmp_path, helpers):
    root = make_chexpert(tmp_path, helpers)
    train = pd.read_csv(root / "train.csv")
    train.loc[2, "No Finding"] = 0.0  # a curated 0 beside negatives only: the rule alone would say 1
    train.loc[1, "No Finding"] = 1.0  # the lateral view: filtered out, only here to keep the file's shape
    train.to_csv(root / "train.csv", index=False)
    assert read_chexpert(root, split="train").frame["No Finding"].tolist() == [0.0, 0.0, 1.0]


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
    assert len(read_chexpert(root, split="train", missing="drop")) == 2


def test_training_from_a_config_keeps_the_readers_frontal_rows(tmp_path, helpers):
    from radvision.config import load_config
    from radvision.train import build_datasets

    root = make_chexpert(tmp_path, helpers)
    train = pd.read_csv(root / "train.csv")
    train["AP/PA"] = train["AP/PA"].where(train["Frontal/Lateral"] == "Lateral", "LL")  # odd values on frontal rows
    train.to_csv(root / "train.csv", index=False)
    cfg = load_config(None, ["data.dataset=chexpert", f"data.root={root}", "data.frontal_only=true",
                             "data.image_size=32", "data.split={train: 0.5, valid: 0.5, test: 0}", "runtime.seed=1"])
    train_ds, valid_ds, test_ds, _ = build_datasets(cfg)
    assert len(train_ds) + len(valid_ds) == 3 and len(test_ds) == 1  # the reader's frontal rows, all kept


def test_a_renamed_class_column_is_an_error_and_a_missing_one_a_warning(tmp_path, helpers, caplog):
    root = make_chexpert(tmp_path, helpers)
    train = pd.read_csv(root / "train.csv")
    train.rename(columns={"Pleural Effusion": "Effusion"}).to_csv(root / "train.csv", index=False)
    with pytest.raises(RadvisionError, match="column 'Effusion' where a CheXpert label file has 'Pleural Effusion'"):
        read_chexpert(root)
    train.drop(columns=["Pleural Effusion"]).to_csv(root / "train.csv", index=False)
    pd.read_csv(root / "valid.csv").drop(columns=["Pleural Effusion"]).to_csv(root / "valid.csv", index=False)
    with caplog.at_level("WARNING"):
        t = read_chexpert(root)
    assert "Pleural Effusion" not in t.classes and "lacks the class column(s) 'Pleural Effusion'" in caplog.text


@pytest.mark.parametrize(("cell", "shown"), [("1?", "'1?'"), ("Positive", "'Positive'"), (2, "2.0")])
def test_a_label_cell_that_is_no_label_is_refused_with_its_file_and_row(tmp_path, helpers, cell, shown):
    # coerced, "1?" was read as a blank: that study's Edema trained as "not mentioned" without a word
    root = make_chexpert(tmp_path, helpers)
    table = pd.read_csv(root / "train.csv")
    table["Edema"] = table["Edema"].astype(object)
    table.loc[2, "Edema"] = cell
    table.to_csv(root / "train.csv", index=False)
    with pytest.raises(RadvisionError, match=re.escape(f"Label column 'Edema' in train.csv holds {shown} (data row 3)")):
        read_chexpert(root)
