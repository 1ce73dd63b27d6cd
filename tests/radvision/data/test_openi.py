from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radvision.data.openi import match_terms, read_openi
from radvision.data.table import validate_table
from radvision.errors import RadvisionError

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "iu_dev"


def make_openi(root: Path, helpers) -> Path:
    # Made-up reports (the real IU texts must not be copied into the project).
    reports = pd.DataFrame(
        {
            "uid": [1, 2, 3],
            "MeSH": ["Cardiac Shadow/enlarged;Pleural Effusion/left/small", "normal", "No Indexing"],
            "Problems": ["Cardiac Shadow;Pleural Effusion", "normal", "No Indexing"],
            "image": ["two views", "two views", "one view"],
            "indication": ["cough", np.nan, "pain"],
            "comparison": [np.nan, np.nan, np.nan],
            "findings": ["Big heart. Left effusion.", "Clear lungs.", np.nan],
            "impression": ["Cardiomegaly and effusion.", "Normal chest.", "No acute disease."],
        }
    )
    proj = pd.DataFrame(
        {
            "uid": [1, 1, 2, 3],
            "filename": ["1_a.png", "1_b.png", "2_a.png", "3_a.png"],
            "projection": ["Frontal", "Lateral", "Frontal", "Frontal"],
        }
    )
    reports.to_csv(root / "indiana_reports.csv", index=False)
    proj.to_csv(root / "indiana_projections.csv", index=False)
    for name in proj["filename"]:
        helpers.save_gray(root / "images" / "images_normalized" / name)
    return root


def test_labels_from_mesh_and_report_text(tmp_path, helpers):
    t = read_openi(make_openi(tmp_path, helpers))
    validate_table(t)
    f = t.frame
    assert len(t) == 3 and f["view"].tolist() == ["Frontal"] * 3
    assert Path(f["path"][0]).is_file()
    assert f["Cardiomegaly"][0] == 1 and f["Effusion"][0] == 1 and f["No Finding"][0] == 0
    assert f["No Finding"][1] == 1 and f["Cardiomegaly"][1] == 0
    assert np.isnan(t.labels()[2]).all()  # "No Indexing": unknown, not negative
    assert f["report"][0] == "INDICATION: cough\nFINDINGS: Big heart. Left effusion.\nIMPRESSION: Cardiomegaly and effusion."
    assert f["patient_id"].tolist() == ["1", "2", "3"]
    assert len(read_openi(tmp_path, frontal_only=False)) == 4


def test_problems_source_custom_map_and_errors(tmp_path, helpers):
    make_openi(tmp_path, helpers)
    t = read_openi(tmp_path, source="Problems", classes=["Effusion", "Cardiomegaly"])
    assert t.labels()[0].tolist() == [1.0, 0.0]  # "Cardiac Shadow" without "enlarged" is not cardiomegaly
    custom = read_openi(tmp_path, term_map={"heart": ["Cardiac Shadow"]})
    assert custom.classes == ["heart"] and custom.labels()[:2, 0].tolist() == [1.0, 0.0]
    with pytest.raises(RadvisionError, match="did you mean 'MeSH'"):
        read_openi(tmp_path, source="Mesh")
    with pytest.raises(RadvisionError, match="Open-i file not found"):
        read_openi(tmp_path, reports_csv="other.csv")
    with pytest.raises(RadvisionError, match="did you mean 'Nodule'"):
        read_openi(tmp_path, classes=["Nodules"])


def test_a_relative_reports_file_starts_from_the_working_directory(tmp_path, helpers, monkeypatch):
    root = tmp_path / "openi"
    root.mkdir()
    make_openi(root, helpers)
    (tmp_path / "relabelled").mkdir()
    reports = pd.read_csv(root / "indiana_reports.csv")
    reports.loc[1, "MeSH"] = "Cardiomegaly"
    reports.to_csv(tmp_path / "relabelled" / "my_reports.csv", index=False)
    monkeypatch.chdir(tmp_path)
    assert read_openi("openi", reports_csv="relabelled/my_reports.csv").frame["Cardiomegaly"][1] == 1.0
    assert read_openi("openi", reports_csv="indiana_reports.csv").frame["Cardiomegaly"][1] == 0.0  # under root
    # the default names are root's, whatever the working directory holds
    (tmp_path / "indiana_reports.csv").write_text("not,the,file\n")
    assert read_openi("openi").frame["Cardiomegaly"][1] == 0.0


def test_match_terms_qualifiers():
    m = {"X": ["Thickening/pleura"]}
    assert match_terms("Thickening/pleura/left", m, ["X"]) == [1.0]
    assert match_terms("Thickening/bronchi", m, ["X"]) == [0.0]
    assert np.isnan(match_terms(np.nan, m, ["X"])[0])


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared IU dev data not available")
def test_mesh_labels_agree_with_negbio_gold_on_dev():
    t = read_openi(SHARED, reports_csv="indiana_reports_dev.csv", projections_csv="indiana_projections_dev.csv",
                   missing="ignore")
    gold = pd.read_csv(SHARED / "openi_gold_negbio_dev.csv")
    gold["uid"] = gold["filename"].str.replace("CXR", "")
    f = t.frame.drop_duplicates("uid").merge(gold, on="uid", suffixes=("", "_gold"))
    assert len(f) > 800
    for c in ["Atelectasis", "Cardiomegaly", "Effusion", "Nodule", "Emphysema"]:
        known = f[c].notna()
        agree = (f.loc[known, c] == f.loc[known, f"{c}_gold"]).mean()
        assert agree > 0.97, (c, agree)


def test_images_without_a_report_and_projections_left_out_are_counted(tmp_path, helpers, caplog):
    make_openi(tmp_path, helpers)
    proj = pd.read_csv(tmp_path / "indiana_projections.csv")
    proj.loc[2, "projection"] = "Frontal "  # a padded value was not frontal
    proj.loc[4] = {"uid": 9, "filename": "9_a.png", "projection": "PA"}  # uid 9 has no report
    proj.to_csv(tmp_path / "indiana_projections.csv", index=False)
    helpers.save_gray(tmp_path / "images" / "images_normalized" / "9_a.png")
    with caplog.at_level("INFO"):
        t = read_openi(tmp_path)
    assert sorted(t.frame["uid"]) == ["1", "2", "3"] and t.frame["view"].tolist() == ["Frontal"] * 3
    assert "1 of 5 images belong to uids without a report row (first: uid 9); left out" in caplog.text
    assert "frontal_only: left out 1 Lateral" in caplog.text
