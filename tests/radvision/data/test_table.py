import numpy as np
import pandas as pd
import pytest

from radvision.atomic import atomic_write_csv
from radvision.data.table import (
    LabelTable,
    apply_policy,
    check_files,
    select_classes,
    validate_table,
)
from radvision.errors import RadvisionError


def table(n=6):
    frame = pd.DataFrame(
        {
            "path": [f"/x/{i}.png" for i in range(n)],
            "A": [1.0, 0.0, np.nan, 1.0, 0.0, -1.0][:n],
            "B": [0.0, 0.0, 1.0, np.nan, 1.0, 0.0][:n],
            "patient_id": ["p1", "p1", "p2", "p3", "p4", "p4"][:n],
            "split": ["train", "train", "valid", "test", "train", "train"][:n],
        }
    )
    return LabelTable(frame, ["A", "B"], None)


def test_labels_are_float32_with_nan_and_writable():
    y = table().labels()
    assert y.shape == (6, 2) and y.dtype == np.float32
    assert np.isnan(y[2, 0]) and y[5, 0] == -1
    y[0, 0] = 5  # a copy: must not touch the frame
    assert table().labels()[0, 0] == 1


def test_subset_by_split_list_mask_and_positions():
    t = table()
    assert len(t.subset("train")) == 4
    assert set(t.subset(["valid", "test"]).frame["split"]) == {"valid", "test"}
    mask = np.array([True, False, True, False, False, False])
    assert t.subset(mask).frame["path"].tolist() == ["/x/0.png", "/x/2.png"]
    assert t.subset(np.array([5, 0])).frame["path"].tolist() == ["/x/5.png", "/x/0.png"]
    assert t.subset(mask).classes == ["A", "B"]


def test_subset_errors_name_the_problem():
    t = table()
    with pytest.raises(RadvisionError, match="did you mean 'train'"):
        t.subset("trian")
    with pytest.raises(RadvisionError, match="6 rows"):
        t.subset(np.array([True, False]))
    no_split = LabelTable(t.frame.drop(columns=["split"]), t.classes)
    with pytest.raises(RadvisionError, match="no 'split' column"):
        no_split.subset("train")


def test_select_and_unknown_class():
    t = table().select(["B"])
    assert t.classes == ["B"] and "A" not in t.frame
    with pytest.raises(RadvisionError, match=r"Unknown label column 'b'.*did you mean 'B'"):
        table().select(["b"])
    assert select_classes(["A", "B"], None, "x") == ["A", "B"]


def test_validate_table_reports_missing_columns_and_bad_values():
    validate_table(table())
    t = table()
    with pytest.raises(RadvisionError, match="patient_id"):
        validate_table(LabelTable(t.frame.drop(columns=["patient_id"]), t.classes))
    with pytest.raises(RadvisionError, match=r"\['C'\] have no column"):
        validate_table(LabelTable(t.frame, ["A", "C"]))
    bad = t.frame.copy()
    bad.loc[1, "B"] = 2.0
    with pytest.raises(RadvisionError, match="'B' holds 2 "):
        validate_table(LabelTable(bad, t.classes))
    bad = t.frame.copy()
    bad.loc[0, "split"] = "holdout"
    with pytest.raises(RadvisionError, match="holdout"):
        validate_table(LabelTable(bad, t.classes))
    with pytest.raises(RadvisionError, match="no classes"):
        validate_table(LabelTable(t.frame, []))


