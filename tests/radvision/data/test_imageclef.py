from pathlib import Path

import numpy as np
import pytest

from radvision.data.imageclef import label_cardinality, label_density, read_concepts, read_imageclef
from radvision.data.table import validate_table
from radvision.errors import RadvisionError


def make_clef(tmp_path: Path, helpers) -> tuple[Path, Path]:
    images = tmp_path / "images"
    for i, ext in enumerate([".jpg", ".png", ".jpg", ".jpg"]):
        helpers.save_gray(images / f"ROCO_{i:05d}{ext}", seed=i)
    tsv = tmp_path / "concepts.tsv"
    tsv.write_text(
        "ROCO_00000\tC0040405;C0034579\n"
        "ROCO_00001\tC0040405\n"
        "ROCO_00002\tC0040405;C0817096;C0034579\n"
        "ROCO_00003\t\n"
    )
    return tsv, images


def test_tab_format_frequency_order_and_multi_hot(tmp_path, helpers):
    tsv, images = make_clef(tmp_path, helpers)
    t = read_imageclef(tsv, images)
    validate_table(t)
    assert t.classes == ["C0040405", "C0034579", "C0817096"]  # most frequent first, ties by CUI
    assert t.labels().tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]]
    assert t.frame["path"][1].endswith("ROCO_00001.png") and Path(t.frame["path"][1]).is_file()
    assert t.frame["concepts"][2] == "C0040405;C0817096;C0034579"
    assert read_imageclef(tsv, images, min_frequency=2).classes == ["C0040405", "C0034579"]
    assert read_imageclef(tsv, images, top_k=1).classes == ["C0040405"]
    assert read_imageclef(tsv, images, classes=["C0817096"]).labels()[:, 0].tolist() == [0, 0, 1, 0]
    assert label_cardinality(t) == pytest.approx(6 / 4)
    assert label_density(t.labels()) == pytest.approx(6 / 4 / 3)


def test_rocov2_csv_with_header(tmp_path, helpers):
    _, images = make_clef(tmp_path, helpers)
    csv = tmp_path / "train_concepts.csv"
    csv.write_text("ID,CUIs\nROCO_00000.jpg,C1;C2\nROCO_00002,C2\n")
    t = read_imageclef(csv, images, sep=",")
    assert len(t) == 2 and t.classes == ["C2", "C1"]
    assert read_concepts(csv, sep=",")["id"].tolist() == ["ROCO_00000.jpg", "ROCO_00002"]
    # the separator is detected when not given (data.dataset=imageclef passes none)
    assert read_imageclef(csv, images).labels().tolist() == t.labels().tolist()


def test_errors(tmp_path, helpers):
    tsv, images = make_clef(tmp_path, helpers)
    csv = tmp_path / "c.csv"
    csv.write_text("ID,CUIs,extra\nA,C1,x\n")
    with pytest.raises(RadvisionError, match="3 fields"):
        read_imageclef(csv, images, sep=",")
    with pytest.raises(RadvisionError, match="min_frequency"):
        read_imageclef(tsv, images, min_frequency=0)
    with pytest.raises(RadvisionError, match="No concept occurs in at least 9"):
        read_imageclef(tsv, images, min_frequency=9)
    with pytest.raises(RadvisionError, match="did you mean 'C0034579'"):
        read_imageclef(tsv, images, classes=["C0034578"])
    (images / "ROCO_00003.jpg").unlink()
    with pytest.raises(RadvisionError, match="ROCO_00003.jpg"):
        read_imageclef(tsv, images)
    assert len(read_imageclef(tsv, images, missing="drop")) == 3
    with pytest.raises(RadvisionError, match="not found"):
        read_imageclef(tmp_path / "none.tsv", images)


def test_cardinality_handles_nan_and_empty():
    assert label_cardinality(np.array([[1, np.nan], [0, 1]], np.float32)) == 1.0
    assert np.isnan(label_cardinality(np.zeros((0, 2))))


