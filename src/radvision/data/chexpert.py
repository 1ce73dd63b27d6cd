"""CheXpert (Irvin et al., AAAI 2019) reader: ``train.csv`` / ``valid.csv`` of CheXpert-v1.0(-small).

Rows: Path ("CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"), Sex, Age,
Frontal/Lateral, AP/PA, then the 14 observations coded 1 / 0 / -1 (uncertain) / blank.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from radvision.data.table import (
    NO_FINDING_COLUMN,
    POLICIES,
    UNMENTIONED,
    LabelTable,
    apply_policy,
    check_choice,
    check_files,
    check_label_cells,
    finish_frame,
    named_file,
    normalize_sex,
    read_csv_checked,
    select_classes,
)
from radvision.errors import RadvisionError

__all__ = ["CHEXPERT_CLASSES", "CHEXPERT_COMPETITION", "check_class_columns", "derive_no_finding", "read_chexpert",
           "resolve_paths"]

log = logging.getLogger(__name__)

CHEXPERT_CLASSES = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
]
#: The five competition tasks used for the CheXpert leaderboard.
CHEXPERT_COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
_SPLIT_FILES = {"train": ("train.csv",), "valid": ("valid.csv",), "test": ("test.csv", "test_labels.csv")}


def derive_no_finding(raw: pd.DataFrame) -> pd.Series:
    """CheXpert's No Finding rule on raw (-1/0/1/blank) labels: 1 when no pathology is positive or
    uncertain (Support Devices excepted), else 0. Computed before the uncertainty policy, so a study
    with only uncertain findings is not "No Finding" under any policy."""
    pathologies = [c for c in CHEXPERT_CLASSES if c not in ("No Finding", "Support Devices") and c in raw]
    values = raw[pathologies].apply(pd.to_numeric, errors="coerce")
    flagged = values.isin([1.0, -1.0]).any(axis=1)
    return pd.Series(np.where(flagged, 0.0, 1.0), index=raw.index, dtype="float32")


def resolve_paths(relative: pd.Series, root: Path) -> list[str]:
    """Join the CSV's relative paths onto ``root``.

    The CSVs prefix paths with the dataset folder name ("CheXpert-v1.0-small/..."), relative to the
    folder *above* the dataset; MIMIC-style tables are relative to the root. Choose the base on the
    first row that exists, trying root/rel, root.parent/rel and root/rel-minus-first-part.
    """
    rel = relative.astype(str).str.replace("\\", "/", regex=False).str.lstrip("/")
    if rel.empty:
        return []

    def strip_first(r: str) -> str:
        return r.split("/", 1)[1] if "/" in r else r

    bases = [(root, False), (root.parent, False), (root, True)]
    probe = rel.iloc[: min(len(rel), 20)]
    chosen = None
    for base, strip in bases:
        if any((base / (strip_first(r) if strip else r)).exists() for r in probe):
            chosen = (base, strip)
            break
    if chosen is None:  # nothing exists yet: the usual layout is "<dataset dir>/<split>/...".
        first = rel.iloc[0].split("/", 1)[0]
        chosen = (root, first == root.name)
    base, strip = chosen
    base_s = str(base)
    return [os.path.join(base_s, strip_first(r) if strip else r) for r in rel]


def _orientation(raw: pd.DataFrame) -> pd.Series:
    """"frontal" / "lateral" per row: the Frontal/Lateral column where it has a value, else the file name
    (view1_frontal.jpg; the labelled test file has no view columns), else NA."""
    from_name = raw["Path"].astype("string").str.lower().str.extract(r"_(frontal|lateral)\.[a-z]+$")[0]
    if "Frontal/Lateral" not in raw:
        return from_name
    given = raw["Frontal/Lateral"].astype("string").str.strip().str.lower()
    return given.where(given.isin(["frontal", "lateral"]), from_name)


def _split_file(root: Path, split: str) -> Path | None:
    """The first of a split's file names (`_SPLIT_FILES`) present in ``root``, or None."""
    return next((root / n for n in _SPLIT_FILES[split] if (root / n).is_file()), None)


