"""Open-i / Indiana University chest X-ray collection (Demner-Fushman et al., 2016) reader.

Kaggle layout: ``indiana_reports.csv`` (uid, MeSH, Problems, image, indication, comparison, findings,
impression) + ``indiana_projections.csv`` (uid, filename, projection) + ``images/images_normalized/``.
Labels come from the curators' manual MeSH coding, mapped onto ChestX-ray14 classes by `OPENI_TERM_MAP`
(data, not code: pass ``term_map=`` for another class set). The report text is kept in ``report``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from radvision.data.nih import NIH_CLASSES, NO_FINDING
from radvision.data.table import (
    LabelTable,
    check_choice,
    check_files,
    finish_frame,
    read_csv_checked,
    select_classes,
)
from radvision.errors import RadvisionError

__all__ = ["OPENI_TERM_MAP", "match_terms", "read_openi"]

log = logging.getLogger(__name__)

#: class -> MeSH patterns. "Head" matches a term whose head (text before the first "/") equals it;
#: "Head/attr" also needs "attr" among the term's qualifiers ("Cardiac Shadow/enlarged").
OPENI_TERM_MAP: dict[str, list[str]] = {
    "Atelectasis": ["Pulmonary Atelectasis", "Atelectasis"],
    "Cardiomegaly": ["Cardiomegaly", "Cardiac Shadow/enlarged", "Heart/enlarged"],
    "Effusion": ["Pleural Effusion"],
    "Infiltration": ["Infiltrate", "Infiltration"],
    "Mass": ["Mass"],
    "Nodule": ["Nodule", "Multiple Pulmonary Nodules", "Solitary Pulmonary Nodule"],
    "Pneumonia": ["Pneumonia"],
    "Pneumothorax": ["Pneumothorax"],
    "Consolidation": ["Consolidation"],
    "Edema": ["Pulmonary Edema", "Edema"],
    "Emphysema": ["Emphysema", "Pulmonary Emphysema", "Bullous Emphysema"],
    "Fibrosis": ["Pulmonary Fibrosis", "Fibrosis"],
    "Pleural_Thickening": ["Pleural Thickening", "Thickening/pleura"],
    "Hernia": ["Hernia, Hiatal", "Hernia", "Hernia, Diaphragmatic"],
    NO_FINDING: ["normal"],
}
_UNINDEXED = "no indexing"
SOURCES = ("MeSH", "Problems")
FRONTAL_PROJECTIONS = ("frontal", "pa", "ap")  # Open-i writes Frontal / Lateral; PA and AP are frontal too
_SECTIONS = ("indication", "comparison", "findings", "impression")


def _parse(term: str) -> tuple[str, set[str]]:
    parts = [p.strip().lower() for p in term.split("/")]
    return parts[0], set(parts[1:])


def match_terms(terms: str | float, term_map: Mapping[str, Sequence[str]], classes: Sequence[str]) -> list[float]:
    """Labels (1.0 / 0.0, NaN for all when the study is "No Indexing" or blank) from one ';'-joined cell."""
    if not isinstance(terms, str) or not terms.strip() or terms.strip().lower() == _UNINDEXED:
        return [np.nan] * len(classes)
    parsed = [_parse(t) for t in terms.split(";") if t.strip()]
    out = []
    for c in classes:
        hit = False
        for pattern in term_map.get(c, ()):
            head, attrs = _parse(pattern)
            if any(h == head and attrs <= a for h, a in parsed):
                hit = True
                break
        out.append(1.0 if hit else 0.0)
    return out


def _pick(root: Path, name: str | os.PathLike | None, stem: str) -> Path:
    """The file given (a relative path from the working directory, else under root), or root's <stem>*.csv."""
    p = root / f"{stem}.csv" if name is None else Path(name).expanduser()
    if not p.is_absolute() and not p.is_file():
        p = root / p
    if p.is_file():
        return p
    alternatives = sorted(root.glob(f"{stem}*.csv"))
    if alternatives and p.name == f"{stem}.csv":
        return alternatives[0]
    raise RadvisionError(f"Open-i file not found: {p} (expected {stem}.csv in {root}).")


def _image_dir(root: Path, first_file: str | None) -> Path:
    candidates = [root / "images" / "images_normalized", root / "images_normalized", root / "images", root]
    for d in candidates:
        if first_file is not None and (d / first_file).is_file():
            return d
    for d in candidates:
        if d.is_dir() and d != root:
            return d
    return candidates[0]