def test_a_wrong_separator_is_named(tmp_path):
    from radvision.data.imageclef import read_concepts

    f = tmp_path / "c.csv"
    f.write_text("a\tC1;C2\nb\tC3\n")
    with pytest.raises(RadvisionError, match="gives no concepts with sep=','.*use sep='\\\\t'"):
        read_concepts(f, ",")
    assert read_concepts(f)["concepts"].tolist() == [["C1", "C2"], ["C3"]]
    for typed in ("\\t", "tab", "TAB"):  # as a shell hands over --sep '\t' or --sep tab
        assert read_concepts(f, typed)["concepts"].tolist() == [["C1", "C2"], ["C3"]]
    with pytest.raises(RadvisionError, match="separator ';;' must be one character"):
        read_concepts(f, ";;")


def test_roco_cuis_one_per_tab_field(tmp_path):
    from radvision.data.imageclef import read_concepts

    f = tmp_path / "cuis.txt"
    f.write_text("ROCO_00002\tC0040405\tC0817096\nROCO_00003\tC0040405\n")
    assert read_concepts(f)["concepts"].tolist() == [["C0040405", "C0817096"], ["C0040405"]]


def test_roco_v1_images_are_found_through_dlinks_or_an_id_name_csv(tmp_path, helpers):
    # ROCO v1 stores ROCO_00020's figure as PMC3970251_fig3.jpg (the release's fetch script naming)
    release = tmp_path / "release"
    helpers.save_gray(release / "images" / "PMC3970251_fig3.jpg", seed=1)
    helpers.save_gray(release / "images" / "PMC2766744_g005.jpg", seed=2)
    (release / "cuis.txt").write_text("ROCO_00020\tC0040405\tC0034579\nROCO_00027\tC0040405\n")
    (release / "dlinks.txt").write_text(
        "ROCO_00020\twget -r ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package/1e/ed/PMC3970251.tar.gz -P /x\tfig3.jpg\n"
        "ROCO_00027\twget -r ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package/d9/4e/PMC2766744.tar.gz -P /x\tg005.jpg\n")
    t = read_imageclef(release / "cuis.txt", release / "images")
    assert [Path(p).name for p in t.frame["path"]] == ["PMC3970251_fig3.jpg", "PMC2766744_g005.jpg"]
    assert t.frame["patient_id"].tolist() == ["ROCO_00020", "ROCO_00027"]

    repack = tmp_path / "repack"  # the repackaged release: radiologytraindata.csv with id, name, caption
    helpers.save_gray(repack / "images" / "PMC1_a.jpg", seed=3)
    (repack / "cuis.txt").write_text("ROCO_00001\tC0040405\n")
    (repack / "radiologytraindata.csv").write_text('id,name,caption\nROCO_00001,PMC1_a.jpg,"CT, axial"\n')
    (repack / "notes.csv").write_text("a,b\n1,2\n")  # other tables are ignored, and so are entries not files
    (repack / "old_exports.csv").mkdir()
    (repack / "stale.csv").symlink_to(repack / "gone.csv")
    assert Path(read_imageclef(repack / "cuis.txt", repack / "images").frame["path"][0]).name == "PMC1_a.jpg"

    (repack / "radiologytraindata.csv").unlink()  # without a name list the error still names the id's file
    with pytest.raises(RadvisionError, match="ROCO_00001"):
        read_imageclef(repack / "cuis.txt", repack / "images")


def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path, helpers):
    _, images = make_clef(tmp_path, helpers)
    with_header = tmp_path / "bom.csv"
    with_header.write_text("ID,CUIs\r\nROCO_00000,C1;C2\r\nROCO_00002,C2\r\n", encoding="utf-8-sig")
    t = read_imageclef(with_header, images)
    assert t.classes == ["C2", "C1"] and len(t) == 2  # the header is skipped, not read as an image "CUIs"
    headerless = tmp_path / "bom.tsv"
    headerless.write_text("ROCO_00000\tC1\nROCO_00001\tC1;C2\n", encoding="utf-8-sig")
    assert read_concepts(headerless)["id"].tolist() == ["ROCO_00000", "ROCO_00001"]


