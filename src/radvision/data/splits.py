"""Patient-level splits: no patient's images may land on both sides of a train/test boundary."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from radvision.data.table import SPLITS, LabelTable, require_patient_ids
from radvision.errors import RadvisionError

__all__ = ["assert_patient_disjoint", "patient_kfold", "patient_split", "require_train_and_valid", "source_splits"]

log = logging.getLogger(__name__)


def _fractions(fractions: Sequence[float] | Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    if isinstance(fractions, Mapping):
        names = list(fractions)
        unknown = [n for n in names if n not in SPLITS]
        if unknown:
            raise RadvisionError(f"Unknown split name(s) {unknown}; valid splits: {', '.join(SPLITS)}.")
        values = np.array([fractions[n] for n in names], dtype=float)
    else:
        values = np.array(list(fractions), dtype=float)
        if len(values) not in (2, 3):
            raise RadvisionError(f"fractions needs 2 (train, valid) or 3 (train, valid, test) values, got {len(values)}.")
        names = list(SPLITS[: len(values)])
    if (values < 0).any() or not np.isclose(values.sum(), 1.0, atol=1e-6):
        raise RadvisionError(f"Split fractions must be non-negative and sum to 1, got {values.tolist()}.")
    return names, values


def patient_split(
    table: LabelTable,
    fractions: Sequence[float] | Mapping[str, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, LabelTable]:
    """Shuffle patients (seeded) and fill train / valid / test in turn until each holds its fraction of
    *images*; every patient lands in exactly one split. Each returned table has its ``split`` column set."""
    names, values = _fractions(fractions)
    frame = table.frame
    if len(frame) == 0:
        raise RadvisionError("Cannot split an empty label table.")
    require_patient_ids(frame)
    patients, inverse, counts = np.unique(frame["patient_id"].astype(str).to_numpy(), return_inverse=True,
                                          return_counts=True)
    order = np.random.default_rng(seed).permutation(len(patients))
    # Cut the shuffled patient list where the cumulative image count crosses each boundary.
    cum = np.cumsum(counts[order])
    bounds = np.cumsum(values)[:-1] * len(frame)
    idx = np.minimum(np.searchsorted(cum, bounds, side="left"), len(patients) - 1)
    before = np.where(idx > 0, cum[idx - 1], 0)
    # Put the boundary patient on whichever side lands closer to the requested fraction.
    cut = np.where(cum[idx] - bounds <= bounds - before, idx + 1, idx)
    cut = np.maximum.accumulate(np.minimum(cut, len(patients)))
    assignment = np.empty(len(patients), dtype=int)
    pieces = np.split(np.arange(len(patients)), cut)
    for k, piece in enumerate(pieces):
        assignment[order[piece]] = k
    row_split = assignment[inverse]
    out: dict[str, LabelTable] = {}
    for k, name in enumerate(names):
        part = table.subset(row_split == k)
        part.frame["split"] = name
        out[name] = part
        if len(part) == 0 and values[k] > 0:
            log.warning("patient_split: split %r is empty (only %d patients)", name, len(patients))
    log.info("patient_split: %s images over %d patients",
             {n: len(t) for n, t in out.items()}, len(patients))
    return out


def patient_kfold(table: LabelTable, k: int = 5) -> list[tuple[LabelTable, LabelTable]]:
    """k (train, valid) pairs with disjoint patients (scikit-learn's GroupKFold)."""
    from sklearn.model_selection import GroupKFold

    require_patient_ids(table.frame)
    n_patients = table.frame["patient_id"].nunique()
    if k < 2 or k > n_patients:
        raise RadvisionError(f"k must be between 2 and the number of patients ({n_patients}), got {k}.")
    groups = table.frame["patient_id"].astype(str).to_numpy()
    folds = []
    for train_idx, valid_idx in GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups):
        folds.append((table.subset(np.sort(train_idx)), table.subset(np.sort(valid_idx))))
    return folds


def source_splits(table: LabelTable) -> dict[str, LabelTable]:
    """The splits a source defines itself (its ``split`` column), in train / valid / test order."""
    if "split" not in table.frame or table.frame["split"].isna().all():
        raise RadvisionError("This table has no source-defined 'split' column; use patient_split() instead.")
    present = set(table.frame["split"].dropna())
    return {name: table.subset(name) for name in SPLITS if name in present}


def assert_patient_disjoint(splits: Mapping[str, LabelTable]) -> None:
    """Raise RadvisionError naming a patient that appears in two splits (a leak)."""
    seen: dict[str, str] = {}
    for name, t in splits.items():
        for pid in t.frame["patient_id"].astype(str).unique():
            other = seen.setdefault(pid, name)
            if other != name:
                raise RadvisionError(f"Patient {pid!r} appears in both the {other!r} and {name!r} splits.")


def require_train_and_valid(parts: Mapping[str, LabelTable], how: str) -> None:
    """A RadvisionError when a split left train or valid empty (few patients, or one patient holding most
    images); ``how`` says what was split and how ("Splitting train.csv's 12 images by patient with ...")."""
    for name in ("train", "valid"):
        if not len(parts.get(name, ())):
            raise RadvisionError(f"{how} left no {name!r} image; give it a larger fraction (e.g. "
                                 "data.split='{train: 0.8, valid: 0.2}') or more patients.")
