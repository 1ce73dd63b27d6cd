"""ImageCLEF caption / concept detection, ROCO and ROCOv2 concept files.

ImageCLEF 2019-2021: tab-separated, no header: ``<image id>\\t<CUI>;<CUI>;...``; ROCO's ``cuis.txt`` puts one
CUI per tab-separated field instead (``<image id>\\t<CUI>\\t<CUI>...``), which reads the same.
ROCOv2 / ImageCLEFmedical 2023+: comma-separated with a header ``ID,CUIs``. The separator is detected
from the first line unless given. ROCO (v1) names its images ``<PMC id>_<figure file>`` rather than by
``ROCO_xxxxx``; that name is read from the ``dlinks*.txt`` beside the concept file (the official release) or
from a csv there with ``id`` and ``name`` columns (``radiologytraindata.csv`` of the repackaged release). Both become a multi-hot LabelTable over the kept concepts (1.0 / 0.0,
never NaN: an absent concept is a negative).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from radvision.data.images import IMAGE_EXTENSIONS
from radvision.data.table import LabelTable, check_files, finish_frame, select_classes
from radvision.errors import RadvisionError

__all__ = ["concept_id", "concept_set", "label_cardinality", "label_density", "read_concepts", "read_imageclef", "roco_file_names"]

log = logging.getLogger(__name__)


def read_concepts(concepts_csv: str | os.PathLike, sep: str | None = None) -> pd.DataFrame:
    """Rows of (id, list of concepts); a header row ("ID", "CUIs") is detected and skipped.

    ``sep=None`` detects the separator: a tab when the first non-empty line holds one or holds no comma
    (ImageCLEF 2019-2021), else a comma (ROCOv2)."""
    path = Path(concepts_csv).expanduser()
    if not path.is_file():
        raise RadvisionError(f"Concept file not found: {path}.")
    if sep is not None:
        # spellings a shell leaves as typed: --sep '\t' arrives as backslash + t
        sep = {"\\t": "\t", "tab": "\t", "comma": ","}.get(sep.lower(), sep)
        if len(sep) != 1:
            raise RadvisionError(f"Concept file separator {sep!r} must be one character: '\\t' (or 'tab') for "
                                 "ImageCLEF 2019-2021 files, ',' for ROCOv2, or leave it out to detect it (data.concept_sep in a config).")
    try:  # utf-8-sig: a byte-order mark (Excel's UTF-8) must not become part of the first id
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise RadvisionError(f"Concept file {path} is not UTF-8 text ({err.reason} at byte {err.start}); "
                             "expected lines of 'ID<TAB>CUI;CUI' (ImageCLEF) or 'ID,CUIs' (ROCOv2).") from None
    detected = sep is None
    if detected:
        first = next((line for line in text.splitlines() if line.strip()), "")
        sep = "\t" if "\t" in first or "," not in first else ","
    ids, concepts = [], []
    first = True
    for i, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sep)):
        if not row or not row[0].strip():
            continue
        if first and _is_header(row):
            first = False  # a header, also after blank lines
            continue
        first = False
        if len(row) > 2 and sep != "\t":
            raise RadvisionError(
                f"{path.name} line {i + 1} has {len(row)} fields with sep={sep!r}; expected an id and "
                "';'-separated concepts (a tab-separated file needs sep='\\t', data.concept_sep: tab in a config, or the "
                "default detection)."
            )
        ids.append(row[0].strip())
        # every field after the id holds concepts: one ';'-joined field, or one CUI per field (ROCO)
        concepts.append([c.strip() for cell in row[1:] for c in cell.split(";") if c.strip()])
    if not ids:
        raise RadvisionError(f"Concept file {path} holds no rows.")
    if not any(concepts):
        if detected:  # the file itself is wrong: neither separator gives an id and its concepts
            raise RadvisionError(f"Concept file {path.name} gives no concepts; expected lines of "
                                 "'ID<TAB>CUI;CUI' (ImageCLEF) or 'ID,CUI;CUI' (ROCOv2).")
        other = "\t" if sep == "," else ","  # e.g. sep="," on a tab-separated file: each line is read as one id
        raise RadvisionError(f"Concept file {path.name} gives no concepts with sep={sep!r}; if its lines are "
                             f"'ID{'<TAB>' if other == chr(9) else ','}CUI;CUI', use sep={other!r} (data.concept_sep "
                             "in a config), or leave sep out to detect it.")
    joined = [c for cs in concepts for c in cs if _JOINED.search(c)]
    if joined:  # "C1,C2" or "C1|C2" in one cell reads as one concept nobody has: the filters would keep it quietly
        log.warning("%s: %d concept(s) hold a ',', '|' or space (first: %r); the concepts of an image are separated "
                    "by ';' (ID<TAB>CUI;CUI), so each of these is read as one concept", path.name, len(joined), joined[0])
    return _one_row_per_id(pd.DataFrame({"id": ids, "concepts": concepts}), path)


_HEADER_IDS = frozenset({"id", "ids", "image", "image_id", "imageid", "image id", "image_name", "filename", "file",
                         "file_name", "name"})
_HEADER_CONCEPTS = frozenset({"cui", "cuis", "concept", "concepts", "concept_ids", "labels"})
_JOINED = re.compile(r"[,|\s]")


def _is_header(row: list[str]) -> bool:
    """A header row: its first cell names the id column or its second the concepts ("ID,CUIs", "filename<TAB>cuis")."""
    return row[0].strip().lower() in _HEADER_IDS or (len(row) > 1 and row[1].strip().lower() in _HEADER_CONCEPTS)


def concept_set(cell: object) -> set[str]:
    """A ';'-joined concept cell (a LabelTable's `concepts` column) as a set; empty for a blank cell."""
    return {c.strip() for c in cell.split(";") if c.strip()} if isinstance(cell, str) else set()


def concept_id(path: str) -> str:
    """The concept-file id of an image path: its file name without an image extension ("train/DRAN/x.jpg" -> "x";
    ImageCLEF ids are written with or without it)."""
    name = str(path).strip().replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]  # a Windows path too
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_EXTENSIONS else name


