"""Threshold selection, top-k, dynamic adjustment and thresholds.json."""

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score

from radvision.errors import RadvisionError
from radvision.thresholds import (
    adjust_thresholds,
    f1_optimal_thresholds,
    load_thresholds,
    predict_labels,
    save_thresholds,
    thresholds_array,
    top_k,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    y = (rng.random((80, 3)) < [0.3, 0.5, 0.1]).astype(float)
    p = np.clip(0.3 * y + 0.7 * rng.random((80, 3)), 0, 1)
    return y, p


def test_f1_optimal_beats_every_other_cut(data):
    y, p = data
    thr = f1_optimal_thresholds(y, p)
    for j in range(3):
        best = f1_score(y[:, j], p[:, j] >= thr[j])
        assert all(best >= f1_score(y[:, j], p[:, j] >= c) - 1e-12 for c in np.unique(p[:, j]))
        assert best > f1_score(y[:, j], p[:, j] >= 0.5) - 1e-12


def test_min_precision_constraint(data):
    y, p = data
    thr = f1_optimal_thresholds(y, p, min_precision=0.8)
    for j in range(3):
        assert precision_score(y[:, j], p[:, j] >= thr[j], zero_division=0) >= 0.8
    free = f1_optimal_thresholds(y, p)
    assert (thr >= free).all()


def test_unreachable_precision_and_degenerate_classes():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, np.nan]], dtype=float)
    p = np.array([[0.2, 0.3], [0.9, 0.8], [0.1, 0.1], [0.8, 0.2]])
    thr = f1_optimal_thresholds(y, p, min_precision=0.99)
    assert thr[1] == 0.5  # no positive label: default kept
    assert 0 < thr[0] <= 0.9
    with pytest.raises(RadvisionError, match="min_precision"):
        f1_optimal_thresholds(y, p, min_precision=2)


def test_top_k():
    p = np.array([[0.9, 0.1, 0.5, 0.7], [0.2, 0.3, 0.1, 0.05]])
    np.testing.assert_array_equal(top_k(p, 2), [[1, 0, 0, 1], [1, 1, 0, 0]])
    np.testing.assert_array_equal(top_k(p, 2, thresholds=0.25), [[1, 0, 0, 1], [0, 1, 0, 0]])
    assert top_k(p, 100).sum() == p.size  # ImageCLEF cap larger than the label set
    # the k most probable of the labels that pass: a label over its threshold is not lost to a more
    # probable one under its own
    np.testing.assert_array_equal(top_k([[0.9, 0.8, 0.3]], 1, thresholds=[0.95, 0.95, 0.2]), [[0, 0, 1]])
    np.testing.assert_array_equal(predict_labels([[0.9, 0.8, 0.3]], [0.95, 0.5, 0.2], max_labels=1), [[0, 1, 0]])
    with pytest.raises(RadvisionError, match="positive integer"):
        top_k(p, 0)