_INFO_COLUMNS = {"Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "_split"}


def check_class_columns(part: pd.DataFrame, path: Path, dataset: str = "CheXpert",
                        info_columns: Collection[str] = _INFO_COLUMNS) -> None:
    """Every label cell of a CheXpert-style file must be 1, 0, -1 or blank (`check_label_cells`). A CheXpert class missing from a label file (CheXpert's, or MIMIC-CXR's, which has the same classes) is an
    error when another column looks like a renamed copy of it ("Effusion" for "Pleural Effusion": training
    would silently lose the class, and No Finding would be derived without it), else a warning."""
    check_label_cells(part[[c for c in CHEXPERT_CLASSES if c in part.columns]], path.name)
    missing = [c for c in CHEXPERT_CLASSES if c not in part.columns and c != "No Finding"]
    if not missing:
        return
    others = [str(c) for c in part.columns if c not in info_columns and c not in CHEXPERT_CLASSES]
    lowered = {o.lower(): o for o in others}
    for cls in missing:
        close = difflib.get_close_matches(cls.lower(), list(lowered), n=1, cutoff=0.6) or [
            o for o in lowered if len(o) >= 4 and (o in cls.lower() or cls.lower() in o)]
        if close:
            raise RadvisionError(f"{path.name} has a column {lowered[close[0]]!r} where a CheXpert label file has "
                                 f"{cls!r}; rename it (the CheXpert classes are {', '.join(CHEXPERT_CLASSES)}).")
    log.warning("%s: %s lacks the class column(s) %s; their labels there are unknown and No Finding is derived "
                "without them", dataset, path.name, ", ".join(map(repr, missing)))


def read_chexpert(
    root: str | os.PathLike,
    split: str | None = None,
    frontal_only: bool = True,
    policy: str = "U-Ignore",
    classes: Iterable[str] | None = None,
    missing: str = "raise",
    csv: str | os.PathLike | None = None,
    unmentioned: str = "masked",
) -> LabelTable:
    """Read CheXpert into a LabelTable whose ``split`` column says where each row belongs.

    ``split=None`` (default) reads every official file in ``root``: ``train.csv`` rows become "train"
    and ``valid.csv`` rows become "test". That is the CheXpert study convention: the hidden test set is
    not public, so the radiologist-labelled valid set is the test set, and a valid split is carved out of
    train by patient (radvision's Trainer does this for a source with train but no valid rows;
    `patient_split` does it by hand). When a labelled test file (``test.csv`` or ``test_labels.csv``) is
    present as well, ``valid.csv`` rows become "valid" and the test file's rows "test". CheXpert's
    files hold disjoint patients; a patient found in train.csv and another file is logged as a warning.
    ``split="train" | "valid" | "test"`` reads only that file, its rows marked with that name.

    ``policy``: U-Ignore (-1 -> NaN), U-Zeros (-1 -> 0), U-Ones (-1 -> 1), U-MultiClass (-1 kept as a
    third state; the loss must handle it). Blanks ("not mentioned") stay NaN under every policy
    (``unmentioned="masked"``) or become 0 (``"negative"``, as most published CheXpert code has it),
    except No Finding, which is derived from the other labels (see `derive_no_finding`).
    ``frontal_only`` keeps frontal views. The policy and the frontal filter apply to every file read. These
    Python defaults (frontal only, U-Ignore) are the conservative reading; a config's defaults differ
    (``data.frontal_only: false``, ``data.policy: U-Ones``), so pass both when comparing the two.
    ``missing``: "raise" | "drop" | "ignore" for absent image files.
    ``csv`` replaces the file of ``split`` (with ``split=None``, train.csv; e.g. a relabelled train.csv).
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise RadvisionError(f"CheXpert root directory not found: {root}.")
    if split is not None:
        check_choice(split, tuple(_SPLIT_FILES), "CheXpert split")
    check_choice(policy, POLICIES, "uncertainty policy")
    check_choice(unmentioned, UNMENTIONED, "unmentioned-label rule")
    first = split or "train"
    given_root = root
    nested = sorted(d for d in root.glob("CheXpert*") if d.is_dir())
    if nested and not any(_split_file(root, s) for s in _SPLIT_FILES):
        root = nested[0]  # the folder above the dataset folder was given
    if csv is not None:
        # a relabelled file: as given (absolute, or relative to the working directory), else in the dataset
        # folder, else in the folder given as root
        found = named_file(csv, root, given_root)
        if found is None:
            named = Path(csv).expanduser()
            looked = [named] if named.is_absolute() else [named, root / named, given_root / named]
            raise RadvisionError(f"CheXpert label file {str(csv)!r} not found (looked for "
                                 f"{', '.join(str(c) for c in dict.fromkeys(looked))}).")
        csv_path = found
    else:
        csv_path = _split_file(root, first) or root / _SPLIT_FILES[first][0]
    if not csv_path.is_file():
        raise RadvisionError(f"CheXpert label file not found: {csv_path} (expected {_SPLIT_FILES[first][0]} in root).")
    files = {first: csv_path}
    if split is None:
        valid, test = _split_file(root, "valid"), _split_file(root, "test")
        if valid is not None:
            files["valid" if test is not None else "test"] = valid
        if test is not None:
            files["test"] = test
    raws = []
    for name, path in files.items():
        part = read_csv_checked(path)
        part.columns = [str(c).strip() for c in part.columns]
        if "Path" not in part:
            raise RadvisionError(f"{path.name} lacks the 'Path' column of a CheXpert label file.")
        check_class_columns(part, path)
        raws.append(part.assign(_split=name))
    raw = pd.concat(raws, ignore_index=True)
    available = [c for c in CHEXPERT_CLASSES if c in raw.columns or c == "No Finding"]
    chosen = select_classes(available, classes, "CheXpert")

    orientation = _orientation(raw)
    if frontal_only:
        unknown = int(orientation.isna().sum())
        if unknown:
            log.warning("CheXpert: %d row(s) say neither in a Frontal/Lateral column nor in the file name "
                        "(view<N>_frontal / _lateral) whether they are frontal; frontal_only keeps them", unknown)
        keep = (orientation.fillna("frontal") == "frontal").to_numpy()
        raw, orientation = raw[keep].reset_index(drop=True), orientation[keep].reset_index(drop=True)

    labels = apply_policy(raw[[c for c in chosen if c != "No Finding" and c in raw]], policy, unmentioned)
    # each file finds its own base: a relabelled train file may write its paths unlike the official valid.csv
    paths = pd.Series("", index=raw.index, dtype=object)
    for _, part in raw.groupby("_split", sort=False):
        paths[part.index] = resolve_paths(part["Path"], root)
    frame = pd.DataFrame({"path": paths.to_numpy()})
    no_finding = derive_no_finding(raw)
    if "No Finding" in raw:  # keep a curated 1 or 0 where given (valid.csv); fill blanks by the rule
        given = pd.to_numeric(raw["No Finding"], errors="coerce")
        no_finding = given.where(given.isin([0.0, 1.0]), no_finding)
    no_finding = no_finding.to_numpy(dtype="float32")
    for c in chosen:
        frame[c] = no_finding if c == "No Finding" else labels[c].to_numpy()
    if "No Finding" not in chosen:
        frame[NO_FINDING_COLUMN] = no_finding
    frame["patient_id"] = raw["Path"].astype(str).str.extract(r"(patient\d+)")[0].fillna(
        raw["Path"].astype(str)
    )
    if "Age" in raw:
        frame["age"] = pd.to_numeric(raw["Age"], errors="coerce")
    if "Sex" in raw:
        frame["sex"] = normalize_sex(raw["Sex"])
    # a lateral image is "LATERAL"; a frontal one its AP / PA (blank when not given, e.g. test_labels.csv)
    view = raw["AP/PA"].astype(object) if "AP/PA" in raw else pd.Series(np.nan, index=raw.index, dtype=object)
    view = view.map(lambda v: v.strip() if isinstance(v, str) else np.nan)
    frame["view"] = view.mask((orientation == "lateral").fillna(False).to_numpy(), "LATERAL")
    frame["split"] = raw["_split"].to_numpy()
    source = "CheXpert " + " + ".join(p.name for p in files.values())
    frame = check_files(frame, missing, source)
    in_train = frame["split"] == first
    shared = set(frame.loc[in_train, "patient_id"]) & set(frame.loc[~in_train, "patient_id"])
    if shared:
        log.warning("%s: %d patient(s) appear in %s and in another file (e.g. %s); those splits are not "
                    "patient-disjoint", source, len(shared), csv_path.name, min(shared))
    log.info("%s: %s images, %d patients, policy %s", source, frame["split"].value_counts().to_dict(),
             frame["patient_id"].nunique(), policy)
    return LabelTable(finish_frame(frame, chosen), chosen, root)
