"""Multi-label evaluation on top of scikit-learn.

``y_true`` may hold NaN (unknown labels): per-class metrics mask them class by class, micro averages
use all known cells, and example-based metrics (samples F1 / precision / recall, exact match, Hamming,
Jaccard, label cardinalities) use the rows whose labels are all known; the ranking metrics (LRAP, ranking
loss, coverage error) use those of them with at least one positive label (a row without one has nothing
to rank: sklearn would score it a perfect LRAP).  Undefined values come back as NaN, never as a crash or
warning.  Predictions are ``y_prob >= threshold``.

A class with no known positive has NaN AUROC, average precision, precision, recall and F1 (its false
positives still count in the micro averages and specificity); a class with positives of which none is
predicted has precision 0 (as recall and F1); the means over classes (mean_auroc,
macro_f1 / precision / recall, mean_average_precision) average the classes whose value is defined, so
they all cover the classes with at least one known positive (AUROC and average precision also need a
negative: with positives alone both would rank nothing, and AP would be 1.0 whatever the scores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from radvision.errors import RadvisionError


def as_floats(values, name: str) -> np.ndarray:
    """``values`` as a float array, pandas' missing values (``pd.NA`` of nullable Int64 / Float64 / boolean
    columns, ``None``) as NaN; text that is not a number is a RadvisionError naming ``name``."""
    try:
        if isinstance(values, (pd.DataFrame, pd.Series)):
            return values.to_numpy(dtype=float, na_value=np.nan)
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise RadvisionError(f"{name} must hold numbers (or NaN for unknown): {exc}.") from None


def check_scores(y_true, y_prob, class_names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(y_true, y_prob, names) as float (samples, classes) arrays, or a RadvisionError naming what is wrong."""
    y_true = as_floats(y_true, "y_true")
    y_prob = as_floats(y_prob, "y_prob")
    if y_true.ndim == 1:
        y_true, y_prob = y_true[:, None], y_prob.reshape(-1, 1)
    if y_true.shape != y_prob.shape or y_true.ndim != 2:
        raise RadvisionError(f"y_true and y_prob must have the same (samples, classes) shape, got "
                             f"{y_true.shape} and {y_prob.shape}.")
    names = list(class_names)
    if len(names) != y_true.shape[1]:
        raise RadvisionError(f"{len(names)} class_names were given for {y_true.shape[1]} columns.")
    if not names:
        raise RadvisionError("There are no classes to score (0 columns).")
    known = y_true[~np.isnan(y_true)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise RadvisionError("y_true must hold only 0, 1 or NaN; map uncertain (-1) labels with a policy first.")
    if np.isnan(y_prob).any():
        raise RadvisionError("y_prob contains NaN; every prediction must be a number.")
    if ((y_prob < 0) | (y_prob > 1)).any():
        raise RadvisionError(f"y_prob must hold probabilities in [0, 1], got values from {y_prob.min():g} to "
                             f"{y_prob.max():g}; apply a sigmoid to logits first.")
    return y_true, y_prob, names


def as_thresholds(thresholds, n_classes: int, class_names: Sequence[str] | None = None) -> np.ndarray:
    """A scalar, a per-class sequence, or a {class: threshold} mapping (`load_thresholds`' answer; needs
    ``class_names``) -> array of ``n_classes`` thresholds."""
    if isinstance(thresholds, Mapping):
        if class_names is None:
            raise RadvisionError("Thresholds by class name need the class order here: pass "
                                 "radvision.thresholds.thresholds_array(thresholds, class_names).")
        missing = [c for c in class_names if c not in thresholds]
        if missing:
            raise RadvisionError(f"No threshold for class(es) {missing[:5]}; the mapping has "
                                 f"{sorted(map(str, thresholds))[:10]}.")
        thresholds = [thresholds[c] for c in class_names]
    thr = np.asarray(thresholds, dtype=float)
    # a hair above 1 means "never" (adjust_thresholds' answer for a cardinality of 0)
    bad = thr[np.isnan(thr) | (thr < 0) | (thr > np.nextafter(1.0, 2.0))]
    if bad.size:
        raise RadvisionError(f"Thresholds must be probabilities between 0 and 1, got {bad.flat[0]:g}.")
    if thr.ndim == 0:
        return np.full(n_classes, float(thr))
    if thr.shape != (n_classes,):
        raise RadvisionError(f"Got {thr.size} thresholds for {n_classes} classes; give one number or one per class.")
    return thr


def binarize(y_prob, thresholds=0.5) -> np.ndarray:
    """0/1 predictions ``y_prob >= thresholds`` (per class); a 1-D ``y_prob`` is one class, as elsewhere here."""
    y_prob = np.asarray(y_prob, dtype=float)
    if y_prob.ndim == 1:
        return (y_prob >= as_thresholds(thresholds, 1)[0]).astype(int)
    if y_prob.ndim != 2:
        raise RadvisionError(f"y_prob must be (samples, classes) or one class's 1-D scores, got shape {y_prob.shape}.")
    return (y_prob >= as_thresholds(thresholds, y_prob.shape[1])).astype(int)


def _binary_scores(t: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    pr, rc, f1, _ = skm.precision_recall_fscore_support(t, p, average="binary", zero_division=np.nan)
    if t.any() and not p.any():  # positives never predicted: precision 0, else macro_precision would skip the
        pr = 0.0                 # class and reward a model that stops predicting it
    return float(pr), float(rc), float(f1)


def _auroc(t: np.ndarray, s: np.ndarray) -> float:
    return float(skm.roc_auc_score(t, s)) if len(np.unique(t)) == 2 else float("nan")


def _ap(t: np.ndarray, s: np.ndarray) -> float:
    # all positive: AP is 1.0 whatever the scores, which would lift mean_average_precision for nothing
    return float(skm.average_precision_score(t, s)) if 0 < t.sum() < len(t) else float("nan")


def _decisions(y_prob: np.ndarray, thr: np.ndarray, y_pred) -> np.ndarray:
    """0/1 predictions: `y_pred` when given (a decision rule beyond thresholds, e.g. top-k), else p >= thr."""
    if y_pred is None:
        return (y_prob >= thr).astype(int)
    pred = _zero_one(y_pred, "y_pred")
    if pred.shape != y_prob.shape:
        raise RadvisionError(f"y_pred {pred.shape} and y_prob {y_prob.shape} must have the same shape.")
    return pred


def _zero_one(decisions, name: str) -> np.ndarray:
    """0/1 decisions as an int (samples, classes) array; anything else (probabilities, NaN, 2) is an error."""
    pred = np.asarray(decisions, dtype=float)
    if pred.ndim == 1:
        pred = pred.reshape(-1, 1)
    if not np.isin(pred, (0.0, 1.0)).all():
        bad = pred[~np.isin(pred, (0.0, 1.0))][0]
        raise RadvisionError(f"{name} must hold 0/1 decisions, got {bad:g}; binarize probabilities first "
                             "(radvision.metrics.binarize or radvision.thresholds.decide).")
    return pred.astype(int)


def per_class_metrics(y_true, y_prob, class_names: Sequence[str], thresholds=0.5, y_pred=None) -> pd.DataFrame:
    """One row per class: auroc, average_precision, precision, recall, f1, specificity, support
    (known positives), n (known labels), prevalence, threshold.  Precision, recall, F1 and specificity
    score `y_pred` when given (0/1 decisions of a whole rule, see `thresholds.decide`), else p >= threshold."""
    y_true, y_prob, names = check_scores(y_true, y_prob, class_names)
    thr = as_thresholds(thresholds, len(names), names)
    decided = _decisions(y_prob, thr, y_pred)
    rows = []
    for j, name in enumerate(names):
        m = ~np.isnan(y_true[:, j])
        t, s = y_true[m, j].astype(int), y_prob[m, j]
        p = decided[m, j]
        if t.any():
            pr, rc, f1 = _binary_scores(t, p)
            neg = (t == 0).sum()
            spec = float(((p == 0) & (t == 0)).sum() / neg) if neg else float("nan")
        else:  # no known positive: precision, recall and F1 of finding it are undefined, whatever was predicted
            pr = rc = f1 = float("nan")
            spec = float((p == 0).mean()) if m.any() else float("nan")
        rows.append({"class": name, "auroc": _auroc(t, s), "average_precision": _ap(t, s), "precision": pr,
                     "recall": rc, "f1": f1, "specificity": spec, "support": int(t.sum()), "n": int(m.sum()),
                     "prevalence": float(t.mean()) if m.any() else float("nan"), "threshold": float(thr[j])})
    return pd.DataFrame(rows).set_index("class")


def _nanmean(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


NO_FINDING = "No Finding"


def any_finding(y_true, y_prob, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(truth, score) of "any finding vs none" per image.

    Truth: some finding class (every class but "No Finding") is positive; else the opposite of a known "No
    Finding" label (CheXpert leaves most findings of a normal study blank, and its No Finding says what they
    are); NaN when neither decides and some finding label is unknown.  Score: 1 - P(No Finding) when the
    model has that output, else `noisy_or_score` of the finding probabilities.
    """
    y_true, y_prob, names = check_scores(y_true, y_prob, class_names)
    finding = np.array([n != NO_FINDING for n in names])
    t = y_true[:, finding]
    undecided = np.where(np.isnan(t).any(axis=1), np.nan, 0.0)
    if NO_FINDING in names:
        no_finding = y_true[:, names.index(NO_FINDING)]
        undecided = np.where(np.isnan(no_finding), undecided, 1.0 - no_finding)
    truth = np.where((t == 1).any(axis=1), 1.0, undecided)
    if NO_FINDING in names and not finding.all():
        score = 1.0 - y_prob[:, names.index(NO_FINDING)]
    else:
        score = noisy_or_score(y_prob[:, finding])
    return truth, score


def noisy_or_score(p) -> np.ndarray:
    """Per row, a score that ranks rows as the noisy-OR ``1 - prod(1 - p_c)`` does: ``-sum(log(1 - p_c))``
    (the noisy-OR is ``1 - exp(-score)``).  Summing logs keeps the order where the product itself rounds to
    1.0 for every row (a hundred or more classes), which made every row tie."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, np.nextafter(1.0, 0.0))  # p = 1: a large finite score
    return -np.log1p(-p).sum(axis=1)


def evaluate_predictions(y_true, y_prob, class_names: Sequence[str], thresholds=0.5, y_pred=None) -> dict:
    """Summary metrics as a flat dict of floats (plus ``auroc/<class>`` per class).

    Keys: mean_auroc, micro_auroc, auroc_any_finding (see `any_finding`), mean_average_precision, macro_/micro_/samples_ f1, precision and
    recall, exact_match, hamming_loss, jaccard_samples, jaccard_macro, lrap, label_ranking_loss,
    coverage_error, label_cardinality_true / _pred, n_samples, n_complete_rows.
    samples_f1 is ImageCLEF's instance-averaged F1: sklearn ``average="samples"`` where a row with no
    true and no predicted label scores 1 (so do samples precision / recall / Jaccard; a row with one side
    empty scores 0 there).  The label metrics score `y_pred` when given (0/1 decisions of a
    whole rule, see `thresholds.decide`), else p >= threshold.
    """
    y_true, y_prob, names = check_scores(y_true, y_prob, class_names)
    thr = as_thresholds(thresholds, len(names), names)
    y_pred = _decisions(y_prob, thr, y_pred)
    pc = per_class_metrics(y_true, y_prob, names, thr, y_pred=y_pred)
    out: dict = {"n_samples": int(len(y_true)), "n_classes": len(names)}
    out["mean_auroc"] = _nanmean(pc["auroc"])
    out["mean_average_precision"] = _nanmean(pc["average_precision"])
    for key in ("f1", "precision", "recall"):
        out[f"macro_{key}"] = _nanmean(pc[key])
    known = ~np.isnan(y_true)
    t_flat, p_flat, s_flat = y_true[known].astype(int), y_pred[known], y_prob[known]
    if t_flat.size:
        out["micro_precision"], out["micro_recall"], out["micro_f1"] = _binary_scores(t_flat, p_flat)
    else:
        out["micro_precision"] = out["micro_recall"] = out["micro_f1"] = float("nan")
    out["micro_auroc"] = _auroc(t_flat, s_flat)
    any_true, any_score = any_finding(y_true, y_prob, names)
    any_known = ~np.isnan(any_true)
    out["auroc_any_finding"] = (_auroc(any_true[any_known].astype(int), any_score[any_known])
                                if any(n != NO_FINDING for n in names) else float("nan"))
    rows = known.all(axis=1)
    out["n_complete_rows"] = int(rows.sum())
    out.update(_example_based(y_true[rows].astype(int), y_pred[rows], y_prob[rows]))
    for name, v in zip(names, pc["auroc"], strict=True):
        out[f"auroc/{name}"] = float(v)
    return out


def monitored_mean(y_true, y_prob, class_names: Sequence[str], metric: str = "auroc", min_positives: int = 0,
                   include_any: bool = False, thresholds=0.5) -> float:
    """Mean of a per-class metric ("auroc", "average_precision" or "f1") over the classes with at least
    `min_positives` known positives, for model selection on a small valid split (a class with one positive
    makes its AUROC noise).  `include_any` adds "any finding" AUROC as one more term and then leaves the
    "No Finding" class out (the any-finding term already measures it).  NaN when no term is defined.
    """
    y_true, y_prob, names = check_scores(y_true, y_prob, class_names)
    if metric not in ("auroc", "average_precision", "f1"):
        raise RadvisionError(f"Cannot average {metric!r} per class; use auroc, average_precision or f1.")
    pc = per_class_metrics(y_true, y_prob, names, thresholds)
    keep = pc["support"] >= min_positives
    if include_any:
        keep &= pc.index != NO_FINDING
    terms = list(pc.loc[keep, metric])
    if include_any:
        any_true, any_score = any_finding(y_true, y_prob, names)
        known = ~np.isnan(any_true)
        terms.append(_auroc(any_true[known].astype(int), any_score[known]))
    return _nanmean(terms)


# computed over the rows whose labels are all known (see the module docstring)
EXAMPLE_BASED_METRICS = ("samples_f1", "samples_precision", "samples_recall", "exact_match", "hamming_loss",
                         "jaccard_samples", "jaccard_macro", "lrap", "label_ranking_loss", "coverage_error",
                         "label_cardinality_true", "label_cardinality_pred")


def _example_based(t: np.ndarray, p: np.ndarray, s: np.ndarray) -> dict:
    if len(t) == 0:
        return dict.fromkeys(EXAMPLE_BASED_METRICS, float("nan"))
    ts, ps = _multilabel(t), _multilabel(p)
    # A row with no true and no predicted label is a perfect answer (the ImageCLEF rule: F1 1, and so
    # precision, recall and Jaccard 1); otherwise an empty side scores 0, so predicting nothing is not
    # "perfectly precise".
    both_empty = (t.sum(1) == 0) & (p.sum(1) == 0)

    out = {
        "samples_f1": float(skm.f1_score(ts, ps, average="samples", zero_division=1.0)),
        "samples_precision": _samples_mean(skm.precision_score, ts, ps, both_empty),
        "samples_recall": _samples_mean(skm.recall_score, ts, ps, both_empty),
        "exact_match": float(skm.accuracy_score(t, p)),
        "hamming_loss": float(skm.hamming_loss(t, p)),
        "jaccard_samples": float(skm.jaccard_score(ts, ps, average="samples", zero_division=1.0)),
        "jaccard_macro": _jaccard_macro(t, p),
        "label_cardinality_true": float(t.sum(1).mean()),
        "label_cardinality_pred": float(p.sum(1).mean()),
    }
    ranked = t.sum(1) > 0  # rows with something to rank
    if ranked.any() and t.shape[1] > 1:
        out["lrap"] = float(skm.label_ranking_average_precision_score(t[ranked], s[ranked]))
        out["label_ranking_loss"] = float(skm.label_ranking_loss(t[ranked], s[ranked]))
        out["coverage_error"] = float(skm.coverage_error(t[ranked], s[ranked]))
    else:
        out["lrap"] = out["label_ranking_loss"] = out["coverage_error"] = float("nan")
    return out


def _samples_mean(score, ts: np.ndarray, ps: np.ndarray, both_empty: np.ndarray) -> float:
    """sklearn's samples average with an empty side scoring 0, then the rows empty on both sides set to 1."""
    mean_with_zeros = float(score(ts, ps, average="samples", zero_division=0.0))
    return mean_with_zeros + float(both_empty.mean())


def _multilabel(a: np.ndarray) -> np.ndarray:
    """`a` as sklearn's multilabel input: one column reads as binary there (no samplewise scores, a score per
    value), so it gets an all-zero second column, which changes no row's TP / FP / FN."""
    return a if a.shape[1] > 1 else np.pad(a, ((0, 0), (0, 1)))


def _jaccard_macro(t: np.ndarray, p: np.ndarray) -> float:
    """Mean per-class Jaccard over classes where it is defined (some true or predicted positive)."""
    per = skm.jaccard_score(_multilabel(t), _multilabel(p), average=None, zero_division=0.0).astype(float)
    per = per[: t.shape[1]]
    per[(t.sum(0) == 0) & (p.sum(0) == 0)] = np.nan
    return _nanmean(per)


def confusion_matrices(y_true, y_pred, class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per class a 2x2 matrix ``[[tn, fp], [fn, tp]]`` over the known labels of that class; ``y_pred`` holds
    0/1 decisions."""
    y_true_a = as_floats(y_true, "y_true")
    y_pred_a = _zero_one(y_pred, "y_pred").astype(float)
    y_true_a, y_pred_a, names = check_scores(y_true_a, y_pred_a, class_names)
    out = {}
    for j, name in enumerate(names):
        m = ~np.isnan(y_true_a[:, j])
        if not m.any():  # no known label for this class in the split: an all-zero matrix, not a crash
            out[name] = np.zeros((2, 2), dtype=int)
            continue
        out[name] = skm.confusion_matrix(y_true_a[m, j].astype(int), y_pred_a[m, j].astype(int), labels=[0, 1])
    return out


def imageclef_f1(predicted: Sequence[set[str]], gold: Sequence[set[str]]) -> float:
    """The ImageCLEF concept-detection score: the mean over images of 2|P & G| / (|P| + |G|) between each
    image's predicted and gold concept sets (1 when both are empty). Unlike ``samples_f1`` over a model's
    classes, gold concepts outside the vocabulary count as misses, as in the official evaluation."""
    if len(predicted) != len(gold):
        raise RadvisionError(f"Got {len(predicted)} predicted and {len(gold)} gold concept sets; give one per image.")
    if not gold:
        return float("nan")
    return float(np.mean([1.0 if not p and not g else 2 * len(p & g) / (len(p) + len(g))
                          for p, g in zip(predicted, gold, strict=True)]))