def test_predict_labels_row_limits():
    p = np.array([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    assert (predict_labels(p, 0.5).sum(1) == [0, 3]).all()
    np.testing.assert_array_equal(predict_labels(p, 0.5, min_labels=1, max_labels=2), [[0, 0, 1], [1, 1, 0]])
    with pytest.raises(RadvisionError):
        predict_labels(p, 0.5, min_labels=2, max_labels=1)


def test_adjust_thresholds_reaches_target_cardinality(data):
    _, p = data
    base = np.array([0.5, 0.6, 0.7])
    for target in (0.5, 1.0, 2.0):
        new = adjust_thresholds(p, base, target)
        card = (p >= new).sum(1).mean()
        assert abs(card - target) <= 0.05
        assert list(np.argsort(new)) == list(np.argsort(base))  # per-class order kept
    with pytest.raises(RadvisionError, match="target_cardinality"):
        adjust_thresholds(p, base, 5)
    q = np.array([[1e-12, 0.3, 0.8], [0.0, 0.2, 1.0]])
    assert (q >= adjust_thresholds(q, base, 3)).all()  # every label, even at probability 0
    assert not (q >= adjust_thresholds(q, base, 0)).any()  # no label, even at probability 1


def test_save_load_roundtrip(tmp_path):
    path = save_thresholds(tmp_path / "run" / "thresholds.json", ["a", "b"], np.array([0.25, 0.75]))
    assert load_thresholds(path) == {"a": 0.25, "b": 0.75}
    assert json.loads(path.read_text())["format"] == "radvision-thresholds"
    assert [f.name for f in path.parent.iterdir()] == ["thresholds.json"]  # no temp file left behind
    np.testing.assert_array_equal(thresholds_array(load_thresholds(path), ["b", "a"]), [0.75, 0.25])
    (tmp_path / "plain.json").write_text('{"a": 0.1}')
    assert load_thresholds(tmp_path / "plain.json") == {"a": 0.1}


def test_threshold_file_errors(tmp_path):
    with pytest.raises(RadvisionError, match="does not exist"):
        load_thresholds(tmp_path / "nope.json")
    for text, message in (("{oops", "not valid JSON"), ("[1, 2]", "map class names"),
                          ('{"a": true}', "map class names"),
                          ('{"a": 0.5, "b": NaN}', "gives 'b' the threshold nan; thresholds are numbers from 0 to 1")):
        (tmp_path / "t.json").write_text(text)
        with pytest.raises(RadvisionError, match=message):
            load_thresholds(tmp_path / "t.json")
    with pytest.raises(RadvisionError, match="No threshold"):
        thresholds_array({"a": 0.5}, ["a", "b"])
    with pytest.raises(RadvisionError, match="2 classes"):
        save_thresholds(tmp_path / "t.json", ["a", "b"], [0.1, 0.2, 0.3])


def test_threshold_log_names_classes(caplog):
    y = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0]], dtype=float)  # "Rare" and "Rarer" have no positive label
    p = np.array([[0.9, 0.1, 0.1], [0.2, 0.3, 0.1], [0.7, 0.2, 0.1]])
    with caplog.at_level("INFO", logger="radvision.thresholds"):
        f1_optimal_thresholds(y, p, class_names=["Effusion", "Rare", "Rarer"])
    assert "2 class(es) have no positive or no negative labels, so threshold 0.50 is kept: Rare, Rarer" in caplog.text
    assert len(caplog.records) == 1  # one line, not one per class
    with pytest.raises(RadvisionError, match="1 class_names were given for 3 columns"):
        f1_optimal_thresholds(y, p, class_names=["Effusion"])
    caplog.clear()
    y = np.array([[1, 0, 1, 0, 1, 0, 1, 0]] * 2 + [[0, 1, 0, 1, 0, 1, 0, 1]] * 2, dtype=float)
    p = np.array([[0.2] * 8, [0.9] * 8, [0.2] * 8, [0.9] * 8])  # every positive scores below every negative
    with caplog.at_level("WARNING", logger="radvision.thresholds"):
        f1_optimal_thresholds(y, p, min_precision=0.9, class_names=[f"C{j}" for j in range(8)])
    assert len(caplog.records) == 1 and "8 class(es) never reach precision 0.90" in caplog.text
    assert "C0 " in caplog.text and "and 3 more" in caplog.text  # the first five, then a count


