"""Generic sources: any CSV of image paths + label columns, and class-per-folder trees."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from radvision.data.chexpert import CHEXPERT_CLASSES
from radvision.data.images import IMAGE_EXTENSIONS, image_files
from radvision.data.table import (
    META_COLUMNS,
    NO_FINDING_COLUMN,
    SPLITS,
    LabelTable,
    apply_policy,
    canonical_split,
    check_files,
    check_label_cells,
    did_you_mean,
    finish_frame,
    label_share,
    no_finding_beside_findings,
    normalize_sex,
    patient_ids,
    read_csv_checked,
    select_classes,
    separator_hint,
)
from radvision.errors import RadvisionError

__all__ = ["SPLIT_FOLDERS", "read_csv_table", "read_folder"]

log = logging.getLogger(__name__)

# never label columns: the contract's meta columns (a saved reader table's no_finding flag included), and the
# status column a labeler writes (radlabel's error)
_META = (*META_COLUMNS, "error")
NO_FINDING = "No Finding"


def _column(df: pd.DataFrame, name: str, what: str, csv: Path) -> str:
    if name in df.columns:
        return name
    hint = did_you_mean(name, list(df.columns)) or separator_hint(df)
    raise RadvisionError(
        f"{csv.name} has no {what} column {name!r}{hint}; columns: {', '.join(map(str, df.columns))}."
    )


def _mask_labeler_errors(values: pd.DataFrame, read: pd.DataFrame, df: pd.DataFrame, name: str) -> pd.DataFrame:
    """A report a labeler could not read (radlabel's `error` column filled and no label `read`) is no evidence of
    absence: its labels stay unknown even when ``unmentioned="negative"`` would have made its blanks 0. A row
    with labels beside its note (a report labelled after truncation) keeps them, as radlabel's to_binary does."""
    if "error" not in df:
        return values
    noted = (df["error"].astype("string").fillna("").str.strip() != "").to_numpy()
    failed = noted & read.isna().all(axis=1).to_numpy()
    if not failed.any():
        return values
    first = int(np.flatnonzero(failed)[0])
    changed = values.loc[failed].notna().to_numpy().any()
    (log.warning if changed else log.info)(
        "%s: %d row(s) have a labeler error and no label (first: data row %d: %s); their labels are left "
        "unknown, not negative", name, int(failed.sum()), first + 1, str(df["error"].iloc[first]).strip())
    values = values.copy()
    values.loc[failed] = np.nan
    return values


_WORDED = {"yes", "no", "y", "n", "pos", "neg", "positive", "negative", "present", "absent", "true", "false"}


def _worded(column: pd.Series) -> bool:
    """Whether a column's filled cells are all yes / no style words."""
    words = set(column.dropna().astype(str).str.strip().str.lower()) - {""}
    return bool(words) and words <= _WORDED


def read_csv_table(
    csv: str | os.PathLike,
    root: str | os.PathLike | None = None,
    path_column: str = "path",
    label_columns: Iterable[str] | None = None,
    patient_column: str | None = None,
    policy: str = "U-Ignore",
    sep: str | None = None,
    missing: str = "raise",
    unmentioned: str = "masked",
) -> LabelTable:
    """Read a CSV/TSV with an image path column and label columns (1 / 0 / -1 / blank).

    Relative paths are joined onto ``root`` (default: the CSV's folder). ``label_columns`` defaults to
    every numeric column except the meta columns (patient_id, age, sex, view, split). Patients come
    from ``patient_column`` (default "patient_id" when present, else each image is its own patient,
    which makes splits image-level). ``-1`` follows ``policy`` and blanks ``unmentioned`` as in `read_chexpert`.
    """
    csv = Path(csv).expanduser().resolve()
    if not csv.is_file():
        raise RadvisionError(f"Label CSV not found: {csv}.")
    base = Path(root).expanduser().resolve() if root is not None else csv.parent
    if sep is None:
        sep = "\t" if csv.suffix.lower() in (".tsv", ".tab") else ","
    df = read_csv_checked(csv, sep=sep, skipinitialspace=True)  # a cell of spaces is blank, " 1" is 1
    df.columns = [str(c).strip() for c in df.columns]
    _column(df, path_column, "path", csv)
    reserved = {path_column, *_META, *([patient_column] if patient_column else [])}
    if label_columns is None:
        if df.empty:
            raise RadvisionError(f"{csv} holds no image rows, only its header.")
        others = [c for c in df.columns if c not in reserved]
        # a label column with one stray cell ("1?") is read as text: taken as a label column, it is refused
        # below with the cell named, instead of dropping the class without a word
        chosen = [c for c in others if pd.api.types.is_numeric_dtype(df[c]) or label_share(df[c]) >= 0.5]
        if not chosen:
            raise RadvisionError(f"{csv.name} has no numeric label columns (other columns: {others}); choose them "
                                 "with data.classes (label_columns= in Python).")
        left_out = [c for c in others if c not in chosen]
        # "yes" / "no" cells are a class written in words: say so out loud, not only at INFO
        worded = [c for c in left_out if _worded(df[c])]
        if worded:
            log.warning("%s: the column(s) %s hold yes / no words and are not trained on; write them as 1 / 0 "
                        "(blank when unknown) to make them classes", csv.name, ", ".join(worded))
        if left_out:
            log.info("%s: label columns %s; left out the non-numeric column(s) %s (choose with data.classes)",
                     csv.name, ", ".join(chosen), ", ".join(left_out))
    else:
        chosen = select_classes([c for c in df.columns if c not in reserved], label_columns, csv.name)
    coerced = check_label_cells(df[chosen], csv.name, hint=" Is it a label column? (choose label columns with "
                                "data.classes)")
    if NO_FINDING in coerced and unmentioned == "masked":
        # The chosen label columns count, and CheXpert's findings whether chosen or not (a finding left out of
        # data.classes is still not "No Finding"); other unchosen columns may be 0 / 1 flags (portable, say).
        findings = [c for c in df.columns if c != NO_FINDING and (c in coerced.columns or c in CHEXPERT_CLASSES)]
        coerced[NO_FINDING] = no_finding_beside_findings(coerced[NO_FINDING], df[findings])
    values = _mask_labeler_errors(apply_policy(coerced, policy, unmentioned), coerced, df, csv.name)
    # blank cells stay "" so check_files names their rows; spaces around a name are not part of it
    paths = df[path_column].astype("string").fillna("").str.strip().astype(str)
    if os.sep == "/":  # a table written on Windows (images\\a.png), as the CheXpert reader reads it
        paths = paths.where(paths.map(os.path.isabs), paths.str.replace("\\", "/", regex=False))
    frame = pd.DataFrame(
        {"path": [p if not p or os.path.isabs(p) else os.path.normpath(os.path.join(base, p)) for p in paths]}
    )
    for c in chosen:
        frame[c] = values[c].to_numpy()
    if patient_column is not None or "patient_id" in df:
        column = _column(df, patient_column, "patient", csv) if patient_column is not None else "patient_id"
        frame["patient_id"] = patient_ids(df[column], paths.tolist(), csv.name)
    else:
        (log.info if "split" in df else log.warning)(
            "%s: no patient column (patient_id, or name yours with data.patient_column); each image counts as its "
            "own patient, so one patient's images can land in both train and test", csv.name)
        frame["patient_id"] = paths.to_numpy()
    for c in ("age", "view"):
        if c in df:
            frame[c] = df[c].to_numpy()
    if NO_FINDING_COLUMN in df:  # a saved reader table: its flag still drives downsample's No Finding key
        frame[NO_FINDING_COLUMN] = pd.to_numeric(df[NO_FINDING_COLUMN], errors="coerce").to_numpy(dtype=float)
    if "sex" in df:
        frame["sex"] = normalize_sex(df["sex"]).to_numpy()
    if "split" in df:
        s = canonical_split(df["split"])
        bad_split = sorted(set(s.dropna()) - set(SPLITS))
        if bad_split:
            raise RadvisionError(f"{csv.name} has unknown split value(s) {bad_split}; use {', '.join(SPLITS)}.")
        frame["split"] = s.to_numpy()
    frame = check_files(frame, missing, csv.name)
    return LabelTable(finish_frame(frame, chosen), chosen, base)


# split folder names, any case -> the split they fill
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "valid", "valid": "valid", "validation": "valid",
                 "test": "test", "testing": "test"}