def _one_row_per_id(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """An id on several lines is one image: its concepts are merged (in order, once each), so it counts once
    for min_frequency and is not trained on twice."""
    if not table["id"].duplicated().any():
        return table
    repeated = table.loc[table["id"].duplicated(), "id"].unique()
    log.warning("%s: %d id(s) appear on more than one line (first: %r); their concepts are merged into one row each",
                path.name, len(repeated), repeated[0])
    merged = table.groupby("id", sort=False)["concepts"].agg(lambda lists: list(dict.fromkeys(c for cs in lists
                                                                                          for c in cs)))
    return merged.reset_index()


def roco_file_names(folder: str | os.PathLike) -> dict[str, str]:
    """ROCO v1 image id -> image file name, from the ``dlinks*.txt`` / ``*.csv`` (id, name) files of a folder.

    A dlinks line is ``ROCO_00020<TAB>wget ... .../PMC3970251.tar.gz -P ...<TAB>figure.jpg``; the release's
    fetch script stores that image as ``PMC3970251_figure.jpg``. Files of other shapes are ignored."""
    names: dict[str, str] = {}
    folder = Path(folder)
    for path in sorted(p for p in folder.glob("dlinks*.txt") if p.is_file()):
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                fields = line.rstrip("\r\n").split("\t")
                archive = next((w for w in fields[1].split() if w.endswith(".tar.gz")), "") if len(fields) > 2 else ""
                if archive and fields[-1].strip():
                    pmc = archive.rsplit("/", 1)[-1][: -len(".tar.gz")]
                    names.setdefault(fields[0].strip(), f"{pmc}_{fields[-1].strip()}")
    for path in sorted(p for p in folder.glob("*.csv") if p.is_file()):
        try:
            table = pd.read_csv(path, usecols=["id", "name"], dtype=str)
        except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError):
            continue  # not an (id, name) table, or not readable: the images stay unresolved and are named
        for rid, name in zip(table["id"], table["name"], strict=True):
            if isinstance(rid, str) and isinstance(name, str):
                names.setdefault(rid.strip(), name.strip())
    return names


