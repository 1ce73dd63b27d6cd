from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radvision.data.generic import read_csv_table, read_folder
from radvision.data.table import validate_table
from radvision.errors import RadvisionError


def make_csv(tmp_path: Path, helpers, sep=",", name="labels.csv") -> Path:
    for i in range(3):
        helpers.save_gray(tmp_path / "imgs" / f"{i}.png", seed=i)
    frame = pd.DataFrame(
        {
            "file": ["imgs/0.png", "imgs/1.png", str(tmp_path / "imgs" / "2.png")],
            "Effusion": [1, 0, -1],
            "Mass": [0, np.nan, 1],
            "pid": ["a", "a", "b"],
            "age": [50, 60, 70],
            "sex": ["female", "M", None],
            "split": ["train", "val", "test"],
            "note": ["x", "y", "z"],
        }
    )
    frame.to_csv(tmp_path / name, index=False, sep=sep)
    return tmp_path / name


def test_csv_relative_and_absolute_paths_labels_and_meta(tmp_path, helpers):
    t = read_csv_table(make_csv(tmp_path, helpers), path_column="file", patient_column="pid", policy="U-Zeros")
    validate_table(t)
    assert t.classes == ["Effusion", "Mass"]  # numeric columns except meta (age)
    assert all(Path(p).is_file() for p in t.frame["path"])
    np.testing.assert_array_equal(t.labels(), [[1, 0], [0, np.nan], [0, 1]])
    assert t.frame["patient_id"].tolist() == ["a", "a", "b"]
    assert t.frame["split"].tolist() == ["train", "valid", "test"]
    assert t.frame["sex"].tolist()[:2] == ["F", "M"]
    tsv = make_csv(tmp_path, helpers, sep="\t", name="labels.tsv")
    assert read_csv_table(tsv, path_column="file", label_columns=["Mass"]).classes == ["Mass"]


def test_csv_errors(tmp_path, helpers):
    csv = make_csv(tmp_path, helpers)
    with pytest.raises(RadvisionError, match="no path column 'path'"):
        read_csv_table(csv)
    with pytest.raises(RadvisionError, match="did you mean 'Effusion'"):
        read_csv_table(csv, path_column="file", label_columns=["effusion "])
    with pytest.raises(RadvisionError, match=r"'note' in labels.csv holds 'x' \(data row 1\); labels are 1, 0, -1"):
        read_csv_table(csv, path_column="file", label_columns=["note"])
    with pytest.raises(RadvisionError, match="did you mean 'pid'"):
        read_csv_table(csv, path_column="file", patient_column="pids")
    (tmp_path / "imgs" / "1.png").unlink()
    with pytest.raises(RadvisionError, match="imgs/1.png"):
        read_csv_table(csv, path_column="file")
    with pytest.raises(RadvisionError, match="not found"):
        read_csv_table(tmp_path / "missing.csv")


def test_a_stray_cell_in_a_label_column_is_named_and_text_columns_left_out_are_logged(tmp_path, helpers, caplog):
    csv = make_csv(tmp_path, helpers)
    with caplog.at_level("INFO"):
        assert read_csv_table(csv, path_column="file").classes == ["Effusion", "Mass"]
    assert "left out the non-numeric column(s) pid, note" in caplog.text
    assert "yes / no words" not in caplog.text
    frame = pd.read_csv(csv)
    frame.assign(Nodule=["yes", "no", None]).to_csv(csv, index=False)
    caplog.clear()
    with caplog.at_level("WARNING"):  # a class written in words was dropped with an INFO line only
        assert read_csv_table(csv, path_column="file").classes == ["Effusion", "Mass"]
    assert "the column(s) Nodule hold yes / no words and are not trained on" in caplog.text
    frame = pd.read_csv(csv)
    frame["Mass"] = ["0", "1?", "1"]  # a typo: the column was read as text and the class dropped without a word
    frame.to_csv(csv, index=False)
    with pytest.raises(RadvisionError, match=r"'Mass' in labels.csv holds '1\?' \(data row 2\)"):
        read_csv_table(csv, path_column="file")
    frame["Mass"] = [0, 0.5, 1]
    frame.to_csv(csv, index=False)
    with pytest.raises(RadvisionError, match=r"'Mass' in labels.csv holds 0.5 \(data row 2\)"):  # not np.float64(0.5)
        read_csv_table(csv, path_column="file")