# folders an archive, a file manager or an OS leaves beside the data: never classes or splits
_SYSTEM_FOLDERS = {"__macosx", "$recycle.bin", "system volume information", "@eadir", "lost+found"}


def _ignored_folder(name: str) -> bool:
    return name.startswith((".", "__")) or name.lower() in _SYSTEM_FOLDERS


def _folders(parent: Path) -> list[Path]:
    """The sub-folders of ``parent`` that can be classes or splits (hidden and system folders left out)."""
    return sorted(d for d in parent.iterdir() if d.is_dir() and not _ignored_folder(d.name))


def _loose_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (not in a sub-folder)."""
    return sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
                  and f.suffix.lower() in IMAGE_EXTENSIONS)


def _first(items: list, n: int = 3) -> str:
    return ", ".join(str(x) for x in items[:n]) + (", ..." if len(items) > n else "")


_LAYOUT = ("expected root/<class>/<images> or root/<split>/<class>/<images> with split folders named train / "
           "training, val / valid / validation, test / testing (any case)")


def read_folder(root: str | os.PathLike, classes: Iterable[str] | None = None) -> LabelTable:
    """Class-per-folder tree (``root/<class>/*.png``) -> one-hot LabelTable, classes sorted by name.

    ``root/<split>/<class>/...`` is recognised too and fills the ``split`` column: split folders are named
    train / training, val / valid / validation or test / testing, in any case. Hidden and system folders
    (``.name``, ``__name`` such as ``__MACOSX``, ``$RECYCLE.BIN``, ``System Volume Information``, ``@eaDir``) are
    neither classes nor splits. Split folders beside other folders are refused (the split would become a
    class); images lying directly in a split folder (or in ``root``) are left out with a warning, and so is
    a warning given for a class folder holding only sub-folders (its images are read recursively, as that
    class). Each image is its own patient (folders carry no patient ids).
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise RadvisionError(f"Image folder not found: {root}.")
    subdirs = _folders(root)
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_FOLDERS]
    others = [d for d in subdirs if d.name.lower() not in SPLIT_FOLDERS]
    if split_dirs and others:
        raise RadvisionError(
            f"{root} holds split folders ({', '.join(d.name for d in split_dirs)}) beside other folders "
            f"({_first([d.name for d in others], 5)}); {_LAYOUT}. Move the other folders out (or into the split "
            "folders) so that the splits are not read as classes.")
    groups: list[tuple[str | None, Path]] = []
    loose = _loose_images(root)
    if split_dirs:
        for d in split_dirs:
            groups += [(SPLIT_FOLDERS[d.name.lower()], c) for c in _folders(d)]
            loose += _loose_images(d)
    else:
        groups = [(None, d) for d in subdirs]
    if loose:
        where = "split folders" if split_dirs else "the root folder"
        log.warning("%s: %d image(s) lie directly in %s, outside any class folder, and are left out (first: %s); "
                    "%s", root, len(loose), where, _first([str(p.relative_to(root)) for p in loose]), _LAYOUT)
    _check_class_folders(root, groups)
    found = sorted({d.name for _, d in groups})
    if not found:
        raise RadvisionError(f"{root} has no class sub-folders; {_LAYOUT}.")
    chosen = select_classes(found, classes, f"folder {root}")
    rows, left_out = [], {}
    for split, d in groups:  # as Keras reads a class-name subset: only the chosen folders' images
        files = image_files(d)
        if d.name in chosen:
            rows += [(p, d.name, split) for p in files]
        else:
            left_out[d.name] = left_out.get(d.name, 0) + len(files)
    if left_out:
        log.warning("folder %s: data.classes leaves out the folder(s) %s and their %d image(s)", root,
                    ", ".join(sorted(left_out)), sum(left_out.values()))
    if not rows:
        raise RadvisionError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under the class folders of {root}.")
    if len(chosen) == 1:  # every image would be positive: nothing to learn, and AUROC undefined
        if len(found) == 1:
            raise RadvisionError(f"{root} has one class folder ({chosen[0]}), so every image would be positive for "
                                 "it; a folder dataset needs at least two class folders (e.g. normal/ beside it).")
        raise RadvisionError(f"data.classes reads one class folder of {root} ({chosen[0]}), so every image would be "
                             f"positive for it; choose at least two of its folders: {', '.join(found)}.")
    frame = pd.DataFrame(rows, columns=["path", "_class", "split"])
    for c in chosen:
        frame[c] = (frame["_class"] == c).astype("float32")
    frame["patient_id"] = frame["path"]
    frame = frame.drop(columns=["_class"])
    if frame["split"].isna().all():
        frame = frame.drop(columns=["split"])
    return LabelTable(finish_frame(frame, chosen), chosen, root)


_JUNK_FILES = {"thumbs.db", "desktop.ini"}


def _check_class_folders(root: Path, groups: list[tuple[str | None, Path]]) -> None:
    """Refuse a class folder that holds split folders (the root is a level too high); warn about class folders
    that hold only sub-folders (maybe the classes are one level down)."""
    nested: list[tuple[Path, list[Path]]] = []
    for _, d in groups:
        inner = _folders(d)
        has_files = any(f.is_file() and not f.name.startswith(".") and f.name.lower() not in _JUNK_FILES
                        for f in d.iterdir())
        if inner and not has_files:
            nested.append((d, inner))
    for d, inner in nested:
        splits = [x.name for x in inner if x.name.lower() in SPLIT_FOLDERS]
        if splits:
            raise RadvisionError(
                f"The class folder {d.relative_to(root)} of {root} holds split folders ({', '.join(splits)}), so "
                f"the dataset starts one level down: set data.root to {d}; {_LAYOUT}.")
    if nested:
        shown = "; ".join(f"{d.relative_to(root)}/ holds {_first([x.name for x in inner])}" for d, inner in nested[:3])
        log.warning("%s: %d class folder(s) hold no images directly, only sub-folders (%s%s); every image below each "
                    "is read as that class. If those sub-folders are the classes, set data.root to the folder that "
                    "holds them; %s", root, len(nested), shown, "; ..." if len(nested) > 3 else "", _LAYOUT)
