"""CheXpert-style evaluation: per-task counts, averages, joins and errors."""

import math

import numpy as np
import pandas as pd
import pytest

from radlabel.errors import RadlabelError
from radlabel.evaluate import evaluate, summary

NAN = np.nan


def _row(m, cls, task):
    return m[(m["class"] == cls) & (m["task"] == task)].iloc[0]


@pytest.fixture
def gold():
    return pd.DataFrame({"id": ["a", "b", "c", "d"], "A": [1, 0, -1, NAN], "B": [1, 1, NAN, 0]})


def test_perfect_prediction_scores_one(gold):
    m = evaluate(gold.sample(frac=1, random_state=0), gold)  # order does not matter: joined on id
    assert _row(m, "A", "positive").f1 == 1.0
    assert _row(m, "A", "uncertain").f1 == 1.0
    assert _row(m, "micro avg", "binary").f1 == 1.0


def test_counts_by_task(gold):
    pred = pd.DataFrame({"id": ["a", "b", "c", "d"], "A": [-1, 0, -1, 1], "B": [1, NAN, 0, 0]})
    m = evaluate(pred, gold, id_column="id")
    pos = _row(m, "A", "positive")
    assert (pos.tp, pos.fp, pos.fn) == (0, 1, 1)  # d predicted 1 (gold blank), a missed
    unc = _row(m, "A", "uncertain")
    assert (unc.tp, unc.fp, unc.fn) == (1, 1, 0)
    assert unc.precision == 0.5 and unc.recall == 1.0 and math.isclose(unc.f1, 2 / 3)
    binary = _row(m, "A", "binary")  # 1 or -1 vs rest: a, c, d positive in pred; a, c in gold
    assert (binary.tp, binary.fp, binary.fn) == (2, 1, 0)
    neg_b = _row(m, "B", "negative")
    assert (neg_b.tp, neg_b.fp, neg_b.fn, neg_b.support) == (1, 1, 0, 1)


def test_micro_and_macro(gold):
    pred = gold.assign(B=[NAN, NAN, NAN, NAN])
    m = evaluate(pred, gold)
    a, b = _row(m, "A", "positive"), _row(m, "B", "positive")
    assert a.f1 == 1.0 and b.f1 == 0.0
    assert _row(m, "macro avg", "positive").f1 == 0.5
    micro = _row(m, "micro avg", "positive")
    assert (micro.tp, micro.fn) == (1, 2) and math.isclose(micro.recall, 1 / 3)


def test_nothing_to_score_is_nan_and_skipped_by_macro():
    gold = pd.DataFrame({"id": [1, 2], "A": [1, 1], "B": [NAN, NAN]})
    m = evaluate(gold, gold)
    assert math.isnan(_row(m, "B", "positive").f1)
    assert _row(m, "macro avg", "positive").f1 == 1.0


def test_ids_match_across_types():
    gold = pd.DataFrame({"uid": [1, 2], "A": [1, 0]})
    pred = pd.DataFrame({"uid": ["2", "1", "3"], "A": [0, 1, 1]})  # extra id 3 is ignored
    assert _row(evaluate(pred, gold), "A", "positive").f1 == 1.0


def test_errors(gold):
    with pytest.raises(RadlabelError, match="2 gold id"):
        evaluate(gold.iloc[:2], gold)
    with pytest.raises(RadlabelError, match="Column 'C' not found"):
        evaluate(gold, gold, classes=["A", "C"])
    with pytest.raises(RadlabelError, match="Column 'idx' not found"):
        evaluate(gold, gold, id_column="idx")
    with pytest.raises(RadlabelError, match=r"Column 'file' not found in the predictions.*--id-column"):
        evaluate(gold, gold.rename(columns={"id": "file"}))
    with pytest.raises(RadlabelError, match="repeat id"):
        evaluate(pd.concat([gold, gold]), gold)
    with pytest.raises(RadlabelError, match="value 2 in column .A."):
        evaluate(gold.assign(A=[2, 0, 0, 0]), gold)
    with pytest.raises(RadlabelError, match="share no class columns"):
        evaluate(gold[["id"]].assign(Z=1), gold)


def test_summary_pivot(gold):
    s = summary(evaluate(gold, gold))
    assert list(s.columns) == ["positive", "negative", "uncertain", "binary"]
    assert list(s.index) == ["A", "B", "micro avg", "macro avg"]


def test_a_gold_class_without_predictions_is_named_other_columns_are_not(gold, caplog):
    extra = gold.assign(Edma=[1, 0, NAN, 0], subject=["s1", "s1", "s2", "s3"], split=["train"] * 4, notes=NAN)
    with caplog.at_level("WARNING", logger="radlabel.evaluate"):
        m = evaluate(gold, extra)
    assert set(m["class"]) == {"A", "B", "micro avg", "macro avg"}
    assert "gold column 'Edma' has no prediction column" in caplog.text
    assert "subject" not in caplog.text and "split" not in caplog.text and "notes" not in caplog.text


def test_a_split_or_note_column_in_both_tables_is_not_a_class(gold):
    both = gold.assign(split=["test"] * 4, note=["x", "y", "z", "w"])
    m = evaluate(both, both)
    assert set(m["class"]) == {"A", "B", "micro avg", "macro avg"}
    with pytest.raises(RadlabelError, match="value 'positive' in column 'A'"):  # a word in one table's class
        evaluate(gold.assign(A=["positive", 0, 0, 0]), gold)


def test_label_values_read_text_nullable_integers_and_refuse_words():
    from radlabel.evaluate import label_values

    frame = pd.DataFrame({"A": pd.array([1, None, -1], dtype="Int8"), "B": ["1.0", "NA", " 0 "]})
    np.testing.assert_array_equal(label_values(frame, ["A", "B"], "x"), [[1, 1], [NAN, NAN], [-1, 0]])
    gold = pd.DataFrame({"id": ["1", "2"], "Edema": [1, 0]})
    pred = pd.DataFrame({"id": ["1", "2"], "Edema": ["positive", "0"]})  # was read as blank: F1 0 and rc 0
    with pytest.raises(RadlabelError, match="value 'positive' in column 'Edema'; valid values are 1, 0, -1"):
        evaluate(pred, gold)


def test_empty_tables_and_blank_ids_are_errors(gold):
    """A header-only gold scored as an all-NaN table with exit 0; a zero-byte one said 'Column None'."""
    with pytest.raises(RadlabelError, match="The gold table has no rows"):
        evaluate(gold, gold.iloc[:0])
    with pytest.raises(RadlabelError, match="The gold table has no rows"):
        evaluate(gold, pd.DataFrame())
    with pytest.raises(RadlabelError, match="The predictions table has no rows"):
        evaluate(gold.iloc[:0], gold)
    blank = gold.copy()
    blank.iloc[1, 0] = None
    with pytest.raises(RadlabelError, match=r"blank id in column '\w+' \(data row 2\)"):
        evaluate(gold, blank)