def test_folder_flat_and_with_splits(tmp_path, helpers):
    for cls in ("normal", "effusion"):
        for i in range(2):
            helpers.save_gray(tmp_path / "flat" / cls / f"{i}.png", seed=i)
            helpers.save_gray(tmp_path / "split" / ("train" if i == 0 else "val") / cls / f"{i}.png", seed=i)
    t = read_folder(tmp_path / "flat")
    validate_table(t)
    assert t.classes == ["effusion", "normal"] and len(t) == 4
    assert (t.labels().sum(axis=1) == 1).all()
    s = read_folder(tmp_path / "split")
    assert sorted(s.frame["split"]) == ["train", "train", "valid", "valid"]
    with pytest.raises(RadvisionError, match="every image would be positive"):
        read_folder(tmp_path / "flat", classes=["normal"])
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(RadvisionError, match="No images"):
        read_folder(tmp_path / "empty")
    with pytest.raises(RadvisionError, match="no class sub-folders"):
        read_folder(tmp_path / "empty" / "cls")


def test_csv_blank_and_padded_path_cells(tmp_path, helpers):
    csv = make_csv(tmp_path, helpers)
    frame = pd.read_csv(csv)
    frame.loc[0, "file"] = "  imgs/0.png "  # spaces around a name are not part of it
    frame.loc[3] = {**frame.loc[1].to_dict(), "file": np.nan}  # a row without a path
    frame.to_csv(csv, index=False)
    with pytest.raises(RadvisionError, match=r"an empty path cell, data row 4.*1 of 4 files"):
        read_csv_table(csv, path_column="file")
    t = read_csv_table(csv, path_column="file", missing="drop")
    assert len(t) == 3 and Path(t.frame["path"][0]).is_file()


def test_a_report_labelers_table_trains_as_it_means(tmp_path, helpers, caplog):
    # radlabel writes id, one column per class (1 / 0 / -1 / blank), and an error column that is blank when
    # every report was read; No Finding stays blank where a finding is present or uncertain
    for i in range(4):
        helpers.save_gray(tmp_path / f"{i}.png", seed=i)
    frame = pd.DataFrame({"file": [f"{i}.png" for i in range(4)], "No Finding": [1, None, None, None],
                          "Edema": [None, 1, -1, None], "Support Devices": [None, None, None, 1],
                          "study": [7, 8, 9, 10], "error": [None] * 4, "subject": ["a", "a", "b", "c"]})
    frame.to_csv(tmp_path / "labels.csv", index=False)
    with caplog.at_level("WARNING"):
        t = read_csv_table(tmp_path / "labels.csv", path_column="file", label_columns=["No Finding", "Edema"])
    assert "no patient column" in caplog.text and "data.patient_column" in caplog.text  # no split column: a warning
    np.testing.assert_array_equal(t.labels()[:, 0], [1, 0, 0, np.nan])  # a device alone is not a finding
    # CheXpert findings count chosen or not (Edema left out of data.classes is still a finding); another
    # unchosen column may be a 0 / 1 flag (portable) and does not
    frame.assign(portable=[0, 0, 0, 1]).to_csv(tmp_path / "flags.csv", index=False)
    flags = read_csv_table(tmp_path / "flags.csv", path_column="file", label_columns=["No Finding"])
    np.testing.assert_array_equal(flags.labels()[:, 0], [1, 0, 0, np.nan])
    frame.drop(columns="study").to_csv(tmp_path / "labels.csv", index=False)
    every = read_csv_table(tmp_path / "labels.csv", path_column="file", patient_column="subject")
    assert "error" not in every.classes and every.frame["patient_id"].tolist() == ["a", "a", "b", "c"]


def test_a_report_the_labeler_could_not_read_stays_unknown_even_when_unmentioned_is_negative(
        tmp_path, helpers, caplog):
    for i in range(3):
        helpers.save_gray(tmp_path / f"{i}.png", seed=i)
    pd.DataFrame({"path": [f"{i}.png" for i in range(3)], "Edema": [1, None, None], "No Finding": [None, 1, None],
                  "error": ["truncated to the first 100000 characters", None, "no words in the labelled sections"]}
                 ).to_csv(tmp_path / "l.csv", index=False)
    with caplog.at_level("WARNING"):
        t = read_csv_table(tmp_path / "l.csv", unmentioned="negative")
    # a note beside labels (a report labelled after truncation) keeps them
    np.testing.assert_array_equal(t.labels(), [[1, 0], [0, 1], [np.nan, np.nan]])
    assert "1 row(s) have a labeler error and no label (first: data row 3: no words" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # masked already leaves its blanks unknown: nothing to warn about
        np.testing.assert_array_equal(read_csv_table(tmp_path / "l.csv").labels()[2], [np.nan, np.nan])
    assert "labeler error" not in caplog.text