def read_openi(
    root: str | os.PathLike,
    reports_csv: str | os.PathLike | None = None,
    projections_csv: str | os.PathLike | None = None,
    frontal_only: bool = True,
    classes: Iterable[str] | None = None,
    term_map: Mapping[str, Sequence[str]] | None = None,
    source: str = "MeSH",
    image_dir: str | os.PathLike | None = None,
    missing: str = "raise",
) -> LabelTable:
    """Read the IU X-ray collection: one row per image, labels from the study's MeSH (or Problems) terms.

    ``classes`` selects among the keys of ``term_map`` (default: ChestX-ray14 classes + No Finding).
    Studies coded "No Indexing" get NaN labels. ``patient_id`` is the study uid (the collection has no
    patient ids). The report text (INDICATION / COMPARISON / FINDINGS / IMPRESSION sections) is in
    ``report``; raw ``mesh`` and ``problems`` columns are kept. ``reports_csv`` / ``projections_csv``
    default to root's ``indiana_reports.csv`` / ``indiana_projections.csv``; a relative path given is looked
    up from the working directory first, then under root.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise RadvisionError(f"Open-i root directory not found: {root}.")
    check_choice(source, SOURCES, "Open-i label source")
    term_map = dict(term_map) if term_map is not None else OPENI_TERM_MAP
    default = [*NIH_CLASSES, NO_FINDING] if term_map is OPENI_TERM_MAP else list(term_map)
    chosen = select_classes(default if classes is None else list(term_map), classes, "Open-i")

    reports = read_csv_checked(_pick(root, reports_csv, "indiana_reports"))
    projections = read_csv_checked(_pick(root, projections_csv, "indiana_projections"))
    for name, df, need in (("reports", reports, ("uid", source)), ("projections", projections,
                                                                     ("uid", "filename", "projection"))):
        lacking = [c for c in need if c not in df.columns]
        if lacking:
            raise RadvisionError(f"Open-i {name} file lacks column(s) {lacking}; it needs {', '.join(need)}.")
    unreported = ~projections["uid"].isin(reports["uid"])
    if unreported.any():  # their labels come from a report that is not there
        log.warning("Open-i: %d of %d images belong to uids without a report row (first: uid %s); left out",
                    int(unreported.sum()), len(projections), projections.loc[unreported, "uid"].iloc[0])
    rows = projections.merge(reports, on="uid", how="inner")
    rows["projection"] = rows["projection"].astype("string").str.strip()
    if frontal_only:
        frontal = rows["projection"].str.lower().isin(FRONTAL_PROJECTIONS).fillna(False).to_numpy(bool)
        others = rows.loc[~frontal, "projection"].fillna("(blank)").value_counts()
        if len(others):
            log.info("Open-i frontal_only: left out %s", ", ".join(f"{n} {v}" for v, n in others.items()))
        rows = rows[frontal]
    rows = rows.reset_index(drop=True)

    folder = Path(image_dir).expanduser().resolve() if image_dir is not None else _image_dir(
        root, rows["filename"].iloc[0] if len(rows) else None
    )
    frame = pd.DataFrame({"path": [os.path.join(folder, f) for f in rows["filename"].astype(str)]})
    values = np.array([match_terms(t, term_map, chosen) for t in rows[source]], dtype=np.float32).reshape(
        len(rows), len(chosen)
    )
    for j, c in enumerate(chosen):
        frame[c] = values[:, j]
    frame["patient_id"] = rows["uid"].astype(str)
    frame["view"] = rows["projection"].astype(object).where(rows["projection"].notna(), np.nan)

    def report(row: pd.Series) -> str:
        parts = []
        for s in _SECTIONS:
            text = row.get(s)
            if isinstance(text, str) and text.strip():
                parts.append(f"{s.upper()}: {text.strip()}")
        return "\n".join(parts)

    frame["report"] = rows.apply(report, axis=1) if len(rows) else pd.Series(dtype=object)
    frame["mesh"] = rows["MeSH"] if "MeSH" in rows else np.nan
    frame["problems"] = rows["Problems"] if "Problems" in rows else np.nan
    frame["uid"] = rows["uid"].astype(str)
    frame = check_files(frame, missing, "Open-i projections")
    log.info("Open-i: %d images from %d studies", len(frame), frame["patient_id"].nunique())
    return LabelTable(finish_frame(frame, chosen), chosen, root)
