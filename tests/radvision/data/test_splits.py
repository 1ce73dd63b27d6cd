import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radvision.data.splits import assert_patient_disjoint, patient_kfold, patient_split, source_splits
from radvision.data.table import LabelTable
from radvision.errors import RadvisionError


def table(patients):
    frame = pd.DataFrame({"path": [f"/p/{i}.png" for i in range(len(patients))], "A": 0.0,
                          "patient_id": [str(p) for p in patients]})
    return LabelTable(frame, ["A"])


def test_no_patient_in_two_splits_and_fractions_close():
    rng = np.random.default_rng(1)
    t = table(rng.integers(0, 300, 1000))
    parts = patient_split(t, (0.8, 0.1, 0.1), seed=3)
    assert list(parts) == ["train", "valid", "test"]
    assert sum(len(p) for p in parts.values()) == 1000
    assert_patient_disjoint(parts)
    for name, frac in (("train", 0.8), ("valid", 0.1), ("test", 0.1)):
        assert abs(len(parts[name]) / 1000 - frac) < 0.02
        assert set(parts[name].frame["split"]) == {name}
    again = patient_split(t, (0.8, 0.1, 0.1), seed=3)
    assert again["test"].frame["path"].tolist() == parts["test"].frame["path"].tolist()
    other = patient_split(t, (0.8, 0.1, 0.1), seed=4)
    assert other["test"].frame["path"].tolist() != parts["test"].frame["path"].tolist()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 15), min_size=1, max_size=60), st.integers(0, 5))
def test_split_property(patients, seed):
    parts = patient_split(table(patients), {"train": 0.7, "valid": 0.3}, seed=seed)
    assert sum(len(p) for p in parts.values()) == len(patients)
    assert_patient_disjoint(parts)


def test_bad_fractions():
    t = table([1, 2, 3])
    with pytest.raises(RadvisionError, match="sum to 1"):
        patient_split(t, (0.8, 0.3))
    with pytest.raises(RadvisionError, match="2 .* or 3"):
        patient_split(t, (1.0,))
    with pytest.raises(RadvisionError, match="holdout"):
        patient_split(t, {"train": 0.5, "holdout": 0.5})


def test_kfold_and_source_splits_and_leak_detection():
    t = table([0, 0, 1, 2, 2, 3, 4, 5])
    folds = patient_kfold(t, k=3)
    assert len(folds) == 3
    for train, valid in folds:
        assert not set(train.frame["patient_id"]) & set(valid.frame["patient_id"])
        assert len(train) + len(valid) == len(t)
    with pytest.raises(RadvisionError, match="between 2 and"):
        patient_kfold(t, k=50)
    with pytest.raises(RadvisionError, match="no source-defined"):
        source_splits(t)
    t.frame["split"] = ["train", "test", "train", "valid", "valid", "train", "train", "test"]
    parts = source_splits(t)
    assert list(parts) == ["train", "valid", "test"] and len(parts["train"]) == 4
    with pytest.raises(RadvisionError, match="Patient '0' appears in both the 'train' and 'test'"):
        assert_patient_disjoint(parts)


def test_a_hand_built_table_with_blank_patient_ids_is_refused_by_name():
    t = LabelTable(pd.DataFrame({"path": ["a", "b", "c"], "A": [1.0, 0.0, 1.0], "patient_id": ["p", None, np.nan]}),
                   ["A"])
    for split in (lambda: patient_split(t, (0.5, 0.5)), lambda: patient_kfold(t, 2)):
        with pytest.raises(RadvisionError, match=r"2 row\(s\) with no 'patient_id' \(first: row 1\)"):
            split()
