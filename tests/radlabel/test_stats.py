"""Corpus statistics: similarity, noun phrases / verbs, frequencies, prevalence, outputs."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from radlabel.errors import RadlabelError
from radlabel.io import data_path
from radlabel.stats import (
    corpus_stats,
    label_cardinality,
    noun_phrases_and_verbs,
    prevalence,
    section_similarity,
    similarity,
)


def test_similarity_definition():
    assert similarity({"a", "b"}, {"a", "b", "c", "d"}) == 0.5  # |A∩B| / max(|A|,|B|)
    assert similarity({"a"}, {"a"}) == 1.0
    assert similarity({"a"}, set()) == 0.0
    assert math.isnan(similarity(set(), set()))


def test_rule_based_noun_phrases_and_verbs():
    nps, verbs = noun_phrases_and_verbs(
        "The heart size is normal. Small left pleural effusion has increased. Opacity may represent atelectasis.",
        use_model=False)
    assert {"heart size", "small left pleural effusion", "opacity", "atelectasis"} <= nps
    assert "normal" not in nps
    assert {"increased", "represent"} <= verbs
    assert "heart" not in verbs
    nps, _ = noun_phrases_and_verbs("Heart size within normal limits. Opacity above the diaphragm.", use_model=False)
    assert nps == {"heart size", "opacity", "diaphragm"}  # "within" was IU's 4th most frequent noun phrase


def test_section_similarity():
    same = section_similarity("FINDINGS: Small left pleural effusion.\nIMPRESSION: Small left pleural effusion.")
    assert same["noun_phrases"] == 1.0
    none = section_similarity("Small left pleural effusion.")  # no impression: nothing to compare
    assert all(math.isnan(v) for v in none.values())


def test_prevalence_and_cardinality():
    labels = pd.DataFrame({"A": [1, 0, -1, np.nan], "B": [1, 1, np.nan, np.nan]})
    p = prevalence(labels, ["A", "B"]).set_index("class")
    assert p.loc["A", ["positive", "negative", "uncertain", "blank"]].tolist() == [1, 1, 1, 1]
    assert p.loc["B", "prevalence"] == 0.5
    card, dens = label_cardinality(labels, ["A", "B"])
    assert card == 0.75 and dens == 0.375
    card_u, _ = label_cardinality(labels, ["A", "B"], uncertain_as_positive=True)
    assert card_u == 1.0


def test_corpus_stats_on_sample(tmp_path):
    labels = pd.DataFrame({"id": ["S001", "S002"], "Pneumothorax": [0, 1], "Cardiomegaly": [np.nan, 1]})
    res = corpus_stats(data_path("sample_reports.csv"), labels=labels, output_dir=tmp_path, plots=True)
    assert res.summary["reports"] == res.summary["reports_with_text"] > 50
    ents = res.tables["entities"]
    assert {"entity", "label", "count", "share"} <= set(ents.columns)
    assert ents["label"].isin(["ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA"]).all()
    assert ents["count"].is_monotonic_decreasing
    assert len(res.tables["verbs"]) > 0
    sim = res.tables["similarity"].set_index("items")
    assert 0 < sim.loc["entities", "mean"] <= 1 and sim.loc["noun_phrases", "pairs"] > 30
    assert res.summary["label_cardinality"] == 1.0  # (0 + 2 positive labels) / 2 reports
    for name in ("entities.csv", "verbs.csv", "noun_phrases.csv", "similarity.csv", "prevalence.csv",
                 "summary.json", "entities.png", "verbs.png", "prevalence.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "summary.json").read_text())["reports"] == res.summary["reports"]


def test_corpus_stats_limit_and_errors():
    df = pd.DataFrame({"report": ["Small effusion.", None, "", "No pneumothorax."]})
    res = corpus_stats(df, limit=3)
    assert res.summary["reports"] == 3 and res.summary["reports_with_text"] == 1
    with pytest.raises(RadlabelError, match="did you mean 'report'"):
        corpus_stats(df, text_column="reports")
    with pytest.raises(RadlabelError, match="none of the chexpert classes"):
        corpus_stats(df, labels=pd.DataFrame({"x": [1]}))


def test_the_progress_bar_has_a_total(tmp_path, monkeypatch, progress_totals):
    """It had none, even for a DataFrame; a big text file gets one estimated as it is read."""
    import radlabel.io
    import radlabel.stats as stats_module

    totals = progress_totals(stats_module)
    df = pd.DataFrame({"report": ["Small effusion.", "No pneumothorax."] * 300})
    corpus_stats(df, progress=True, limit=500)
    assert totals and set(totals) == {500}
    totals.clear()
    monkeypatch.setattr(radlabel.io, "ESTIMATE_MIN_BYTES", 0)  # the test file is small
    df.to_csv(tmp_path / "r.csv", index=False)
    corpus_stats(tmp_path / "r.csv", progress=True, chunksize=100)
    assert totals and totals[-1] == 600 and None not in totals[1:]


def test_a_limit_applies_to_the_labels_too_and_a_row_mismatch_is_warned(caplog):
    df = pd.DataFrame({"report": ["Small effusion.", "No pneumothorax.", "Pneumothorax."]})
    labels = pd.DataFrame({"Pneumothorax": [np.nan, 0, 1]})
    assert corpus_stats(df, labels=labels, limit=2).tables["prevalence"].set_index("class").loc[
        "Pneumothorax", "positive"] == 0  # the third row's label was counted for two reports
    with caplog.at_level("WARNING"):
        corpus_stats(df, labels=pd.concat([labels] * 4))
    assert "The labels have 12 rows but the corpus 3 reports" in caplog.text


def test_prevalence_is_the_same_from_parquet_labels(tmp_path):
    # radlabel label writes nullable Int8 to Parquet: prevalence counted only the filled rows, and an all-blank
    # column raised a TypeError
    labels = pd.DataFrame({"Edema": pd.array([1, None, None, 0], dtype="Int8"),
                           "Fracture": pd.array([None] * 4, dtype="Int8")})
    labels.to_parquet(tmp_path / "l.parquet")
    reports = pd.DataFrame({"report": ["Edema.", "Clear.", "Clear.", "No edema."]})
    p = corpus_stats(reports, labels=tmp_path / "l.parquet").tables["prevalence"].set_index("class")
    assert p.loc["Edema", "prevalence"] == 0.25 and p.loc["Fracture", "blank"] == 4


def test_invalid_label_values_are_named(tmp_path):
    labels = pd.DataFrame({"Cardiomegaly": ["2", "2", "1"]})  # they vanished from every count
    with pytest.raises(RadlabelError, match="value 2 in column 'Cardiomegaly'"):
        corpus_stats(pd.DataFrame({"report": ["a", "b", "c"]}), labels=labels)


def test_outputs_are_json_null_fresh_and_need_a_folder(tmp_path, caplog):
    out = tmp_path / "st"
    labels = pd.DataFrame({"Edema": [1.0]})
    corpus_stats(pd.DataFrame({"report": ["Edema."]}), labels=labels, output_dir=out)
    assert (out / "prevalence.csv").exists()
    corpus_stats(pd.DataFrame({"report": [""]}), output_dir=out)
    assert not (out / "prevalence.csv").exists()  # the earlier run's table stayed beside the new ones
    assert json.loads((out / "summary.json").read_text())["entities_per_report"] is None  # was NaN: not JSON
    (tmp_path / "f.csv").write_text("x")
    with pytest.raises(RadlabelError, match="is a file; -o names a folder"):
        corpus_stats(pd.DataFrame({"report": ["Edema."]}), output_dir=tmp_path / "f.csv")
    corpus_stats(pd.DataFrame({"report": ["Edema."]}), labels=labels, schema="chestxray14")
    assert "The labels lack 14 of the chestxray14 classes" in caplog.text


def test_labels_and_the_output_folder_are_checked_before_the_corpus_is_read(tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the corpus was analysed before the arguments were checked")

    monkeypatch.setattr("radlabel.pipeline.get_pipeline", no_work)
    corpus = pd.DataFrame({"report": ["Edema."]})
    with pytest.raises(RadlabelError, match="Labels file .*nope.csv' does not exist"):
        corpus_stats(corpus, labels=tmp_path / "nope.csv")
    (tmp_path / "f.csv").write_text("x")
    with pytest.raises(RadlabelError, match="Cannot make the stats output folder"):
        corpus_stats(corpus, output_dir=tmp_path / "f.csv" / "sub")


def test_a_failed_write_keeps_the_earlier_set_of_tables(tmp_path, monkeypatch):
    out = tmp_path / "st"
    corpus_stats(pd.DataFrame({"report": ["FINDINGS: Edema.\nIMPRESSION: Edema."]}), output_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = __import__("radlabel.stats", fromlist=["write_table"]).write_table

    def full_at_verbs(table, path):
        if path.name == "verbs.csv":
            raise OSError(28, "No space left on device", str(path))
        real(table, path)

    monkeypatch.setattr("radlabel.stats.write_table", full_at_verbs)
    with pytest.raises(OSError):
        corpus_stats(pd.DataFrame({"report": ["No effusion."]}), output_dir=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no half-new set, no staging folder

