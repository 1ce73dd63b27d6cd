"""MIMIC-CXR-JPG 2.0.0 (Johnson et al., 2019) reader.

Joins ``mimic-cxr-2.0.0-{chexpert|negbio}.csv`` (labels per study), ``-metadata.csv`` (one row per
DICOM: view) and ``-split.csv`` (train / validate / test); each may be gzipped. Images live at
``files/p<first 2 digits>/p<subject_id>/s<study_id>/<dicom_id>.jpg``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from radvision.data.chexpert import CHEXPERT_CLASSES, check_class_columns, derive_no_finding
from radvision.data.table import (
    NO_FINDING_COLUMN,
    POLICIES,
    UNMENTIONED,
    LabelTable,
    apply_policy,
    canonical_split,
    check_choice,
    check_files,
    finish_frame,
    keep_split,
    named_file,
    read_csv_checked,
    select_classes,
)
from radvision.errors import RadvisionError

__all__ = ["read_mimic"]

log = logging.getLogger(__name__)

FRONTAL_VIEWS = ("PA", "AP")
LABELERS = ("chexpert", "negbio")


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (root / name).is_file():
            return root / name
    raise RadvisionError(f"MIMIC-CXR file {stem}.csv(.gz) not found in {root}.")


def _label_file(root: Path, csv: str | os.PathLike) -> Path:
    found = named_file(csv, root)
    if found is None:
        raise RadvisionError(f"MIMIC-CXR label file {str(csv)!r} not found (looked for it as given and in {root}); "
                             "data.csv names the label file, e.g. mimic-cxr-2.0.0-negbio.csv.gz.")
    return found


def read_mimic(
    root: str | os.PathLike,
    policy: str = "U-Ignore",
    classes: Iterable[str] | None = None,
    frontal_only: bool = True,
    split: str | None = None,
    labeler: str = "chexpert",
    missing: str = "raise",
    unmentioned: str = "masked",
    csv: str | os.PathLike | None = None,
) -> LabelTable:
    """Read MIMIC-CXR-JPG into a LabelTable (one row per image; labels are per study).

    ``policy`` and ``unmentioned`` as in `read_chexpert`; No Finding keeps the labeler's 1 and is otherwise derived by
    CheXpert's rule. ``split`` ("train" | "valid" | "test") keeps one official split (MIMIC's
    "validate" is renamed "valid"). ``labeler``: "chexpert" or "negbio" label file. ``csv``: another label file
    with the same columns (`subject_id`, `study_id`, the classes), e.g. ``mimic-cxr-2.0.0-negbio.csv.gz`` or a
    relabelled copy; looked up as given, then in the root. Patients are ``subject_id``.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise RadvisionError(f"MIMIC-CXR root directory not found: {root}.")
    check_choice(policy, POLICIES, "uncertainty policy")
    check_choice(unmentioned, UNMENTIONED, "unmentioned-label rule")
    check_choice(labeler, LABELERS, "MIMIC-CXR labeler")
    if split is not None:
        check_choice(split, ("train", "valid", "test"), "split")
    label_path = _find(root, f"mimic-cxr-2.0.0-{labeler}") if csv is None else _label_file(root, csv)
    labels = read_csv_checked(label_path)
    meta = read_csv_checked(_find(root, "mimic-cxr-2.0.0-metadata"))
    splits = read_csv_checked(_find(root, "mimic-cxr-2.0.0-split"))
    for name, df, need in (
        ("labels", labels, ("subject_id", "study_id")),
        ("metadata", meta, ("dicom_id", "subject_id", "study_id")),
        ("split", splits, ("dicom_id", "split")),
    ):
        lacking = [c for c in need if c not in df.columns]
        if lacking:
            raise RadvisionError(f"MIMIC-CXR {name} file lacks column(s) {lacking}; it needs {', '.join(need)}.")
    check_class_columns(labels, label_path, "MIMIC-CXR", info_columns={"subject_id", "study_id"})
    available = [c for c in CHEXPERT_CLASSES if c in labels.columns or c == "No Finding"]
    chosen = select_classes(available, classes, "MIMIC-CXR")

    rows = meta.merge(splits[["dicom_id", "split"]], on="dicom_id", how="left")
    rows = rows.merge(labels, on=["subject_id", "study_id"], how="inner")
    if len(rows) < len(meta):  # MIMIC's label files leave some studies out; their images cannot be trained on
        log.info("MIMIC-CXR: %d of %d images belong to studies without a row in the %s label file; left out",
                 len(meta) - len(rows), len(meta), labeler)
    if frontal_only and "ViewPosition" in rows:
        view = rows["ViewPosition"]
        keep = view.isin(FRONTAL_VIEWS)
        blank = view.isna() | view.astype(str).str.strip().eq("")
        # a blank ViewPosition is left out too (as most MIMIC-CXR training code does): its view is unknown
        log.info("MIMIC-CXR frontal_only: left out %d non-frontal images and %d with a blank ViewPosition",
                 int((~keep & ~blank).sum()), int(blank.sum()))
        rows = rows[keep]
    rows["split"] = canonical_split(rows["split"])
    if split is not None:
        rows = keep_split(rows, split, "MIMIC-CXR")
    rows = rows.reset_index(drop=True)

    sub = rows["subject_id"].astype("int64").astype(str)
    study = rows["study_id"].astype("int64").astype(str)
    files = root / "files"
    frame = pd.DataFrame(
        {
            "path": [
                os.path.join(files, f"p{s[:2]}", f"p{s}", f"s{t}", f"{d}.jpg")
                for s, t, d in zip(sub, study, rows["dicom_id"].astype(str), strict=True)
            ]
        }
    )
    converted = apply_policy(rows[[c for c in chosen if c != "No Finding"]], policy, unmentioned)
    given = pd.to_numeric(rows["No Finding"], errors="coerce") if "No Finding" in rows else None
    derived = derive_no_finding(rows)
    no_finding = (derived if given is None else given.where(given == 1.0, derived)).to_numpy("float32")
    for c in chosen:
        frame[c] = no_finding if c == "No Finding" else converted[c].to_numpy()
    if "No Finding" not in chosen:
        frame[NO_FINDING_COLUMN] = no_finding
    frame["patient_id"] = sub
    if "ViewPosition" in rows:
        frame["view"] = rows["ViewPosition"].astype(object)
    frame["split"] = rows["split"].astype(object)
    frame["study_id"] = study
    frame = check_files(frame, missing, "MIMIC-CXR metadata")
    log.info("MIMIC-CXR: %d images, %d patients, policy %s", len(frame), frame["patient_id"].nunique(), policy)
    return LabelTable(finish_frame(frame, chosen), chosen, root)
