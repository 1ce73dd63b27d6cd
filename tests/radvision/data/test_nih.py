from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radvision.data.nih import NIH_CLASSES, read_nih
from radvision.data.table import validate_table
from radvision.errors import RadvisionError

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nih_sample"

ROWS = [
    ("00000001_000.png", "Cardiomegaly", 1, "058Y", "M", "PA"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, "058Y", "M", "PA"),
    ("00000002_000.png", "No Finding", 2, "081Y", "F", "AP"),
    ("00000003_000.png", "Hernia|Pleural_Thickening", 3, "074Y", "F", "PA"),
]


def make_nih(root: Path, helpers, kaggle=True, with_lists=True) -> Path:
    frame = pd.DataFrame(ROWS, columns=["Image Index", "Finding Labels", "Patient ID", "Patient Age",
                                        "Patient Gender", "View Position"])
    frame.insert(2, "Follow-up #", 0)
    frame.to_csv(root / "Data_Entry_2017_v2020.csv", index=False)
    for i, (name, *_rest) in enumerate(ROWS):
        folder = root / ("images_001/images" if kaggle else "images")
        helpers.save_gray(folder / name, seed=i)
    if with_lists:
        (root / "train_val_list.txt").write_text("00000001_000.png\n00000001_001.png\n00000002_000.png\n")
        (root / "test_list.txt").write_text("00000003_000.png\n")
    return root


def test_reads_kaggle_layout_labels_meta_and_official_split(tmp_path, helpers):
    t = read_nih(make_nih(tmp_path, helpers))
    validate_table(t)
    assert t.classes == NIH_CLASSES
    f = t.frame
    assert f.columns[0] == "path" and Path(f["path"][0]).is_file() and "images_001/images" in f["path"][0]
    y = t.labels()
    assert y[1, NIH_CLASSES.index("Emphysema")] == 1 and y[1].sum() == 2
    assert y[2].sum() == 0 and not np.isnan(y).any()
    assert f["age"].tolist() == [58, 58, 81, 74]
    assert f["sex"].tolist() == ["M", "M", "F", "F"] and f["view"].tolist() == ["PA", "PA", "AP", "PA"]
    assert f["split"].tolist() == ["train", "train", "train", "test"]
    assert f["patient_id"].tolist() == ["1", "1", "2", "3"]
    assert len(read_nih(tmp_path, split="test")) == 1


def test_classes_selection_and_no_finding(tmp_path, helpers):
    make_nih(tmp_path, helpers, kaggle=False, with_lists=False)
    t = read_nih(tmp_path, classes=["No Finding", "Hernia"])
    assert t.classes == ["No Finding", "Hernia"]
    assert t.labels().tolist() == [[0, 0], [0, 0], [1, 0], [0, 1]]
    assert "split" not in t.frame
    with pytest.raises(RadvisionError, match=r"'Efusion'.*did you mean 'Effusion'"):
        read_nih(tmp_path, classes=["Efusion"])
    with pytest.raises(RadvisionError, match="defines no splits"):
        read_nih(tmp_path, split="train")


def test_split_column_in_csv_wins(tmp_path, helpers):
    make_nih(tmp_path, helpers)
    f = pd.read_csv(tmp_path / "Data_Entry_2017_v2020.csv")
    f["split"] = ["train", "train", "valid", "valid"]
    f.to_csv(tmp_path / "Data_Entry_2017_v2020.csv", index=False)
    assert read_nih(tmp_path).frame["split"].tolist() == ["train", "train", "valid", "valid"]


