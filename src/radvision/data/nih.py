"""NIH ChestX-ray14 (Wang et al., ChestX-ray8, CVPR 2017) reader.

Layout: ``Data_Entry_2017*.csv`` ("Image Index", "Finding Labels" pipe-separated, "Patient ID",
"Patient Age", "Patient Gender" or, in the v2020 file, "Patient Sex", "View Position"), images in
``images*/`` (the Kaggle release nests ``images_001/images/``), and the official patient-disjoint ``train_val_list.txt`` / ``test_list.txt``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from radvision.data.table import (
    NO_FINDING_COLUMN,
    LabelTable,
    canonical_split,
    check_files,
    finish_frame,
    keep_split,
    named_file,
    normalize_sex,
    patient_ids,
    read_csv_checked,
    select_classes,
)
from radvision.errors import RadvisionError

__all__ = ["NIH_CLASSES", "NO_FINDING", "official_split", "read_nih"]

log = logging.getLogger(__name__)

#: The 14 ChestX-ray14 findings with NIH spelling (default classes).
NIH_CLASSES = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]
NO_FINDING = "No Finding"
_REQUIRED = ("Image Index", "Finding Labels", "Patient ID")
_SEX_COLUMNS = ("Patient Gender", "Patient Sex")  # the 2017 file says Gender, the v2020 file Sex


def _find_csv(root: Path) -> Path:
    candidates = sorted(root.glob("Data_Entry*.csv")) + sorted(root.glob("Data_Entry*.csv.gz"))
    if not candidates:
        raise RadvisionError(
            f"No Data_Entry*.csv (e.g. Data_Entry_2017.csv) found in {root}; give the path of the NIH label "
            "table as data.csv (csv= in Python)."
        )
    # Prefer the official file names over samples or derived copies.
    candidates.sort(key=lambda p: (not p.name.startswith("Data_Entry_2017"), "v2020" not in p.name, p.name))
    return candidates[0]


def _image_index(root: Path) -> dict[str, str]:
    """Map image file name -> absolute path over root/images*/ and root/images*/images/ (else root/)."""
    index: dict[str, str] = {}
    folders = [f for sub in sorted(root.glob("images*")) for f in (sub, sub / "images")]
    for folder in folders or [root]:  # no images*/ folder: images may sit next to the CSV
        if not folder.is_dir():
            continue
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_file():
                    index.setdefault(entry.name, os.path.abspath(entry.path))
    return index


def official_split(root: Path) -> dict[str, str]:
    """{image file name: "train" | "test"} from the official train_val_list.txt / test_list.txt in `root`
    ({} when neither is there)."""
    split: dict[str, str] = {}
    for name, value in (("train_val_list.txt", "train"), ("test_list.txt", "test")):
        f = root / name
        if f.is_file():
            # utf-8-sig: a byte-order mark would otherwise glue itself to the first image name
            for line in f.read_text(encoding="utf-8-sig", errors="replace").split():
                split[line.strip()] = value
    return split


def read_nih(
    root: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    classes: Iterable[str] | None = None,
    missing: str = "raise",
    split: str | None = None,
) -> LabelTable:
    """Read NIH ChestX-ray14 into a LabelTable.

    Labels are 1/0 (NIH has no uncertain or blank labels). By default the classes are the 14 findings
    (`NIH_CLASSES`); ``classes`` selects among them and "No Finding". The ``split`` column comes from a ``split`` column in the CSV when present
    (the shared/bundled samples have one), else from the official train_val_list.txt / test_list.txt
    ("train" / "test"). ``split=`` keeps only that split. ``missing``: "raise" | "drop" | "ignore"
    for rows whose image file is not found.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise RadvisionError(f"NIH root directory not found: {root}.")
    csv_path = _find_csv(root) if csv is None else named_file(csv, root) or root / Path(csv).expanduser()
    if not csv_path.is_file():
        raise RadvisionError(f"NIH label table not found: {csv_path}.")
    raw = read_csv_checked(csv_path)
    raw.columns = [str(c).strip() for c in raw.columns]
    missing_cols = [c for c in _REQUIRED if c not in raw.columns]
    if missing_cols:
        raise RadvisionError(
            f"{csv_path.name} lacks column(s) {missing_cols}; an NIH Data_Entry table has "
            f"{', '.join(_REQUIRED)}, Patient Age, Patient Sex (or Gender), View Position."
        )
    chosen = NIH_CLASSES if classes is None else select_classes([*NIH_CLASSES, NO_FINDING], classes, "NIH ChestX-ray14")
    chosen = list(chosen)

    findings = raw["Finding Labels"].fillna("").astype(str).str.split("|")
    sets = findings.map(lambda xs: {x.strip() for x in xs if x.strip()})
    known = {*NIH_CLASSES, NO_FINDING}
    strange = sorted({x for s in sets for x in s} - known)
    if strange:
        log.warning("%s: ignoring unknown finding label(s) %s", csv_path.name, strange)

    frame = pd.DataFrame({"image": raw["Image Index"].astype(str)})
    blank = sets.map(len).eq(0).to_numpy()  # no label at all, not even "No Finding": unknown, not negative
    if blank.any():
        log.warning("%s: %d row(s) have an empty 'Finding Labels' cell (first: %s); their labels are unknown",
                    csv_path.name, int(blank.sum()), frame["image"].iloc[int(np.flatnonzero(blank)[0])])
    for c in [*chosen, *([] if NO_FINDING in chosen else [NO_FINDING])]:
        values = sets.map(lambda s, c=c: 1.0 if c in s else 0.0).astype("float32").mask(blank)
        frame[c if c in chosen else NO_FINDING_COLUMN] = values
    frame["patient_id"] = patient_ids(raw["Patient ID"], frame["image"].tolist(), csv_path.name)
    if "Patient Age" in raw:
        # Older releases spell ages "058Y".
        frame["age"] = pd.to_numeric(raw["Patient Age"].astype(str).str.extract(r"(\d+)")[0], errors="coerce")
    sex_column = next((c for c in _SEX_COLUMNS if c in raw), None)
    if sex_column:
        frame["sex"] = normalize_sex(raw[sex_column])
    if "View Position" in raw:
        frame["view"] = raw["View Position"].astype(str).str.strip()
    if "split" in raw:
        frame["split"] = canonical_split(raw["split"])
    else:
        official = official_split(root)
        if official:
            frame["split"] = frame["image"].map(official)

    index = _image_index(root)
    default_dir = root / "images"
    frame["path"] = [index.get(name) or str(default_dir / name) for name in frame["image"]]
    frame = frame.drop(columns=["image"])
    if split is not None:
        frame = keep_split(frame, split, f"NIH table {csv_path.name}")
    frame = check_files(frame, missing, f"NIH table {csv_path.name}")
    log.info("NIH: %d images, %d patients from %s", len(frame), frame["patient_id"].nunique(), csv_path)
    return LabelTable(finish_frame(frame, chosen), chosen, root)