def test_a_concept_file_that_is_not_utf8_is_named(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("ROCO_00000\tC1\nROCO_0000\xe9\tC2\n".encode("latin-1"))
    with pytest.raises(RadvisionError, match="latin1.txt is not UTF-8 text"):
        read_concepts(latin1)


def test_a_header_after_blank_lines_is_still_a_header(tmp_path):
    csv = tmp_path / "concepts.csv"
    csv.write_text("\n\nID,CUIs\nimg1,C1;C2\nimg2,C2\n")
    table = read_concepts(csv)
    assert table["id"].tolist() == ["img1", "img2"]  # the header was read as an image 'ID' with concept 'CUIs'


def test_an_id_on_several_lines_is_one_image_with_the_merged_concepts(tmp_path, caplog):
    csv = tmp_path / "concepts.csv"
    csv.write_text("ID,CUIs\nimg1,C1;C2\nimg2,C2\nimg1,C1;C3\n")
    with caplog.at_level("WARNING"):
        table = read_concepts(csv)
    assert table["id"].tolist() == ["img1", "img2"]
    assert table["concepts"].tolist() == [["C1", "C2", "C3"], ["C2"]]
    assert "1 id(s) appear on more than one line (first: 'img1')" in caplog.text
    # counted once per image: C1 is in one image, so min_frequency=2 drops it
    assert read_imageclef(csv, tmp_path, min_frequency=2, missing="ignore").classes == ["C2"]


def test_a_file_of_bare_ids_is_named_without_a_separator_hint(tmp_path):
    from radvision.data.imageclef import read_concepts

    f = tmp_path / "ids.csv"
    f.write_text("a\nb\n")
    with pytest.raises(RadvisionError, match=r"ids.csv gives no concepts; expected lines of 'ID<TAB>CUI;CUI'") as info:
        read_concepts(f)
    assert "sep" not in str(info.value)  # it advised "sep=None (the --sep default)", an option config users lack


def test_a_class_removed_by_the_concept_filters_says_which_filter(tmp_path, helpers):
    tsv, images = make_clef(tmp_path, helpers)
    with pytest.raises(RadvisionError, match=r"'C0817096' occurs in 1 image\(s\), below concept_min_frequency=2"):
        read_imageclef(tsv, images, min_frequency=2, classes=["C0817096"])
    with pytest.raises(RadvisionError, match=r"'C0034579' occurs in 2 image\(s\), outside concept_top_k=1") as err:
        read_imageclef(tsv, images, top_k=1, classes=["C0034579"])
    assert "did you mean" not in str(err.value) and "concept_min_frequency" not in str(err.value)
    with pytest.raises(RadvisionError, match="did you mean 'C0040405'"):  # not in the file at all
        read_imageclef(tsv, images, classes=["C0040406"])


def test_an_id_matching_two_files_takes_the_first_name_with_a_warning(tmp_path, helpers, caplog):
    tsv, images = make_clef(tmp_path, helpers)
    helpers.save_gray(images / "ROCO_00001.bmp", seed=9)  # beside ROCO_00001.png
    helpers.save_gray(images / "ROCO_00003.tif", seed=9)  # beside ROCO_00003.jpg
    with caplog.at_level("WARNING"):
        t = read_imageclef(tsv, images)
    assert Path(t.frame["path"][1]).name == "ROCO_00001.bmp" and Path(t.frame["path"][3]).name == "ROCO_00003.jpg"
    assert "2 image id(s) match more than one file" in caplog.text
    assert "ROCO_00001: ROCO_00001.bmp, ROCO_00001.png" in caplog.text
    tsv.write_text("ROCO_00001.png\tC1\n")  # an id with its extension names its file
    caplog.clear()
    assert Path(read_imageclef(tsv, images).frame["path"][0]).name == "ROCO_00001.png"
    assert "more than one file" not in caplog.text


def test_images_in_modality_subfolders_are_found(tmp_path, helpers, caplog):
    """ImageCLEF 2020 ships its images in one folder per modality (DRAN, DRCT, ... DRXR)."""
    tsv, images = make_clef(tmp_path, helpers)
    for i, modality in ((0, "DRCT"), (2, "DRXR")):
        (images / modality).mkdir()
        (images / f"ROCO_{i:05d}.jpg").rename(images / modality / f"ROCO_{i:05d}.jpg")
    (images / ".hidden").mkdir()
    helpers.save_gray(images / ".hidden" / "ROCO_00003.jpg", seed=5)  # not a copy to choose from
    with caplog.at_level("WARNING"):
        t = read_imageclef(tsv, images)
    assert [Path(p).relative_to(images).as_posix() for p in t.frame["path"]] == [
        "DRCT/ROCO_00000.jpg", "ROCO_00001.png", "DRXR/ROCO_00002.jpg", "ROCO_00003.jpg"]
    assert "more than one file" not in caplog.text
    helpers.save_gray(images / "DRAN" / "ROCO_00001.png", seed=7)  # one name in two folders: the top one, said
    t = read_imageclef(tsv, images)
    assert Path(t.frame["path"][1]) == images / "ROCO_00001.png"
    assert "ROCO_00001: ROCO_00001.png, DRAN/ROCO_00001.png" in caplog.text


def test_a_linked_modality_folder_is_followed_once(tmp_path, helpers, caplog):
    tsv, images = make_clef(tmp_path, helpers)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (images / "ROCO_00002.jpg").rename(elsewhere / "ROCO_00002.jpg")
    (images / "DRXR").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "up").symlink_to(images, target_is_directory=True)  # a link back up: no loop
    (images / "ZZ").symlink_to(elsewhere, target_is_directory=True)  # the same folder twice: walked once, no warning
    with caplog.at_level("WARNING"):
        t = read_imageclef(tsv, images)
    assert Path(t.frame["path"][2]) == images / "DRXR" / "ROCO_00002.jpg" and Path(t.frame["path"][2]).is_file()
    assert "more than one file" not in caplog.text