def test_missing_images_and_bad_csv(tmp_path, helpers):
    make_nih(tmp_path, helpers)
    (tmp_path / "images_001" / "images" / "00000002_000.png").unlink()
    with pytest.raises(RadvisionError, match="00000002_000.png.*1 of 4"):
        read_nih(tmp_path)
    assert len(read_nih(tmp_path, missing="drop")) == 3
    pd.DataFrame({"Image Index": ["a.png"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(RadvisionError, match="Finding Labels"):
        read_nih(tmp_path, csv="bad.csv")
    with pytest.raises(RadvisionError, match="No Data_Entry"):
        read_nih(tmp_path / "images_001")
    with pytest.raises(RadvisionError, match="not found"):
        read_nih(tmp_path / "nowhere")


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared NIH sample not available")
def test_shared_sample():
    t = read_nih(SHARED)
    assert len(t) == 800 and t.frame["split"].value_counts().to_dict() == {"train": 600, "valid": 200}
    assert t.frame["age"].notna().all() and set(t.frame["sex"]) == {"M", "F"}
    validate_table(t)


def test_images_next_to_csv(tmp_path, helpers):
    make_nih(tmp_path, helpers, kaggle=False, with_lists=False)
    for p in (tmp_path / "images").iterdir():
        p.rename(tmp_path / p.name)
    (tmp_path / "images").rmdir()
    t = read_nih(tmp_path)
    assert Path(t.frame["path"][0]).parent == tmp_path


def test_official_lists_with_a_byte_order_mark_keep_the_first_image(tmp_path, helpers):
    make_nih(tmp_path, helpers)
    for name in ("train_val_list.txt", "test_list.txt"):  # saved by an editor that writes UTF-8 with a BOM
        f = tmp_path / name
        f.write_text(f.read_text(), encoding="utf-8-sig")
    assert read_nih(tmp_path).frame["split"].tolist() == ["train", "train", "train", "test"]


def test_a_blank_patient_id_makes_its_image_its_own_patient(tmp_path, helpers, caplog):
    make_nih(tmp_path, helpers)
    entry = tmp_path / "Data_Entry_2017_v2020.csv"
    frame = pd.read_csv(entry)
    frame["Patient ID"] = frame["Patient ID"].astype(object)
    frame.loc[2, "Patient ID"] = None
    frame.to_csv(entry, index=False)
    with caplog.at_level("WARNING"):
        t = read_nih(tmp_path)  # carving valid out of train by patient crashed on the NaN id
    assert t.frame["patient_id"].tolist() == ["1", "1", "00000002_000.png", "3"]  # "1", not "1.0"
    assert "1 image(s) have no patient id" in caplog.text


def test_a_split_the_official_lists_do_not_define_is_an_error_naming_those_they_do(tmp_path, helpers):
    make_nih(tmp_path, helpers)
    with pytest.raises(RadvisionError, match=r"no 'valid' rows; its splits are train, test \(training carves valid"):
        read_nih(tmp_path, split="valid")  # it gave an empty table


def test_the_v2020_file_spells_sex_patient_sex(tmp_path, helpers):
    make_nih(tmp_path, helpers)
    entry = tmp_path / "Data_Entry_2017_v2020.csv"
    pd.read_csv(entry).rename(columns={"Patient Gender": "Patient Sex"}).to_csv(entry, index=False)
    assert read_nih(tmp_path).frame["sex"].tolist() == ["M", "M", "F", "F"]  # the column was dropped


def test_a_blank_finding_labels_cell_is_unknown_and_no_finding_is_kept_for_downsampling(tmp_path, helpers, caplog):
    from radvision.data.imbalance import downsample

    make_nih(tmp_path, helpers, kaggle=False, with_lists=False)
    entry = pd.read_csv(tmp_path / "Data_Entry_2017_v2020.csv")
    entry.loc[3, "Finding Labels"] = np.nan
    entry.to_csv(tmp_path / "Data_Entry_2017_v2020.csv", index=False)
    t = read_nih(tmp_path, classes=["Cardiomegaly", "No Finding"])
    assert np.isnan(t.labels()[3]).all()  # was 0, and No Finding 0: contradictory
    assert "1 row(s) have an empty 'Finding Labels' cell (first: 00000003_000.png)" in caplog.text
    emphysema = read_nih(tmp_path, classes=["Emphysema"])
    assert emphysema.frame["source_no_finding"].tolist()[:3] == [0.0, 0.0, 1.0]
    kept = downsample(emphysema, {"No Finding": 1.0}).frame["path"].map(lambda p: Path(p).name).tolist()
    assert kept == ["00000001_000.png", "00000001_001.png", "00000003_000.png"]  # only the No Finding image goes
