"""What a config trains on, before any training: images, patients and labels per split and class.

`radvision data CONFIG.yaml` prints both tables. Reading them first catches the costly surprises of a
long run: a class with no positives in valid, a split that shares patients with train, an
imbalance that calls for `loss.pos_weight` or `data.downsample`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from radvision.data.imageclef import label_cardinality, label_density
from radvision.data.table import LabelTable

__all__ = ["class_counts", "class_counts_text", "split_overview"]


def split_overview(parts: Mapping[str, LabelTable]) -> pd.DataFrame:
    """One row per split: images, patients, patients and image files shared with the train split (a leak
    unless the source defines it so; one file listed under two patient ids crosses a patient split), label
    cardinality (positives per image) and density (cardinality / classes), and how many classes have no
    positive there."""
    train_patients = set(parts["train"].frame["patient_id"].astype(str)) if "train" in parts else set()
    train_paths = set(parts["train"].frame["path"].astype(str)) if "train" in parts else set()
    rows = []
    for name, table in parts.items():
        patients = set(table.frame["patient_id"].astype(str))
        y = table.labels()
        rows.append({
            "split": name,
            "images": len(table),
            "patients": len(patients),
            "patients_in_train": len(patients & train_patients) if name != "train" else pd.NA,
            "images_in_train": len(set(table.frame["path"].astype(str)) & train_paths) if name != "train" else pd.NA,
            "cardinality": label_cardinality(y),
            "density": label_density(y),
            "classes_without_positives": int(((y == 1).sum(axis=0) == 0).sum()),
        })
    return pd.DataFrame(rows).astype({"patients_in_train": "Int64", "images_in_train": "Int64"})


def class_counts(parts: Mapping[str, LabelTable]) -> pd.DataFrame:
    """One row per class: for each split its positives, negatives, unknown labels (blank, or -1 under
    U-Ignore / U-MultiClass) and prevalence (positives among the known labels)."""
    classes = list(next(iter(parts.values())).classes) if parts else []
    frame = pd.DataFrame({"class": classes})
    for name, table in parts.items():
        y = table.labels()
        positives, negatives = (y == 1).sum(axis=0), (y == 0).sum(axis=0)
        known = positives + negatives
        frame[f"{name}_positives"] = positives
        frame[f"{name}_negatives"] = negatives
        frame[f"{name}_unknown"] = len(y) - known
        frame[f"{name}_prevalence"] = np.where(known > 0, positives / np.maximum(known, 1), np.nan)
    return frame


def class_counts_text(counts: pd.DataFrame) -> pd.DataFrame:
    """`class_counts` for reading: per split "positives / known (prevalence)", plus "?N" for N unknown."""
    splits = [c.removesuffix("_positives") for c in counts.columns if c.endswith("_positives")]
    text = counts[["class"]].copy()
    for name in splits:
        pos, neg, unknown = (counts[f"{name}_{k}"] for k in ("positives", "negatives", "unknown"))
        prevalence = counts[f"{name}_prevalence"].map(lambda v: "-" if pd.isna(v) else f"{v:.1%}")
        text[name] = [f"{p} / {p + n} ({r})" + (f" ?{u}" if u else "")
                      for p, n, u, r in zip(pos, neg, unknown, prevalence, strict=True)]
    return text