def test_a_saved_reader_table_reads_back_with_its_no_finding_flag_as_meta(tmp_path):
    from radvision.data.imbalance import downsample
    from radvision.sample import load_nih_sample

    saved = load_nih_sample()
    saved.frame.to_csv(tmp_path / "gold.csv", index=False)
    back = read_csv_table(tmp_path / "gold.csv")
    assert back.classes == saved.classes  # source_no_finding is not a 15th class
    np.testing.assert_array_equal(back.frame["source_no_finding"], saved.frame["source_no_finding"])
    assert len(downsample(back, {"No Finding": 1.0})) == len(downsample(saved, {"No Finding": 1.0}))


def test_a_class_named_no_finding_is_a_class(tmp_path, helpers):
    # the readers' own flag is source_no_finding, so a dataset's "no_finding" class stays a class
    for cls in ("no_finding", "pneumonia"):
        for i in range(2):
            helpers.save_gray(tmp_path / "f" / cls / f"{i}.png", seed=i)
    assert read_folder(tmp_path / "f").classes == ["no_finding", "pneumonia"]
    pd.DataFrame({"path": [f"f/no_finding/{i}.png" for i in range(2)], "no_finding": [1, 0],
                  "pneumonia": [0, 1]}).to_csv(tmp_path / "l.csv", index=False)
    assert read_csv_table(tmp_path / "l.csv").classes == ["no_finding", "pneumonia"]


def test_a_header_only_or_label_less_csv_is_named(tmp_path):
    header_only = tmp_path / "empty.csv"
    header_only.write_text("path,A,patient_id\n")
    with pytest.raises(RadvisionError, match="empty.csv holds no image rows, only its header"):
        read_csv_table(header_only)
    text_only = tmp_path / "text.csv"
    text_only.write_text("path,finding\na.png,yes\n")
    with pytest.raises(RadvisionError, match=r"no numeric label columns \(other columns: \['finding'\]\); "
                                             r"choose them with data.classes"):
        read_csv_table(text_only)


def test_a_blank_patient_id_makes_its_image_its_own_patient(tmp_path, helpers, caplog):
    for i in range(4):
        helpers.save_gray(tmp_path / f"{i}.png", seed=i)
    (tmp_path / "labels.csv").write_text("path,A,patient_id\n0.png,1,\n1.png,0,p1\n2.png,1,p1\n3.png,0, \n")
    with caplog.at_level("WARNING"):
        t = read_csv_table(tmp_path / "labels.csv")
    assert t.frame["patient_id"].tolist() == ["0.png", "p1", "p1", "3.png"]  # not NaN, and not one pooled "nan"
    assert "2 image(s) have no patient id (first: data row 1)" in caplog.text
    from radvision.data.splits import patient_split

    parts = patient_split(t, (0.5, 0.5), seed=0)  # NaN ids crashed the split with a TypeError
    assert sum(len(p) for p in parts.values()) == 4


def test_a_label_cell_of_spaces_is_blank(tmp_path, helpers):
    (tmp_path / "labels.csv").write_text("path,A,B,patient_id\nx0.png,1,0,p0\nx1.png,0, ,p1\nx2.png,1, 1 ,p2\n")
    t = read_csv_table(tmp_path / "labels.csv", missing="ignore")
    assert t.classes == ["A", "B"]  # B was left out of the detected classes
    np.testing.assert_array_equal(t.labels()[:, 1], [0, np.nan, 1])
    assert read_csv_table(tmp_path / "labels.csv", label_columns=["B"], missing="ignore").classes == ["B"]


def test_windows_style_relative_paths_find_their_images(tmp_path, helpers):
    helpers.save_gray(tmp_path / "images" / "a.png", seed=0)
    (tmp_path / "labels.csv").write_text("path,A,patient_id\nimages\\a.png,1,p0\n")
    t = read_csv_table(tmp_path / "labels.csv")
    assert t.frame["path"].tolist() == [str(tmp_path / "images" / "a.png")]


def _tree(root, layout: dict[str, int], helpers) -> None:
    """``{"train/a": 2, ...}``: that many gray images in each folder."""
    for folder, n in layout.items():
        for i in range(n):
            helpers.save_gray(root / folder / f"{i}.png", seed=i)


