import numpy as np
import pandas as pd

from radvision.data.table import LabelTable
from radvision.summary import class_counts, class_counts_text, split_overview


def _table(labels, patients):
    frame = pd.DataFrame(labels, columns=["A", "B"], dtype="float32")
    frame.insert(0, "path", [f"{i}.png" for i in range(len(frame))])
    frame["patient_id"] = patients
    return LabelTable(frame, ["A", "B"], None)


def _parts():
    train = _table([[1, 0], [1, np.nan], [0, 0], [0, -1]], ["p1", "p1", "p2", "p3"])
    valid = _table([[0, 0], [1, 0]], ["p3", "p4"])
    return {"train": train, "valid": valid}


def test_split_overview_counts_images_patients_and_patients_shared_with_train():
    overview = split_overview(_parts()).set_index("split")
    assert overview.loc["train", "images"] == 4 and overview.loc["train", "patients"] == 3
    assert pd.isna(overview.loc["train", "patients_in_train"]) and overview.loc["valid", "patients_in_train"] == 1
    assert overview.loc["valid", "images_in_train"] == 2  # 0.png and 1.png: the same files under other patients
    assert overview.loc["train", "cardinality"] == 0.5 and overview.loc["valid", "density"] == 0.25
    assert overview["classes_without_positives"].tolist() == [1, 1]  # B has no positive anywhere


def test_class_counts_keep_unknown_and_uncertain_apart_from_negatives():
    counts = class_counts(_parts()).set_index("class")
    assert counts.loc["A", ["train_positives", "train_negatives", "train_unknown"]].tolist() == [2, 2, 0]
    assert counts.loc["B", ["train_positives", "train_negatives", "train_unknown"]].tolist() == [0, 2, 2]
    assert counts.loc["A", "valid_prevalence"] == 0.5
    text = class_counts_text(class_counts(_parts()))
    assert text["train"].tolist() == ["2 / 4 (50.0%)", "0 / 2 (0.0%) ?2"]