def test_decide_applies_the_whole_rule_in_order():
    from radvision.thresholds import decide

    p = np.array([[0.9, 0.8, 0.1], [0.2, 0.3, 0.1], [np.nan, 0.9, 0.9]])
    np.testing.assert_array_equal(decide(p, 0.5), [[1, 1, 0], [0, 0, 0], [0, 0, 0]])  # a NaN row gets nothing
    np.testing.assert_array_equal(decide(p, 0.5, top_k=1), [[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(decide(p, 0.5, min_labels=1), [[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    # cardinality shifts every threshold together over the readable rows: 1 label per row on average
    shifted = decide(p, 0.5, cardinality=1.0)
    assert shifted[:2].sum() == 2 and shifted[0, 0] == 1 and shifted[2].sum() == 0
    assert decide(p, 0.5, cardinality=0.0)[:2].sum() == 0


def test_train_cardinality_is_recorded_beside_the_thresholds(tmp_path):
    from radvision.config import ThresholdConfig
    from radvision.thresholds import load_train_cardinality, rule_from_config

    path = save_thresholds(tmp_path / "t.json", ["a", "b"], [0.3, 0.6], train_cardinality=1.5)
    assert load_train_cardinality(path) == 1.5 and load_thresholds(path) == {"a": 0.3, "b": 0.6}
    assert load_train_cardinality(save_thresholds(tmp_path / "u.json", ["a"], [0.3])) is None
    rule = rule_from_config(ThresholdConfig(top_k=2, min_labels=1, cardinality="train"), 1.5)
    assert rule == {"top_k": 2, "min_labels": 1, "cardinality": 1.5}
    with pytest.raises(RadvisionError, match="recorded no training label cardinality"):
        rule_from_config(ThresholdConfig(cardinality="train"), None)


def test_bad_probabilities_and_thresholds_are_named(caplog):
    y = np.array([[1.0], [0.0]])
    with pytest.raises(RadvisionError, match="y_prob contains NaN"):
        f1_optimal_thresholds(y, np.array([[np.nan], [0.2]]))
    with pytest.raises(RadvisionError, match=r"probabilities in \[0, 1\]"):
        f1_optimal_thresholds(y, np.array([[1.5], [0.2]]))
    with caplog.at_level("WARNING", logger="radvision.thresholds"):
        thr = f1_optimal_thresholds([[0], [1], [0], [1]], [[.9], [.8], [.7], [.2]], min_precision=0.9,
                                    class_names=["A"])
    # the warning names the threshold it uses (every image positive, precision 0.5: below the lowest score 0.2)
    assert thr[0] == pytest.approx(0.1) and "most precise threshold: A 0.100 (precision 0.500)" in caplog.text
    for bad in (np.nan, -3, 2, [0.5, np.nan]):
        with pytest.raises(RadvisionError, match="Thresholds must be probabilities between 0 and 1"):
            predict_labels(np.array([[0.2, 0.9]]), bad)
    with pytest.raises(RadvisionError, match=r"max_labels \(top_k\) must be at least 1"):
        predict_labels(np.array([[0.2, 0.9]]), 0.5, max_labels=0)
    with pytest.raises(RadvisionError, match="min_labels must be 0 or more"):
        predict_labels(np.array([[0.2, 0.9]]), 0.5, min_labels=-1)


def test_min_labels_tops_up_only_rows_that_are_short():
    """With per-class thresholds, the labels a row has are not always its most probable: a row that already has
    min_labels keeps exactly those, and a short one gets its most probable missing labels up to min_labels."""
    np.testing.assert_array_equal(predict_labels(np.array([[0.6, 0.3, 0.1]]), np.array([0.9, 0.2, 0.5]),
                                                 min_labels=1), [[0, 1, 0]])
    p = np.array([[0.6, 0.5, 0.4, 0.3], [0.1, 0.2, 0.3, 0.4], [0.9, 0.8, 0.7, 0.6]])
    thr = np.array([0.9, 0.9, 0.35, 0.9])
    np.testing.assert_array_equal(predict_labels(p, thr, min_labels=2), [[1, 0, 1, 0], [0, 0, 1, 1], [1, 0, 1, 0]])
    np.testing.assert_array_equal(predict_labels(p, 0.99, min_labels=9), np.ones((3, 4), dtype=int))


def test_a_never_threshold_round_trips(tmp_path):
    """adjust_thresholds gives 'no label at all' as a threshold just above 1; a file holding it loads again."""
    thr = adjust_thresholds(np.random.default_rng(0).random((5, 2)), 0.5, 0)
    save_thresholds(tmp_path / "t.json", ["a", "b"], thr)
    np.testing.assert_array_equal(list(load_thresholds(tmp_path / "t.json").values()), thr)


def test_f1_optimal_thresholds_take_pandas_nullable_gold():
    import pandas as pd

    gold = pd.DataFrame({"A": [1, 0, None, 1], "B": [0, 1, 1, 0]}).astype("Int64")
    prob = pd.DataFrame({"A": [.9, .2, .5, .7], "B": [.1, .8, .6, .3]})
    np.testing.assert_array_equal(f1_optimal_thresholds(gold, prob), f1_optimal_thresholds(gold.astype(float), prob))


def test_a_thresholds_mapping_from_load_thresholds_is_taken_by_class_name(tmp_path):
    from radvision.metrics import evaluate_predictions
    from radvision.thresholds import decide

    y = np.array([[1, 0], [0, 1], [1, 1]], dtype=float)
    p = np.array([[0.6, 0.2], [0.3, 0.7], [0.8, 0.4]])
    save_thresholds(tmp_path / "t.json", ["B", "A"], [0.3, 0.5])
    by_name = load_thresholds(tmp_path / "t.json")
    got, expected = (evaluate_predictions(y, p, ["A", "B"], thresholds=t) for t in (by_name, [0.5, 0.3]))
    assert got["macro_f1"] == expected["macro_f1"] and got["exact_match"] == expected["exact_match"] == 1.0
    with pytest.raises(RadvisionError, match=r"No threshold for class\(es\) \['C'\]"):
        evaluate_predictions(y, p, ["A", "C"], thresholds=by_name)
    with pytest.raises(RadvisionError, match="thresholds_array"):
        decide(p, by_name)
    np.testing.assert_array_equal(thresholds_array(by_name, ["A", "B"]), [0.5, 0.3])


def test_f1_optimal_thresholds_sit_between_scores_so_a_last_bit_change_keeps_the_labels():
    """The threshold was the deciding positive's own score: predicting it again with another batch size gave a
    score 1 ulp lower, which flipped it to negative and changed the run's valid F1."""
    y = np.array([[1], [1], [0], [1], [0], [0]], dtype=float)
    p = np.array([[0.9], [0.8], [0.7], [0.6192126870], [0.3], [0.1]])
    thr = f1_optimal_thresholds(y, p)
    assert thr[0] == pytest.approx((0.6192126870 + 0.3) / 2)
    nudged = np.nextafter(p, 0, dtype=np.float32).astype(float)
    assert (predict_labels(nudged, thr) == predict_labels(p, thr)).all()
    assert predict_labels(p, thr)[:, 0].tolist() == [1, 1, 1, 1, 0, 0]


def test_scores_one_ulp_apart_keep_the_threshold_on_the_positive():
    a = 0.9127555772777217
    b = np.nextafter(a, 0)  # (a + b) / 2 rounds to b, which would label the negative positive
    thr = f1_optimal_thresholds([[1], [0]], [[a], [b]])
    assert thr[0] == a and predict_labels([[a], [b]], thr)[:, 0].tolist() == [1, 0]