def _image_paths(image_dir: Path, ids: list[str], aliases: dict[str, str] | None = None
                 ) -> tuple[list[str], dict[str, list[str]]]:
    """The image file of each id, found anywhere under ``image_dir`` (ImageCLEF 2020 ships one folder per
    modality, DRAN ... DRXR): the file named exactly the id, else the one whose stem is the id (or the id's
    ROCO v1 alias); and the ids that match several files (``img1.jpg`` and ``img1.png``, or one name in two
    folders) -> those files, relative to ``image_dir``. Such an id takes the least deep, then alphabetically
    first one."""
    by_name: dict[str, list[str]] = {}
    by_stem: dict[str, list[str]] = {}
    if image_dir.is_dir():
        seen = {os.path.realpath(image_dir)}
        for folder, subfolders, files in os.walk(image_dir, followlinks=True):
            kept = []  # not .git, __MACOSX; a folder reached twice (links) is walked once, and a link up never loops
            for d in sorted(subfolders):  # sorted: which of two links is walked does not depend on the disk
                real = os.path.realpath(os.path.join(folder, d))
                if not d.startswith((".", "__")) and real not in seen:
                    seen.add(real)
                    kept.append(d)
            subfolders[:] = kept
            rel = os.path.relpath(folder, image_dir)
            for name in files:
                stem, ext = os.path.splitext(name)
                if ext.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                    path = name if rel == "." else os.path.join(rel, name)
                    by_name.setdefault(name, []).append(path)
                    by_stem.setdefault(stem, []).append(path)
    aliases = aliases or {}
    ambiguous: dict[str, list[str]] = {}

    def find(key: str) -> str | None:
        if not key:
            return None
        found = sorted(by_name.get(key) or by_stem.get(key, ()), key=lambda p: (p.count(os.sep), p))  # top first
        if len(found) > 1:
            ambiguous.setdefault(key, found)
        return os.path.join(image_dir, found[0]) if found else None

    # ids may or may not carry the extension; unresolved ones default to <id>.jpg so the error names them
    paths = [find(i) or find(aliases.get(i, "")) or
             os.path.join(image_dir, i if os.path.splitext(i)[1] else f"{i}.jpg") for i in ids]
    return paths, ambiguous


def read_imageclef(
    concepts_csv: str | os.PathLike,
    image_dir: str | os.PathLike,
    top_k: int | None = None,
    min_frequency: int = 1,
    sep: str | None = None,
    classes: Iterable[str] | None = None,
    missing: str = "raise",
) -> LabelTable:
    """Concept file -> multi-hot LabelTable over concepts (classes are CUIs, most frequent first).

    ``sep``: "\\t" (ImageCLEF 2019-2021), "," (ROCOv2), or None to detect it (see `read_concepts`).
    ``min_frequency`` drops concepts seen in fewer images; ``top_k`` then keeps the k most frequent
    (ties broken by CUI). ``classes`` picks concepts explicitly (after the frequency filters).
    ``patient_id`` is the image id (these collections have no patient ids). The image's full concept
    list stays in ``concepts`` (';'-joined) so dropped concepts are not lost.
    """
    if min_frequency < 1:
        raise RadvisionError(f"min_frequency must be at least 1, got {min_frequency}.")
    if top_k is not None and top_k < 1:
        raise RadvisionError(f"top_k must be a positive number of concepts, got {top_k}.")
    table = read_concepts(concepts_csv, sep)
    folder = Path(image_dir).expanduser().resolve()
    ids = table["id"].tolist()
    paths, ambiguous = _image_paths(folder, ids)
    if any(not os.path.isfile(p) for p in paths):  # ROCO v1: ids name no file; its name lists do
        aliases = roco_file_names(Path(concepts_csv).expanduser().resolve().parent)
        if aliases:
            paths, ambiguous = _image_paths(folder, ids, aliases)
    if ambiguous:
        shown = "; ".join(f"{k}: {', '.join(v)}" for k, v in list(ambiguous.items())[:3])
        log.warning("%s: %d image id(s) match more than one file in %s (%s%s); each uses the least deep, then "
                    "alphabetically first one. Remove the other copies, or write the ids with their extension "
                    "(and subfolder: DRAN/ROCO_00001.png), to choose.",
                    Path(concepts_csv).name, len(ambiguous), folder, shown, "; ..." if len(ambiguous) > 3 else "")
    found = pd.DataFrame({"path": paths, "patient_id": table["id"].to_numpy(), "concepts": table["concepts"]})
    # an image not found is named as <id>.jpg, but every extension and subfolder was searched
    found = check_files(found, missing, f"concept file {Path(concepts_csv).name} (each id looked up with any image "
                        f"extension, in every subfolder of {folder})").reset_index(drop=True)
    # frequencies count the images kept: a dropped row (a header read as an id, a missing image) adds no concept
    counts = Counter(c for cs in found["concepts"] for c in set(cs))
    ranked = sorted((c for c, n in counts.items() if n >= min_frequency), key=lambda c: (-counts[c], c))
    if top_k is not None:
        ranked = ranked[:top_k]
    if not ranked:
        raise RadvisionError(f"No concept occurs in at least {min_frequency} images of {concepts_csv}.")
    _check_filtered(classes, ranked, counts, min_frequency, top_k, Path(concepts_csv).name)
    chosen = select_classes(ranked, classes, f"concept file {Path(concepts_csv).name}")
    col = {c: j for j, c in enumerate(chosen)}
    y = np.zeros((len(found), len(chosen)), dtype=np.float32)
    for i, cs in enumerate(found["concepts"]):
        for c in cs:
            j = col.get(c)
            if j is not None:
                y[i, j] = 1.0
    frame = pd.DataFrame(y, columns=chosen)
    frame.insert(0, "path", found["path"].to_numpy())
    frame["patient_id"] = found["patient_id"].to_numpy()
    frame["concepts"] = found["concepts"].map(";".join).to_numpy()
    if top_k is not None and top_k > len(counts):
        log.info("concept_top_k=%d is more than the %d concepts of %s: every concept is kept", top_k, len(counts),
                 Path(concepts_csv).name)
    log.info("ImageCLEF: %d images, %d concepts kept of %d (cardinality %.2f)", len(frame), len(chosen),
             len(counts), label_cardinality(y))
    return LabelTable(finish_frame(frame, chosen), chosen, folder)


