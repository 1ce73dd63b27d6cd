"""Decision thresholds for multi-label predictions: per-class F1-optimal (optionally with a minimum
precision), top-k, a cardinality-matching adjustment, and ``thresholds.json`` files.

Every rule predicts a label when ``probability >= threshold``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

from radvision.atomic import atomic_write_text
from radvision.errors import RadvisionError, some_names
from radvision.metrics import as_floats, as_thresholds, check_scores

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
FORMAT = "radvision-thresholds"


def _probs(y_prob) -> np.ndarray:
    p = as_floats(y_prob, "y_prob")
    if p.ndim != 2:
        raise RadvisionError(f"Probabilities must be a 2-D (samples, classes) array, got shape {p.shape}.")
    return p


def f1_optimal_thresholds(y_true, y_prob, min_precision: float | None = None,
                          class_names: Sequence[str] | None = None) -> np.ndarray:
    """Per class, the threshold that maximises F1 on (y_true, y_prob) (NaN labels ignored), placed midway between
    the lowest score it labels positive and the next lower score (0 below the lowest score).

    With ``min_precision`` only thresholds reaching that precision qualify; when none does, the
    most precise threshold is used and a warning logged.  Classes without both a positive and a
    negative known label keep 0.5.  ``class_names`` name the classes in those log lines.
    """
    y_prob = _probs(y_prob)
    if min_precision is not None and not 0.0 <= min_precision <= 1.0:
        raise RadvisionError(f"min_precision must be between 0 and 1, got {min_precision}.")
    if class_names is None:
        class_names = [f"class {j}" for j in range(y_prob.shape[1])]
    y_true, y_prob, names = check_scores(y_true, y_prob, [str(c) for c in class_names])
    out = np.full(y_true.shape[1], DEFAULT_THRESHOLD)
    one_sided = []
    imprecise = []  # "name threshold (precision)" of the classes that never reach min_precision
    for j in range(y_true.shape[1]):
        m = ~np.isnan(y_true[:, j])
        t, s = y_true[m, j].astype(int), y_prob[m, j]
        if len(np.unique(t)) < 2:
            one_sided.append(names[j])
            continue
        precision, recall, thr = precision_recall_curve(t, s)
        precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        ok = np.ones_like(f1, dtype=bool) if min_precision is None else precision >= min_precision
        best = int(np.argmax(np.where(ok, f1, -1.0))) if ok.any() else int(np.lexsort((recall, precision))[-1])
        # midway to the next lower score rather than on the deciding image's own score: a last-bit change in
        # that score (another batch size, another device) would flip its label and the run's valid figures
        lower = s[s < thr[best]]
        below = lower.max() if lower.size else 0.0
        mid = (thr[best] + below) / 2
        out[j] = float(mid if mid > below else thr[best])  # scores one ulp apart have no midpoint
        if not ok.any():
            imprecise.append(f"{names[j]} {out[j]:.3f} (precision {precision[best]:.3f})")
    if imprecise:  # one line: a concept vocabulary has thousands of classes
        logger.warning("%d class(es) never reach precision %.2f and use their most precise threshold: %s",
                       len(imprecise), min_precision, some_names(imprecise, 5))
    if one_sided:
        logger.info("%d class(es) have no positive or no negative labels, so threshold %.2f is kept: %s",
                    len(one_sided), DEFAULT_THRESHOLD, some_names(one_sided, 5))
    return out


def top_k(y_prob, k: int, thresholds=None) -> np.ndarray:
    """Binary predictions with at most ``k`` labels per row: the ``k`` most probable, or with ``thresholds``
    the ``k`` most probable of those that reach their threshold (ImageCLEF allows at most 100 concepts)."""
    p = _probs(y_prob)
    if int(k) != k or k < 1:
        raise RadvisionError(f"k must be a positive integer, got {k!r}.")
    allowed = np.ones(p.shape, dtype=bool) if thresholds is None else p >= as_thresholds(thresholds, p.shape[1])
    return _most_probable(p, allowed, int(k))


def _most_probable(p: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """0/1: per row the ``k`` most probable of the ``allowed`` labels (fewer when fewer are allowed)."""
    k = min(k, p.shape[1])
    pred = np.zeros(p.shape, dtype=int)
    if p.size and k:
        idx = np.argpartition(-np.where(allowed, p, -np.inf), k - 1, axis=1)[:, :k]
        np.put_along_axis(pred, idx, 1, axis=1)
    return pred & allowed.astype(int)


def predict_labels(y_prob, thresholds=DEFAULT_THRESHOLD, *, min_labels: int = 0, max_labels: int | None = None
                   ) -> np.ndarray:
    """Threshold, then enforce per-row limits: rows with fewer than ``min_labels`` get their most probable
    labels added (e.g. ``min_labels=1``: every image gets a label); of the labels then predicted, the
    ``max_labels`` most probable are kept."""
    p = _probs(y_prob)
    pred = (p >= as_thresholds(thresholds, p.shape[1])).astype(int)
    if min_labels < 0:
        raise RadvisionError(f"min_labels must be 0 or more, got {min_labels}.")
    if max_labels is not None and max_labels < max(min_labels, 1):
        raise RadvisionError(f"max_labels (top_k) must be at least 1 and at least min_labels ({min_labels}), "
                             f"got {max_labels}.")
    if min_labels > 0:  # a short row gets its most probable missing labels, up to min_labels in all
        need = np.clip(min(min_labels, p.shape[1]) - pred.sum(axis=1), 0, None)
        rank = np.argsort(np.argsort(-np.where(pred == 1, -np.inf, p), axis=1, kind="stable"), axis=1)
        pred |= (rank < need[:, None]).astype(int)
    if max_labels is not None:
        pred = _most_probable(p, pred.astype(bool), max_labels)
    return pred


def adjust_thresholds(y_prob, thresholds, target_cardinality: float, *, max_shift: float = 20.0) -> np.ndarray:
    """Shift all thresholds together so the mean number of predicted labels per row on ``y_prob``
    matches ``target_cardinality`` (e.g. the training set's label cardinality).

    Dynamic adjustment for a shifted test distribution: one offset ``d`` is added to every threshold in
    logit space (``sigmoid(logit(t) + d)``), so the per-class order of thresholds is kept.  The offset
    is found by bisection; the closest achievable cardinality is used.  The ends are exact: 0 gives
    thresholds above 1 (no label) and the number of classes gives thresholds of 0 (every label).
    """
    p = _probs(y_prob)
    thr = np.clip(as_thresholds(thresholds, p.shape[1]), 1e-6, 1 - 1e-6)
    if not 0 <= target_cardinality <= p.shape[1]:
        raise RadvisionError(f"target_cardinality must be between 0 and {p.shape[1]}, got {target_cardinality}.")
    if target_cardinality == 0:
        return np.full(p.shape[1], np.nextafter(1.0, 2.0))
    if target_cardinality == p.shape[1]:
        return np.zeros(p.shape[1])
    base = np.log(thr / (1 - thr))

    def shifted(d: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(base + d)))

    def card(d: float) -> float:
        return float((p >= shifted(d)).sum(1).mean()) if len(p) else 0.0

    lo, hi = -max_shift, max_shift  # card(lo) >= target >= card(hi): cardinality falls as d grows
    for _ in range(60):
        mid = (lo + hi) / 2
        if card(mid) > target_cardinality:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda d: abs(card(d) - target_cardinality))
    logger.info("shifted thresholds by %.3f logits: cardinality %.3f (target %.3f)", best, card(best),
                target_cardinality)
    return shifted(best)


def decide(y_prob, thresholds=DEFAULT_THRESHOLD, *, top_k: int | None = None, min_labels: int = 0,
           cardinality: float | None = None) -> np.ndarray:
    """0/1 labels from probabilities by a run's whole decision rule (config section ``thresholds``):
    per-class thresholds, shifted together first when ``cardinality`` is given so that these rows get that
    many labels on average (`adjust_thresholds`), then at least ``min_labels`` and at most ``top_k`` labels
    per row (`predict_labels`).  Rows with a NaN probability (an unreadable image) get no label."""
    p = _probs(y_prob)
    missing = np.isnan(p).any(axis=1)
    p = np.where(missing[:, None], 0.0, p)
    thr = as_thresholds(thresholds, p.shape[1])
    if cardinality is not None and (~missing).any():
        thr = adjust_thresholds(p[~missing], thr, min(float(cardinality), p.shape[1]))
    pred = predict_labels(p, thr, min_labels=min(min_labels, p.shape[1]), max_labels=top_k)
    pred[missing] = 0
    return pred


def rule_from_config(t, train_cardinality: float | None = None) -> dict:
    """`decide` keyword arguments from a config's ``thresholds`` section; ``cardinality: train`` becomes
    `train_cardinality`, the mean labels per training image that the run recorded."""
    card = t.cardinality
    if card == "train":
        if train_cardinality is None:
            raise RadvisionError("thresholds.cardinality is 'train' but the run recorded no training label "
                                 "cardinality (its thresholds.json has no train_cardinality); give a number.")
        card = train_cardinality
    return {"top_k": t.top_k, "min_labels": t.min_labels, "cardinality": card}


def save_thresholds(path: str | Path, class_names: Sequence[str], thr, *,
                    train_cardinality: float | None = None) -> Path:
    """Write ``{"format", "thresholds": {class: value}}`` as JSON, atomically; ``train_cardinality`` (the
    training labels' mean labels per image, for ``thresholds.cardinality: train``) is kept beside them."""
    names = [str(c) for c in class_names]
    values = as_thresholds(thr, len(names))
    if not np.isfinite(values).all():
        raise RadvisionError("Thresholds must be finite numbers.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict = {"format": FORMAT, "version": 1,
                 "thresholds": {n: float(v) for n, v in zip(names, values, strict=True)}}
    if train_cardinality is not None and np.isfinite(train_cardinality):
        doc["train_cardinality"] = float(train_cardinality)
    return atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def load_train_cardinality(path: str | Path) -> float | None:
    """The ``train_cardinality`` a run recorded in its thresholds.json (None when the file has none)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    value = doc.get("train_cardinality") if isinstance(doc, dict) else None
    return float(value) if isinstance(value, int | float) else None


def load_thresholds(path: str | Path) -> dict[str, float]:
    """Read a thresholds file written by ``save_thresholds`` (a plain ``{class: value}`` object also works)."""
    path = Path(path)
    if not path.is_file():
        raise RadvisionError(f"Thresholds file {path} does not exist; pass the thresholds.json of a training run.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RadvisionError(f"Thresholds file {path} is not valid JSON ({err}).") from err
    table = doc.get("thresholds", doc) if isinstance(doc, dict) else None
    if not isinstance(table, dict) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                              for v in table.values()):
        raise RadvisionError(f"Thresholds file {path} must map class names to numbers.")
    # NaN fails this too; just above 1 is adjust_thresholds' "never" (p >= 1.0 would still label p = 1)
    bad = [k for k, v in table.items() if not 0.0 <= v <= np.nextafter(1.0, 2.0)]
    if bad:
        raise RadvisionError(f"Thresholds file {path} gives {bad[0]!r} the threshold {table[bad[0]]!r}; "
                             "thresholds are numbers from 0 to 1.")
    return {str(k): float(v) for k, v in table.items()}


def thresholds_array(table: Mapping[str, float], class_names: Sequence[str]) -> np.ndarray:
    """Thresholds in ``class_names`` order; a class missing from ``table`` is an error."""
    return as_thresholds(table, len(class_names), class_names)
