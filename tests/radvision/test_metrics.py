"""Metrics agree with scikit-learn, mask NaN labels per class, and return NaN (quietly) when undefined."""

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from radvision.errors import RadvisionError
from radvision.metrics import (
    any_finding,
    binarize,
    confusion_matrices,
    evaluate_predictions,
    monitored_mean,
    noisy_or_score,
    per_class_metrics,
)

NAMES = ["a", "b", "c", "d"]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 4)) < [0.5, 0.3, 0.2, 0.4]).astype(float)
    p = np.clip(0.35 * y + 0.65 * rng.random((60, 4)), 0, 1)
    return y, p


def test_summary_matches_sklearn(data):
    y, p = data
    thr = np.array([0.5, 0.4, 0.6, 0.45])
    pred = (p >= thr).astype(int)
    out = evaluate_predictions(y, p, NAMES, thresholds=thr)
    # ImageCLEF's instance-averaged F1 is sklearn's "samples" average
    assert out["samples_f1"] == pytest.approx(skm.f1_score(y, pred, average="samples", zero_division=1.0))
    assert out["micro_f1"] == pytest.approx(skm.f1_score(y, pred, average="micro"))
    assert out["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert out["macro_precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert out["micro_recall"] == pytest.approx(skm.recall_score(y, pred, average="micro"))
    assert out["mean_auroc"] == pytest.approx(skm.roc_auc_score(y, p, average="macro"))
    assert out["micro_auroc"] == pytest.approx(skm.roc_auc_score(y, p, average="micro"))
    assert out["mean_average_precision"] == pytest.approx(skm.average_precision_score(y, p, average="macro"))
    assert out["exact_match"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["hamming_loss"] == pytest.approx(skm.hamming_loss(y, pred))
    assert out["jaccard_samples"] == pytest.approx(skm.jaccard_score(y, pred, average="samples", zero_division=1.0))
    assert out["jaccard_macro"] == pytest.approx(skm.jaccard_score(y, pred, average="macro"))
    ranked = y.sum(1) > 0  # ranking metrics: rows with a positive label (sklearn scores the others LRAP 1)
    assert out["lrap"] == pytest.approx(skm.label_ranking_average_precision_score(y[ranked], p[ranked]))
    assert out["label_ranking_loss"] == pytest.approx(skm.label_ranking_loss(y[ranked], p[ranked]))
    assert out["coverage_error"] == pytest.approx(skm.coverage_error(y[ranked], p[ranked]))
    assert out["auroc/c"] == pytest.approx(skm.roc_auc_score(y[:, 2], p[:, 2]))
    assert out["n_samples"] == out["n_complete_rows"] == 60
    assert out["label_cardinality_true"] == pytest.approx(y.sum(1).mean())


def test_imageclef_empty_rows_score_one():
    y = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=float)
    p = np.array([[0.1, 0.2, 0.3], [0.9, 0.8, 0.1], [0.9, 0.1, 0.1]])
    out = evaluate_predictions(y, p, ["x", "y", "z"])
    # row 0: nothing true, nothing predicted -> 1; row 1: P=1/2 R=1 -> 2/3; row 2: P=1 R=1/2 -> 2/3
    assert out["samples_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert out["samples_precision"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert out["samples_recall"] == pytest.approx((1 + 1 + 1 / 2) / 3)


def test_predicting_nothing_is_not_perfectly_precise():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    nothing = evaluate_predictions(y, np.zeros((3, 3)), ["x", "y", "z"])
    assert nothing["samples_precision"] == 0.0 and nothing["samples_recall"] == 0.0
    everything = evaluate_predictions(np.zeros((2, 3)), np.ones((2, 3)), ["x", "y", "z"])
    assert everything["samples_recall"] == 0.0 and everything["samples_precision"] == 0.0


def test_cardinalities_use_the_same_rows_and_the_ranking_metrics_rows_with_a_positive():
    y = np.array([[1, np.nan, 1], [0, 0, 0], [0, 1, 0]])
    p = np.array([[0.9, 0.9, 0.9], [0.6, 0.1, 0.1], [0.2, 0.8, 0.3]])
    out = evaluate_predictions(y, p, ["x", "y", "z"])
    assert out["n_complete_rows"] == 2
    assert out["label_cardinality_true"] == pytest.approx(0.5) and out["label_cardinality_pred"] == pytest.approx(1.0)
    assert out["lrap"] == pytest.approx(1.0) and out["coverage_error"] == pytest.approx(1.0)  # only row 3 ranks


def test_decisions_and_probabilities_are_checked():
    y = np.array([[1, 0], [0, 1]], dtype=float)
    p = np.array([[0.9, 0.2], [0.4, 0.7]])
    with pytest.raises(RadvisionError, match="y_pred must hold 0/1 decisions, got 0.7"):
        evaluate_predictions(y, p, ["a", "b"], y_pred=[[1, 0], [0, 0.7]])
    with pytest.raises(RadvisionError, match="y_pred must hold 0/1 decisions"):
        confusion_matrices(y, p, ["a", "b"])
    with pytest.raises(RadvisionError, match=r"probabilities in \[0, 1\], got values from -2 to 0.9"):
        evaluate_predictions(y, np.array([[0.9, -2.0], [0.4, 0.7]]), ["a", "b"])
    with pytest.raises(RadvisionError, match="no classes"):
        evaluate_predictions(np.zeros((2, 0)), np.zeros((2, 0)), [])


def test_binarize_reads_1d_scores_as_one_class():
    assert binarize(np.array([0.2, 0.7]), 0.5).tolist() == [0, 1]
    assert binarize([[0.2, 0.7]], [0.1, 0.8]).tolist() == [[1, 0]]
    with pytest.raises(RadvisionError, match=r"got shape \(1, 1, 2\)"):
        binarize(np.zeros((1, 1, 2)))


def test_nan_labels_are_masked_per_class(data):
    y, p = data
    y = y.copy()
    y[::5, 1] = np.nan
    y[3, 0] = np.nan
    out = evaluate_predictions(y, p, NAMES)
    pc = per_class_metrics(y, p, NAMES)
    keep = ~np.isnan(y[:, 1])
    assert pc.loc["b", "auroc"] == pytest.approx(skm.roc_auc_score(y[keep, 1], p[keep, 1]))
    assert pc.loc["b", "n"] == keep.sum() and pc.loc["b", "support"] == int(np.nansum(y[:, 1]))
    known = ~np.isnan(y)
    assert out["micro_f1"] == pytest.approx(skm.f1_score(y[known], (p >= 0.5)[known]))
    rows = known.all(1)
    assert out["n_complete_rows"] == rows.sum()
    assert out["hamming_loss"] == pytest.approx(skm.hamming_loss(y[rows], (p[rows] >= 0.5).astype(int)))


def test_undefined_metrics_are_nan_without_warnings():
    y = np.array([[0, 1], [0, 0], [0, 1]], dtype=float)  # class "a" has no positive
    p = np.array([[0.1, 0.9], [0.2, 0.3], [0.3, 0.2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = evaluate_predictions(y, p, ["a", "b"])
        pc = per_class_metrics(y, p, ["a", "b"])
        empty = evaluate_predictions(np.full((2, 2), np.nan), np.full((2, 2), 0.5), ["a", "b"])
    assert math.isnan(pc.loc["a", "auroc"]) and math.isnan(pc.loc["a", "f1"])
    assert pc.loc["a", "specificity"] == 1.0
    assert out["mean_auroc"] == pytest.approx(pc.loc["b", "auroc"])  # mean over defined classes
    assert math.isnan(empty["mean_auroc"]) and math.isnan(empty["samples_f1"]) and math.isnan(empty["micro_f1"])


def test_per_class_table_columns(data):
    y, p = data
    pc = per_class_metrics(y, p, NAMES, thresholds=0.3)
    assert list(pc.index) == NAMES
    assert {"auroc", "average_precision", "precision", "recall", "f1", "specificity", "support", "n",
            "prevalence", "threshold"} <= set(pc.columns)
    f1 = skm.f1_score(y, (p >= 0.3).astype(int), average=None)
    np.testing.assert_allclose(pc["f1"].to_numpy(), f1)


def test_confusion_matrices():
    y = np.array([[1, 0], [0, np.nan], [1, 1], [0, 0]], dtype=float)
    pred = np.array([[1, 1], [1, 1], [0, 1], [0, 0]])
    cm = confusion_matrices(y, pred, ["a", "b"])
    np.testing.assert_array_equal(cm["a"], [[1, 1], [1, 1]])  # [[tn, fp], [fn, tp]]
    np.testing.assert_array_equal(cm["b"], [[1, 1], [0, 1]])  # the NaN row is left out


def test_input_errors(data):
    y, p = data
    with pytest.raises(RadvisionError, match="same"):
        evaluate_predictions(y, p[:, :3], NAMES)
    with pytest.raises(RadvisionError, match="class_names"):
        evaluate_predictions(y, p, NAMES[:3])
    bad = y.copy()
    bad[0, 0] = -1
    with pytest.raises(RadvisionError, match="uncertain"):
        evaluate_predictions(bad, p, NAMES)
    with pytest.raises(RadvisionError, match="thresholds for 4 classes"):
        evaluate_predictions(y, p, NAMES, thresholds=[0.5, 0.5])


def test_noisy_or_score_keeps_its_order_with_many_classes():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.3, 0.9, size=(300, 200))
    assert len(np.unique(1 - np.prod(1 - p, axis=1))) == 1  # the product rounds to 1.0 for every row
    score = noisy_or_score(p)
    assert len(np.unique(score)) == 300
    y = np.zeros((300, 200))
    y[:150, 0] = 1  # the first half has a finding, and its probabilities are a little higher
    p[:150] = np.minimum(p[:150] + 0.05, 1.0)
    out = evaluate_predictions(y, p, [f"c{j}" for j in range(200)])
    expected = skm.roc_auc_score(y[:, 0], -np.log1p(-p).sum(1))
    assert out["auroc_any_finding"] == pytest.approx(expected) and expected > 0.9  # not 0.5 from 300 ties


def test_any_finding_noisy_or_and_no_finding_output():
    y = np.array([[1, 0], [0, 0], [0, np.nan], [0, 1]], dtype=float)
    p = np.array([[0.5, 0.2], [0.1, 0.1], [0.3, 0.3], [0.0, 0.9]])
    truth, score = any_finding(y, p, ["a", "b"])
    np.testing.assert_array_equal(truth[[0, 1, 3]], [1, 0, 1])
    assert math.isnan(truth[2])  # no positive and one unknown label: unknown
    noisy_or = 1 - (1 - p[:, 0]) * (1 - p[:, 1])
    np.testing.assert_allclose(-np.expm1(-score), noisy_or)  # the score is the noisy-OR's -log(1 - P)
    assert (np.argsort(score, kind="stable") == np.argsort(noisy_or, kind="stable")).all()
    # with a "No Finding" output the score is 1 - P(No Finding), and that class is not a finding
    y_nf = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=float)
    p_nf = np.array([[0.9, 0.3], [0.2, 0.6], [0.1, 0.2], [0.3, 0.1]])
    truth, score = any_finding(y_nf, p_nf, ["a", "No Finding"])
    np.testing.assert_array_equal(truth, [1, 0, 1, 0])
    np.testing.assert_allclose(score, 1 - p_nf[:, 1])
    out = evaluate_predictions(y_nf, p_nf, ["a", "No Finding"])
    assert out["auroc_any_finding"] == pytest.approx(skm.roc_auc_score([1, 0, 1, 0], 1 - p_nf[:, 1]))



def test_any_finding_reads_a_known_no_finding_where_finding_labels_are_blank():
    # CheXpert: a normal study leaves its findings blank and says No Finding 1; a study with only an uncertain
    # (masked) finding says No Finding 0
    y = np.array([[np.nan, np.nan, 1], [1, np.nan, 0], [np.nan, np.nan, 0], [np.nan, np.nan, np.nan],
                  [0, 0, np.nan]], dtype=float)
    p = np.full((5, 3), 0.5)
    truth, _ = any_finding(y, p, ["a", "b", "No Finding"])
    np.testing.assert_array_equal(truth[[0, 1, 2, 4]], [0, 1, 1, 0])
    assert math.isnan(truth[3])


def test_monitored_mean_keeps_classes_with_enough_positives():
    rng = np.random.default_rng(1)
    y = (rng.random((40, 3)) < [0.5, 0.5, 0.0]).astype(float)
    y[0, 2] = 1  # "rare": a single positive, so its AUROC is noise
    p = rng.random((40, 3))
    names = ["a", "b", "rare"]
    pc = per_class_metrics(y, p, names)
    assert monitored_mean(y, p, names) == pytest.approx(pc["auroc"].mean())
    assert monitored_mean(y, p, names, min_positives=2) == pytest.approx(pc.loc[["a", "b"], "auroc"].mean())
    assert monitored_mean(y, p, names, "f1", min_positives=2) == pytest.approx(pc.loc[["a", "b"], "f1"].mean())
    truth, score = any_finding(y, p, names)
    with_any = monitored_mean(y, p, names, min_positives=2, include_any=True)
    expected = np.mean([*pc.loc[["a", "b"], "auroc"], skm.roc_auc_score(truth, score)])
    assert with_any == pytest.approx(expected)
    assert math.isnan(monitored_mean(y, p, names, min_positives=100))
    with pytest.raises(RadvisionError, match="auroc, average_precision or f1"):
        monitored_mean(y, p, names, "lrap")


def test_label_metrics_score_the_given_decisions(data):
    y, p, names = *data, NAMES
    decided = np.zeros(y.shape, dtype=int)
    decided[:, 0] = 1  # a rule that labels every row with class 0 and nothing else
    summary = evaluate_predictions(y, p, names, thresholds=0.5, y_pred=decided)
    assert summary["label_cardinality_pred"] == 1.0
    assert summary["micro_f1"] == pytest.approx(skm.f1_score(y.ravel(), decided.ravel()))
    pc = per_class_metrics(y, p, names, y_pred=decided)
    assert pc["recall"].iloc[0] == 1.0 and pc["precision"].iloc[0] == pytest.approx(y[:, 0].mean())
    assert summary["mean_auroc"] == evaluate_predictions(y, p, names)["mean_auroc"]  # scores are unchanged
    with pytest.raises(RadvisionError, match="y_pred"):
        evaluate_predictions(y, p, names, y_pred=decided[:, :1])


def test_a_class_without_positives_is_nan_in_every_positive_metric_and_left_out_of_every_mean():
    y = [[1, 0], [0, 0], [1, 0], [0, 0]]  # B has no positive
    with_fp = [[.9, .7], [.1, .2], [.8, .1], [.3, .1]]  # one false positive on B
    without_fp = [[.9, .2], [.1, .2], [.8, .1], [.3, .1]]
    for p in (with_fp, without_fp):
        pc = per_class_metrics(y, p, ["A", "B"])
        assert pc.loc["B", ["auroc", "precision", "recall", "f1"]].isna().all()
        out = evaluate_predictions(y, p, ["A", "B"])
        assert out["macro_f1"] == out["macro_precision"] == out["macro_recall"] == out["mean_auroc"] == 1.0
    assert per_class_metrics(y, with_fp, ["A", "B"]).loc["B", "specificity"] == 0.75
    assert evaluate_predictions(y, with_fp, ["A", "B"])["micro_precision"] == 2 / 3  # the false positive counts


def test_pandas_nullable_gold_is_masked_like_nan():
    pd = pytest.importorskip("pandas")
    gold = pd.DataFrame({"A": [1, 0, None, 1], "B": [0, 1, 1, 0]}).astype("Int64")
    prob = pd.DataFrame({"A": [.9, .2, .5, .7], "B": [.1, .8, .6, .3]})
    expected = evaluate_predictions(gold.astype(float), prob, ["A", "B"])
    for g, p in ((gold, prob), (gold.astype("boolean"), prob.astype("Float64"))):
        got = evaluate_predictions(g, p, ["A", "B"])
        assert got["mean_auroc"] == expected["mean_auroc"] == 1.0
        assert got["n_complete_rows"] == 3
    with pytest.raises(RadvisionError, match="y_true must hold numbers"):
        evaluate_predictions(pd.DataFrame({"A": ["x"]}), [[0.1]], ["A"])


def test_a_class_without_negatives_has_no_average_precision():
    """AP is 1.0 for an all-positive class whatever the scores, which lifted mean_average_precision."""
    y = np.array([[1, 1], [1, 0], [1, 1], [1, 0]], dtype=float)
    p = np.array([[0.1, 0.9], [0.2, 0.95], [0.3, 0.8], [0.4, 0.3]])
    pc = per_class_metrics(y, p, ["all", "mixed"])
    assert math.isnan(pc.loc["all", "average_precision"]) and math.isnan(pc.loc["all", "auroc"])
    mixed = skm.average_precision_score(y[:, 1], p[:, 1])
    assert mixed < 0.7 and pc.loc["mixed", "average_precision"] == pytest.approx(mixed)
    # the mean is the mixed class alone (the all-positive class's 1.0 lifted it to (1 + AP) / 2)
    assert evaluate_predictions(y, p, ["all", "mixed"])["mean_average_precision"] == pytest.approx(mixed)


def test_a_class_with_positives_never_predicted_has_precision_zero_in_the_macro_mean():
    """Its precision was NaN and left out, so macro_precision rose when a model stopped predicting a class."""
    t = np.array([[1, 1], [0, 1], [1, 0]], dtype=float)
    p = np.array([[0.9, 0.1], [0.1, 0.1], [0.9, 0.1]])
    out = evaluate_predictions(t, p, ["A", "B"])
    pred = (p >= 0.5).astype(int)
    assert out["macro_precision"] == pytest.approx(skm.precision_score(t, pred, average="macro", zero_division=0))
    assert per_class_metrics(t, p, ["A", "B"]).loc["B", "precision"] == 0.0
    assert out["micro_precision"] == pytest.approx(1.0)
    nothing = evaluate_predictions(t, np.zeros_like(p), ["A", "B"])
    assert nothing["micro_precision"] == 0.0 and nothing["macro_precision"] == 0.0


def test_imageclef_f1_is_the_instance_average():
    from radvision.metrics import imageclef_f1

    assert imageclef_f1([{"a", "b"}, set()], [{"a", "b"}, set()]) == 1.0  # both empty scores 1
    assert imageclef_f1([{"a", "b"}], [{"b", "c"}]) == pytest.approx(0.5)
    assert imageclef_f1([{"a"}, {"a"}], [set(), {"a"}]) == pytest.approx(0.5)  # a false alarm scores 0
    assert imageclef_f1([set()], [{"a"}]) == 0.0
    assert math.isnan(imageclef_f1([], []))
    with pytest.raises(RadvisionError, match="one per image"):
        imageclef_f1([set()], [set(), set()])