def _check_filtered(classes: Iterable[str] | None, ranked: list[str], counts: Counter, min_frequency: int,
                    top_k: int | None, name: str) -> None:
    """Refuse a chosen concept that the file holds but the frequency filters removed, saying which filter (an
    unknown concept is left to `select_classes`, which suggests a spelling)."""
    if classes is None:
        return
    kept = set(ranked)
    removed = [c for c in ([classes] if isinstance(classes, str) else list(classes)) if c in counts and c not in kept]
    if not removed:
        return
    why = []
    for c in removed:
        n = counts[c]
        if n < min_frequency:
            why.append(f"{c!r} occurs in {n} image(s), below concept_min_frequency={min_frequency}")
        else:
            why.append(f"{c!r} occurs in {n} image(s), outside concept_top_k={top_k} (the {top_k} most frequent "
                       f"concepts occur in at least {counts[ranked[-1]]} images)")
    fixes = [f for f, used in (("lower data.concept_min_frequency (min_frequency= in Python)",
                                any(counts[c] < min_frequency for c in removed)),
                               ("raise data.concept_top_k (top_k= in Python)",
                                any(counts[c] >= min_frequency for c in removed))) if used]
    raise RadvisionError(
        f"data.classes names concept(s) of {name} that the concept filters removed: {'; '.join(why)}. "
        f"{' and '.join(fixes).capitalize()}, or leave those concepts out of data.classes.")


def label_cardinality(labels: np.ndarray | LabelTable) -> float:
    """Mean number of positive labels per image (Tsoumakas & Katakis); NaN-safe."""
    y = labels.labels() if isinstance(labels, LabelTable) else np.asarray(labels, dtype=np.float32)
    if y.size == 0:
        return float("nan")
    return float(np.nansum(y == 1, axis=1).mean())


def label_density(labels: np.ndarray | LabelTable) -> float:
    """Label cardinality divided by the number of classes."""
    y = labels.labels() if isinstance(labels, LabelTable) else np.asarray(labels, dtype=np.float32)
    if y.ndim != 2 or y.shape[1] == 0:
        return float("nan")
    return label_cardinality(y) / y.shape[1]