@pytest.mark.parametrize("header", ["filename\tcuis", "Image ID\tCUIs", "name\tconcepts", "ROCO\tCUI"])
def test_header_rows_are_recognised_by_either_column(tmp_path, header):
    path = tmp_path / "c.tsv"
    path.write_text(f"{header}\nROCO_00000\tC1;C2\n")
    assert read_concepts(path)["id"].tolist() == ["ROCO_00000"]


def test_concepts_joined_by_another_character_are_named(tmp_path, caplog):
    path = tmp_path / "c.tsv"
    path.write_text("a\tC1,C2\nb\tC3|C4\nc\tC5\n")
    with caplog.at_level("WARNING", logger="radvision.data.imageclef"):
        read_concepts(path, sep="\t")
    assert "2 concept(s) hold a ',', '|' or space (first: 'C1,C2')" in caplog.text and "separated by ';'" in caplog.text


def test_concept_frequencies_count_only_the_images_kept(tmp_path, helpers, caplog):
    tsv, images = make_clef(tmp_path, helpers)
    (images / "ROCO_00002.jpg").unlink()  # the only image with C0817096
    t = read_imageclef(tsv, images, missing="drop")
    assert t.classes == ["C0040405", "C0034579"] and len(t) == 3
    with pytest.raises(RadvisionError, match=r"ROCO_00002.jpg .*each id looked up with any image extension"):
        read_imageclef(tsv, images)


def test_concept_id_is_the_file_name_without_an_image_extension():
    from radvision.data import concept_id

    assert concept_id("train/DRAN/ROCO_1.PNG") == "ROCO_1" and concept_id("ROCO_1") == "ROCO_1"
    assert concept_id("synpic.100.dcm") == "synpic.100" and concept_id("a.b") == "a.b"
    assert concept_id("valid\\DRAN\\ROCO_1.jpg") == "ROCO_1"  # a Windows path