def test_system_folders_are_neither_classes_nor_splits(tmp_path, helpers):
    _tree(tmp_path, {"train/a": 2, "train/b": 2, "val/a": 1, "val/b": 1, "test/a": 1, "test/b": 1}, helpers)
    for junk in ("__MACOSX/train", ".Trash", "$RECYCLE.BIN", "System Volume Information"):
        (tmp_path / junk).mkdir(parents=True)
    helpers.save_gray(tmp_path / "__MACOSX" / "train" / "a" / "._0.png")
    t = read_folder(tmp_path)
    assert t.classes == ["a", "b"]
    assert t.frame["split"].value_counts().to_dict() == {"train": 4, "valid": 2, "test": 2}


def test_a_semicolon_csv_is_named_as_such(tmp_path, helpers):
    csv = make_csv(tmp_path, helpers, sep=";")
    with pytest.raises(RadvisionError, match="no path column 'file' \\(the file looks semicolon-separated"):
        read_csv_table(csv, path_column="file")


def test_a_split_column_takes_the_split_folder_spellings(tmp_path, helpers):
    csv = make_csv(tmp_path, helpers)
    frame = pd.read_csv(csv)
    frame.assign(split=["Training", "validation", "testing"]).to_csv(csv, index=False)
    assert read_csv_table(csv, path_column="file").frame["split"].tolist() == ["train", "valid", "test"]


def test_split_folders_in_any_case_and_common_spellings(tmp_path, helpers):
    _tree(tmp_path, {"Training/glioma": 2, "Training/notumor": 2, "Testing/glioma": 1, "Testing/notumor": 1,
                     "Validation/glioma": 1, "Validation/notumor": 1}, helpers)
    t = read_folder(tmp_path)
    assert t.classes == ["glioma", "notumor"]
    assert t.frame["split"].value_counts().to_dict() == {"train": 4, "test": 2, "valid": 2}


def test_split_folders_beside_other_folders_are_refused(tmp_path, helpers):
    _tree(tmp_path, {"train/a": 1, "train/b": 1, "test/a": 1, "test/b": 1, "extra/a": 1}, helpers)
    with pytest.raises(RadvisionError, match=r"split folders \(test, train\) beside other folders \(extra\)"):
        read_folder(tmp_path)


def test_a_class_folder_holding_split_folders_names_the_right_root(tmp_path, helpers):
    _tree(tmp_path, {"chest_xray/train/NORMAL": 1, "chest_xray/test/NORMAL": 1}, helpers)
    with pytest.raises(RadvisionError, match="set data.root to .*chest_xray"):
        read_folder(tmp_path)


def test_class_folders_holding_only_sub_folders_are_warned_about(tmp_path, helpers, caplog):
    _tree(tmp_path, {"site1/a": 1, "site1/b": 1, "site2/a": 1, "flat": 1}, helpers)
    with caplog.at_level("WARNING"):
        assert read_folder(tmp_path).classes == ["flat", "site1", "site2"]
    assert "2 class folder(s) hold no images directly, only sub-folders" in caplog.text
    assert "site1/ holds a, b" in caplog.text and "flat" not in caplog.text.split("(")[1].split(")")[0]


def test_images_directly_in_a_split_folder_are_named(tmp_path, helpers, caplog):
    _tree(tmp_path, {"train/a": 2, "train/b": 2, "valid/a": 1, "valid/b": 1}, helpers)
    helpers.save_gray(tmp_path / "train" / "unsorted.png")
    with caplog.at_level("WARNING"):
        t = read_folder(tmp_path)
    assert len(t) == 6
    assert "1 image(s) lie directly in split folders" in caplog.text and "train/unsorted.png" in caplog.text


def test_a_folder_subset_names_what_it_leaves_out_and_one_class_is_refused(tmp_path, helpers, caplog):
    for cls in ("covid", "normal", "pneumonia"):
        for i in range(2):
            helpers.save_gray(tmp_path / "three" / cls / f"{i}.png", seed=i)
    helpers.save_gray(tmp_path / "one" / "covid" / "0.png")
    t = read_folder(tmp_path / "three", classes=["covid", "normal"])
    assert len(t) == 4 and "leaves out the folder(s) pneumonia and their 2 image(s)" in caplog.text
    with pytest.raises(RadvisionError, match=r"data.classes reads one class folder of .*three \(covid\), so every "
                       r"image would be positive for it; choose at least two of its folders: covid, normal, pneumonia"):
        read_folder(tmp_path / "three", classes=["covid"])  # was: 2 images, all positive, trained to nothing
    with pytest.raises(RadvisionError, match=r"has one class folder \(covid\)"):
        read_folder(tmp_path / "one")
