"""Class-imbalance tools: loss weights from label frequencies, sampler weights, and downsampling.

Every function ignores unknown (NaN) and uncertain (-1) labels when counting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from radvision.data.table import NO_FINDING_COLUMN, LabelTable, select_classes
from radvision.errors import RadvisionError

__all__ = [
    "NO_FINDING_NAMES",
    "class_counts",
    "class_weights",
    "downsample",
    "pos_weight",
    "sample_weights",
    "weighted_sampler",
]

log = logging.getLogger(__name__)

#: Class names that mean "nothing found"; when the table has no such class, `downsample` drops images its
#: source marks as having no finding (the readers' `source_no_finding` column), else images known 0 in every class.
NO_FINDING_NAMES = ("No Finding", "No_Finding", "normal", "Normal")


def _matrix(labels: np.ndarray | LabelTable) -> np.ndarray:
    y = labels.labels() if isinstance(labels, LabelTable) else np.asarray(labels, dtype=np.float32)
    if y.ndim != 2:
        raise RadvisionError(f"Labels must be a 2-D (images x classes) array, got shape {y.shape}.")
    return y


def _names(labels: np.ndarray | LabelTable, which: np.ndarray, class_names: list[str] | None) -> str:
    """Log text for some classes: their names (given, or a table's), else column numbers."""
    names = class_names or (labels.classes if isinstance(labels, LabelTable)
                            else [f"column {j}" for j in range(len(which))])
    return ", ".join(str(n) for n, w in zip(names, which, strict=True) if w)


def class_counts(labels: np.ndarray | LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives) per class; NaN and -1 are not counted."""
    y = _matrix(labels)
    return (y == 1).sum(axis=0).astype(np.int64), (y == 0).sum(axis=0).astype(np.int64)


def pos_weight(labels: np.ndarray | LabelTable, max_weight: float | None = None,
               class_names: list[str] | None = None) -> np.ndarray:
    """negatives / positives per class: the ``pos_weight`` of ``torch.nn.BCEWithLogitsLoss``.

    A class without positives (or negatives) gets 1.0 so it neither explodes nor vanishes;
    ``max_weight`` caps very rare classes; ``class_names`` name the columns of an array in that warning.
    """
    pos, neg = class_counts(labels)
    w = np.ones(len(pos), dtype=np.float64)
    ok = (pos > 0) & (neg > 0)
    w[ok] = neg[ok] / pos[ok]
    if (~ok).any():
        log.warning("pos_weight: %d class(es) have no positives or no negatives (%s); weight 1.0",
                    int((~ok).sum()), _names(labels, ~ok, class_names))
    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return w.astype(np.float32)


def class_weights(labels: np.ndarray | LabelTable, power: float = 1.0,
                  class_names: list[str] | None = None) -> np.ndarray:
    """Per-class loss weights proportional to (1 / positive rate) ** power, normalised to mean 1.

    Rare classes weigh more; ``power=0.5`` softens the effect. Pass as the per-class ``weight`` of a
    BCE loss. A class without known positives has nothing to learn but "absent", so it gets the mean
    weight of the others (not the largest, which would give most of the loss to it) and a warning
    (``class_names`` name the columns of an array there).
    """
    pos, neg = class_counts(labels)
    known = pos + neg
    rate = np.divide(pos, known, out=np.zeros(len(pos), dtype=np.float64), where=known > 0)
    w = np.zeros(len(pos), dtype=np.float64)
    ok = rate > 0
    w[ok] = (1.0 / rate[ok]) ** power
    if not ok.any():
        return np.ones(len(pos), dtype=np.float32)
    if (~ok).any():
        log.warning("class_weights: %d class(es) have no positives (%s); they get the mean weight",
                    int((~ok).sum()), _names(labels, ~ok, class_names))
    w[~ok] = w[ok].mean()
    return (w / w.mean()).astype(np.float32)


def sample_weights(labels: np.ndarray | LabelTable, power: float = 1.0,
                   class_names: list[str] | None = None) -> np.ndarray:
    """Per-image weights for ``torch.utils.data.WeightedRandomSampler``.

    An image weighs as much as its rarest positive class, (1 / class frequency) ** power.  Images with
    no positive label count as "No Finding" when there is such a class (``NO_FINDING_NAMES``; from a
    table's classes or ``class_names``), so a few unlabelled rows are not drawn as often as a whole
    class; without one they form their own group.  Normalised to mean 1.
    """
    y = _matrix(labels)
    if len(y) == 0:
        return np.zeros(0, dtype=np.float64)
    positive = y == 1
    none = ~positive.any(axis=1)
    names = class_names or (labels.classes if isinstance(labels, LabelTable) else [])
    normal = next((j for j, c in enumerate(names) if c in NO_FINDING_NAMES), None)
    if normal is not None and none.any():
        positive[none, normal] = True  # `positive` is this function's own array
        none = np.zeros_like(none)
    pos = positive.sum(axis=0).astype(np.float64)
    inv = np.divide(1.0, pos, out=np.zeros_like(pos), where=pos > 0) ** power
    w = np.where(positive, inv[None, :], 0.0).max(axis=1)
    if none.any():
        w[none] = (1.0 / none.sum()) ** power
    return w / w.mean()


def weighted_sampler(labels: np.ndarray | LabelTable, num_samples: int | None = None, seed: int = 0,
                     power: float = 1.0, class_names: list[str] | None = None):
    """A seeded ``WeightedRandomSampler`` (with replacement) over `sample_weights`."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    w = sample_weights(labels, power, class_names)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(torch.as_tensor(w, dtype=torch.double), num_samples or len(w),
                                 replacement=True, generator=generator)


def downsample(table: LabelTable, fractions: Mapping[str, float], seed: int = 0) -> LabelTable:
    """Drop a random ``fraction`` of the rows whose ONLY positive label is that class.

    E.g. ``{"No Finding": 0.91, "Effusion": 0.30}`` (as in the CheXpert study) drops 91 % of images
    labelled No Finding and nothing else, and 30 % of images whose single finding is Effusion; images
    with Effusion plus another finding are all kept. A "No Finding"-like key (see `NO_FINDING_NAMES`)
    that is not a class selects the rows the source marks as having no finding at all (the readers'
    `source_no_finding` column), or without one, the rows negative (0, not unknown) for every class. An
    uncertain label (-1, kept by U-MultiClass) counts as another finding, so such a table keeps the images
    that U-Ones would. Order is preserved.
    """
    if not fractions:
        return table
    y = table.labels()
    positive = y == 1
    n_pos = (positive | (y == -1)).sum(axis=1)
    rng = np.random.default_rng(seed)
    drop = np.zeros(len(y), dtype=bool)
    for name, fraction in fractions.items():
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 <= float(fraction) <= 1.0:
            raise RadvisionError(f"downsample fraction for {name!r} must be a number between 0 and 1, "
                                 f"got {fraction!r}.")
        if name in table.classes:
            j = table.classes.index(name)
            rows = np.flatnonzero(positive[:, j] & (n_pos == 1))
        elif name in NO_FINDING_NAMES:  # not a class: an image with a finding outside the classes is no "normal"
            if NO_FINDING_COLUMN in table.frame:
                normal = table.frame[NO_FINDING_COLUMN].to_numpy(dtype=float) == 1.0
            else:
                normal = (y == 0).all(axis=1)
            rows = np.flatnonzero(normal & (n_pos == 0))
        else:
            # raises with a "did you mean"; "No Finding" is a choice whether or not it is a class
            no_finding = [] if NO_FINDING_NAMES[0] in table.classes else [NO_FINDING_NAMES[0]]
            select_classes([*table.classes, *no_finding], [name],
                           "downsample (not a class of this data, or one data.classes leaves out: take it out of "
                           "data.downsample, or set data.downsample=null)")
            continue
        n_drop = int(np.floor(float(fraction) * len(rows) + 0.5))  # half rounds up, not to even
        if n_drop:
            drop[rng.choice(rows, size=n_drop, replace=False)] = True
        log.info("downsample: %s: dropping %d of %d single-label rows", name, n_drop, len(rows))
    return table.subset(~drop)
