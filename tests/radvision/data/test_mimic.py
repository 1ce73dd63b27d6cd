from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radvision.data.mimic import read_mimic
from radvision.data.table import validate_table
from radvision.errors import RadvisionError


def make_mimic(root: Path, helpers) -> Path:
    labels = pd.DataFrame(
        {
            "subject_id": [10000032, 10000032, 11000011],
            "study_id": [50414267, 53189527, 56699142],
            "Atelectasis": [np.nan, -1.0, 1.0],
            "Edema": [0.0, np.nan, np.nan],
            "No Finding": [1.0, np.nan, np.nan],
        }
    )
    meta = pd.DataFrame(
        {
            "dicom_id": ["d1", "d2", "d3", "d4"],
            "subject_id": [10000032, 10000032, 10000032, 11000011],
            "study_id": [50414267, 50414267, 53189527, 56699142],
            "ViewPosition": ["PA", "LATERAL", "AP", "PA"],
        }
    )
    split = pd.DataFrame({"dicom_id": ["d1", "d2", "d3", "d4"], "study_id": meta["study_id"],
                          "subject_id": meta["subject_id"], "split": ["train", "train", "validate", "test"]})
    labels.to_csv(root / "mimic-cxr-2.0.0-chexpert.csv.gz", index=False)
    meta.to_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
    split.to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)
    for _, r in meta.iterrows():
        s = str(r.subject_id)
        helpers.save_gray(root / "files" / f"p{s[:2]}" / f"p{s}" / f"s{r.study_id}" / f"{r.dicom_id}.jpg")
    return root


def test_join_paths_views_and_splits(tmp_path, helpers):
    t = read_mimic(make_mimic(tmp_path, helpers), classes=["Atelectasis", "Edema", "No Finding"])
    validate_table(t)
    f = t.frame
    assert len(t) == 3  # the lateral view is dropped
    assert f["path"][0].endswith("files/p10/p10000032/s50414267/d1.jpg")
    assert f["split"].tolist() == ["train", "valid", "test"]
    assert f["patient_id"].tolist() == ["10000032", "10000032", "11000011"]
    y = t.labels()
    assert np.isnan(y[1, 0]) and y[2, 0] == 1  # U-Ignore default
    assert y[:, 2].tolist() == [1.0, 0.0, 0.0]  # No Finding: given 1, else derived
    assert read_mimic(tmp_path, policy="U-Ones").frame["Atelectasis"].iloc[1] == 1.0
    assert len(read_mimic(tmp_path, frontal_only=False)) == 4
    assert read_mimic(tmp_path, split="valid").frame["study_id"].tolist() == ["53189527"]
    negative = read_mimic(tmp_path, classes=["Atelectasis", "Edema"], unmentioned="negative").labels()
    np.testing.assert_array_equal(negative, [[0.0, 0.0], [np.nan, 0.0], [1.0, 0.0]])  # the -1 stays masked


def test_errors(tmp_path, helpers):
    make_mimic(tmp_path, helpers)
    with pytest.raises(RadvisionError, match="labeler"):
        read_mimic(tmp_path, labeler="chexbert")
    with pytest.raises(RadvisionError, match="mimic-cxr-2.0.0-negbio"):
        read_mimic(tmp_path, labeler="negbio")
    with pytest.raises(RadvisionError, match="did you mean 'Edema'"):
        read_mimic(tmp_path, classes=["Edma"])
    (tmp_path / "files/p11/p11000011/s56699142/d4.jpg").unlink()
    with pytest.raises(RadvisionError, match="d4.jpg"):
        read_mimic(tmp_path)


def test_left_out_images_are_counted_in_the_log(tmp_path, helpers, caplog):
    make_mimic(tmp_path, helpers)
    meta = pd.read_csv(tmp_path / "mimic-cxr-2.0.0-metadata.csv.gz")
    meta.loc[2, "ViewPosition"] = np.nan  # d3: view unknown
    unlabelled = {"dicom_id": "d5", "subject_id": 11000011, "study_id": 59999999, "ViewPosition": "PA"}
    pd.concat([meta, pd.DataFrame([unlabelled])]).to_csv(tmp_path / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
    with caplog.at_level("INFO", logger="radvision.data.mimic"):
        t = read_mimic(tmp_path, missing="ignore")
    assert t.frame["path"].str.endswith(("d1.jpg", "d4.jpg")).all() and len(t) == 2
    assert "1 of 5 images belong to studies without a row in the chexpert label file" in caplog.text
    assert "left out 1 non-frontal images and 1 with a blank ViewPosition" in caplog.text


def test_a_split_with_no_rows_is_an_error_naming_the_splits_there_are(tmp_path, helpers):
    make_mimic(tmp_path, helpers)
    split_file = tmp_path / "mimic-cxr-2.0.0-split.csv"
    split = pd.read_csv(split_file)
    split["split"] = split["split"].replace({"test": "train"})
    split.to_csv(split_file, index=False)
    with pytest.raises(RadvisionError, match=r"MIMIC-CXR has no 'test' rows; its splits are train, valid\."):
        read_mimic(tmp_path, split="test")


def test_data_csv_names_another_label_file(tmp_path, helpers):
    make_mimic(tmp_path, helpers)
    negbio = pd.read_csv(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz").assign(Atelectasis=0.0)
    negbio.to_csv(tmp_path / "mimic-cxr-2.0.0-negbio.csv.gz", index=False)
    assert read_mimic(tmp_path, csv="mimic-cxr-2.0.0-negbio.csv.gz").frame["Atelectasis"].tolist() == [0.0] * 3
    with pytest.raises(RadvisionError, match="label file 'nowhere.csv' not found"):
        read_mimic(tmp_path, csv="nowhere.csv")


def test_the_config_passes_data_csv_to_the_mimic_reader(tmp_path, helpers):
    from radvision.config import load_config
    from radvision.train import split_tables

    make_mimic(tmp_path, helpers)
    cfg = load_config(None, [f"data.root={tmp_path}", "data.dataset=mimic", "data.csv=nowhere.csv"])
    with pytest.raises(RadvisionError, match="nowhere.csv"):  # it was silently ignored
        split_tables(cfg)


def test_a_renamed_class_column_is_refused_and_a_missing_one_named(tmp_path, helpers, caplog):
    make_mimic(tmp_path, helpers)
    labels = pd.read_csv(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz")
    # was: 'Effusion' dropped without a word, and its positive studies derived as No Finding = 1
    labels.assign(Effusion=[1.0, np.nan, np.nan]).to_csv(tmp_path / "relabelled.csv", index=False)
    with pytest.raises(RadvisionError, match="relabelled.csv has a column 'Effusion' where a CheXpert label file "
                                             "has 'Pleural Effusion'; rename it"):
        read_mimic(tmp_path, csv="relabelled.csv")
    with caplog.at_level("WARNING"):
        read_mimic(tmp_path)
    assert "MIMIC-CXR: mimic-cxr-2.0.0-chexpert.csv.gz lacks the class column(s) 'Enlarged Cardiomediastinum'" \
        in caplog.text