@pytest.mark.parametrize(
    "policy, expected",
    [("U-Ignore", np.nan), ("U-Zeros", 0.0), ("U-Ones", 1.0), ("U-MultiClass", -1.0)],
)
def test_policies_map_uncertain_only(policy, expected):
    out = apply_policy(pd.DataFrame({"A": [-1, 1, 0, np.nan]}), policy)["A"].to_numpy()
    np.testing.assert_array_equal(out[1:], [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(out[:1], [expected])


@pytest.mark.parametrize("policy, expected", [("U-Ignore", np.nan), ("U-Zeros", 0.0), ("U-Ones", 1.0)])
def test_unmentioned_negative_fills_blanks_before_the_policy(policy, expected):
    out = apply_policy(pd.DataFrame({"A": [-1, 1, 0, np.nan]}), policy, unmentioned="negative")["A"].to_numpy()
    np.testing.assert_array_equal(out[1:], [1.0, 0.0, 0.0])  # the blank is a negative
    np.testing.assert_array_equal(out[:1], [expected])  # the uncertain label still follows the policy
    with pytest.raises(RadvisionError, match=r"'zero'.*masked, negative"):
        apply_policy(pd.DataFrame({"A": [1]}), policy, unmentioned="zero")


def test_unknown_policy_lists_choices():
    with pytest.raises(RadvisionError, match=r"did you mean 'U-Ones'.*U-Ignore, U-Zeros"):
        apply_policy(pd.DataFrame({"A": [1]}), "U-One")


def test_check_files_modes(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    frame = pd.DataFrame({"path": [str(tmp_path / "a.png"), str(tmp_path / "gone.png")]})
    with pytest.raises(RadvisionError, match="gone.png"):
        check_files(frame, "raise", "test")
    assert len(check_files(frame, "drop", "test")) == 1
    assert len(check_files(frame, "ignore", "test")) == 2


def test_atomic_csv_and_prevalence(tmp_path):
    out = atomic_write_csv(pd.DataFrame({"a": [1]}), tmp_path / "sub" / "t.csv")
    assert out.read_text().splitlines() == ["a", "1"]
    assert [p.name for p in out.parent.iterdir()] == ["t.csv"]
    prev = table().prevalence()
    assert prev.loc["A", "positive"] == 2 and prev.loc["A", "uncertain"] == 1 and prev.loc["A", "unknown"] == 1
    assert prev.loc["B", "prevalence"] == pytest.approx(2 / 5)
    assert "6 images" in repr(table())


def test_long_choice_lists_are_shortened():
    many = [f"C{i:04d}" for i in range(300)]
    with pytest.raises(RadvisionError, match=r"C0019, \.\.\. \(300 in all\)\.$"):
        select_classes(many, ["X"], "concepts")


def test_read_csv_checked_refuses_a_repeated_header_only(tmp_path):
    import io
    import warnings

    from radvision.data.table import read_csv_checked

    (tmp_path / "dup.tsv").write_text("path\tA\tA\nx\t1\t0\n")
    with pytest.raises(RadvisionError, match=r"dup.tsv' names the column 'A' more than once"):
        read_csv_checked(tmp_path / "dup.tsv", delimiter="\t")
    # blank header cells (a spreadsheet export), a title row skipped by the caller, separator sniffing, a buffer
    (tmp_path / "blanks.csv").write_text("path,A,,\nx,1,,\n")
    assert list(read_csv_checked(tmp_path / "blanks.csv").columns[:2]) == ["path", "A"]
    (tmp_path / "title.csv").write_text("# export,,\npath,A\nx,1\n")
    assert list(read_csv_checked(tmp_path / "title.csv", skiprows=1).columns) == ["path", "A"]
    (tmp_path / "semi.csv").write_text("path;A\nx;1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(read_csv_checked(tmp_path / "semi.csv", sep=None, engine="python").columns) == ["path", "A"]
    assert read_csv_checked(io.StringIO("path,A\nx,1\n"))["A"].tolist() == [1]


def test_canonical_split_is_one_spelling_for_every_reader():
    from radvision.data.table import canonical_split

    got = canonical_split(pd.Series([" Train", "VAL", "validate", "validation", "test", None]))
    assert got.tolist()[:5] == ["train", "valid", "valid", "valid", "test"] and pd.isna(got.iloc[5])
    assert got.dtype == object


def test_a_table_of_many_classes_takes_more_columns_without_a_fragmentation_warning():
    import warnings

    from radvision.data.table import finish_frame

    classes = [f"C{i:04d}" for i in range(150)]  # ImageCLEF / ROCO keep hundreds of concepts
    frame = pd.DataFrame({"path": ["a.png", "b.png"], "patient_id": ["1", "2"]})
    frame = pd.concat([frame, pd.DataFrame(0.0, index=frame.index, columns=classes)], axis=1)
    out = finish_frame(frame, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' PerformanceWarning reached the command line, even with -q
        out["split"] = "train"
