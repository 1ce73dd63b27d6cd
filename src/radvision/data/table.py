"""`LabelTable`: the one contract every radvision dataset reader returns.

A table is a pandas frame with an absolute image ``path``, one float column per class (1.0 present,
0.0 absent, NaN unknown; -1.0 uncertain only under the ``U-MultiClass`` policy), a ``patient_id``
used for leak-free splits, and optional ``age``, ``sex``, ``view`` and ``split`` columns.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radvision.atomic import atomic_write_csv
from radvision.errors import RadvisionError, did_you_mean, first_line

__all__ = [
    "LabelTable",
    "POLICIES",
    "UNMENTIONED",
    "SPLITS",
    "apply_policy",
    "canonical_split",
    "check_files",
    "check_choice",
    "select_classes",
    "validate_table",
    "read_csv_checked",
]

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_SPLIT_SPELLINGS = {"validate": "valid", "validation": "valid", "val": "valid", "training": "train", "testing": "test"}
#: Uncertainty policies (Irvin et al., CheXpert, AAAI 2019) for labels coded -1.
POLICIES = ("U-Ignore", "U-Zeros", "U-Ones", "U-MultiClass")
#: what a blank (not mentioned) label becomes: NaN, masked in the loss, or 0 as most CheXpert / MIMIC code has it
UNMENTIONED = ("masked", "negative")
REQUIRED_COLUMNS = ("path", "patient_id")
# Readers that know whether an image has no finding at all (CheXpert, MIMIC-CXR, NIH) keep it in this extra
# column when "No Finding" is not a chosen class, so `downsample`'s No Finding key drops only those images,
# not the ones whose findings lie outside the chosen classes. Like the other meta columns it is never a class.
NO_FINDING_COLUMN = "source_no_finding"  # not "no_finding", which a dataset may use as a class
META_COLUMNS = ("path", "patient_id", "age", "sex", "view", "split", NO_FINDING_COLUMN)


def list_choices(choices: Sequence[object], limit: int = 20) -> str:
    """Comma-joined choices, shortened for long lists (e.g. thousands of ImageCLEF concepts)."""
    names = [str(c) for c in choices]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names)} in all)"


def check_choice(value: object, choices: Sequence[object], what: str) -> object:
    """Return ``value`` if it is one of ``choices``, else raise one sentence with a "did you mean"."""
    if value in choices:
        return value
    hint = did_you_mean(value, choices)
    raise RadvisionError(f"Unknown {what} {value!r}{hint}; valid choices: {list_choices(choices)}.")


def select_classes(available: Sequence[str], classes: Iterable[str] | None, source: str) -> list[str]:
    """Validate a user's ``classes=`` selection against the label columns a source provides."""
    if classes is None:
        return list(available)
    if isinstance(classes, str):
        classes = [classes]
    chosen = list(classes)
    if not chosen:
        raise RadvisionError(f"No classes selected for {source}; choose from: {list_choices(available)}.")
    for name in chosen:
        if name not in available:
            hint = did_you_mean(name, available)
            raise RadvisionError(
                f"Unknown label column {name!r} for {source}{hint}; valid classes: {list_choices(available)}."
            )
    if len(set(chosen)) != len(chosen):
        raise RadvisionError(f"Duplicate class names in the selection for {source}: {chosen}.")
    return chosen


def check_label_cells(raw: pd.DataFrame, source: str, hint: str = "") -> pd.DataFrame:
    """The label columns of a table as read (`raw`) as numbers, refusing a cell that is neither blank nor 1,
    0 or -1 ("1?", "Positive", 2) with its column, value and data row named: coerced, it would be read as a
    blank and train as "not mentioned" without a word."""
    coerced = raw.apply(pd.to_numeric, errors="coerce")
    bad = (coerced.notna() & ~coerced.isin([-1.0, 0.0, 1.0])) | (coerced.isna() & raw.notna())
    if bad.to_numpy().any():
        col = coerced.columns[bad.any(axis=0).to_numpy()][0]
        row = int(np.flatnonzero(bad[col].to_numpy())[0])
        cell = raw[col].iloc[row]
        shown = repr(cell) if isinstance(cell, str) else str(cell)  # 2, not np.int64(2)
        raise RadvisionError(f"Label column {col!r} in {source} holds {shown} (data row {row + 1}); labels are "
                             f"1, 0, -1 or blank.{hint}")
    return coerced


def apply_policy(values: pd.DataFrame, policy: str, unmentioned: str = "masked") -> pd.DataFrame:
    """Map uncertain labels (-1) following an uncertainty policy, and blanks following ``unmentioned``.

    U-Ignore: -1 -> NaN (masked in the loss); U-Zeros: -1 -> 0; U-Ones: -1 -> 1;
    U-MultiClass: -1 is kept as a third state for models that predict it (e.g. 3-way softmax per class).
    ``unmentioned``: "masked" keeps blanks NaN; "negative" makes them 0 (before the policy, so U-Ignore still
    masks only the uncertain labels).
    """
    check_choice(policy, POLICIES, "uncertainty policy")
    check_choice(unmentioned, UNMENTIONED, "unmentioned-label rule")
    out = values.apply(pd.to_numeric, errors="coerce").astype("float32")
    if unmentioned == "negative":
        out = out.fillna(0.0)
    uncertain = out == -1.0
    if policy == "U-Ignore":
        out = out.mask(uncertain, np.nan)
    elif policy == "U-Zeros":
        out = out.mask(uncertain, 0.0)
    elif policy == "U-Ones":
        out = out.mask(uncertain, 1.0)
    return out


def check_files(frame: pd.DataFrame, missing: str, source: str) -> pd.DataFrame:
    """Check that every ``path`` exists; ``missing`` = "raise" | "drop" | "ignore"."""
    check_choice(missing, ("raise", "drop", "ignore"), "missing-file mode")
    if missing == "ignore" or frame.empty:
        return frame
    exists = np.fromiter((os.path.isfile(p) for p in frame["path"]), dtype=bool, count=len(frame))
    n_missing = int((~exists).sum())
    if n_missing == 0:
        return frame
    row = int(np.argmin(exists))
    first = frame["path"].iloc[row]
    if not str(first).strip():
        first = f"(an empty path cell, data row {row + 1})"
    if missing == "raise":
        raise RadvisionError(
            f"Image file not found: {first} ({n_missing} of {len(frame)} files listed by {source} are missing; "
            "check the root path, or drop them with missing='drop' in Python / data.on_error=skip in a config)."
        )
    log.warning("%s: dropping %d of %d rows whose image file is missing (first: %s)", source, n_missing,
                len(frame), first)
    return frame.loc[exists].reset_index(drop=True)


@dataclass
class LabelTable:
    """Image paths + per-class labels + patient ids: what every reader returns."""

    frame: pd.DataFrame
    classes: list[str]
    root: Path | None = None

    def __post_init__(self) -> None:
        self.classes = list(self.classes)
        if self.root is not None:
            self.root = Path(self.root)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        splits = ""
        if "split" in self.frame:
            splits = ", splits=" + str(self.frame["split"].value_counts().to_dict())
        return f"LabelTable({len(self)} images, {len(self.classes)} classes, root={self.root}{splits})"

    @property
    def paths(self) -> list[str]:
        return self.frame["path"].tolist()

    def labels(self) -> np.ndarray:
        """(N, C) float32 label matrix; NaN where a label is unknown."""
        return self.frame[self.classes].to_numpy(dtype=np.float32, na_value=np.nan, copy=True)

    def subset(self, mask_or_split: str | Sequence[str] | np.ndarray | pd.Series | Sequence[bool]) -> LabelTable:
        """Rows of one split ("train"/"valid"/"test", or a list of them), a boolean mask, or integer positions."""
        frame = self.frame
        if isinstance(mask_or_split, str) or (
            isinstance(mask_or_split, list | tuple) and mask_or_split and isinstance(mask_or_split[0], str)
        ):
            names = [mask_or_split] if isinstance(mask_or_split, str) else list(mask_or_split)
            if "split" not in frame:
                raise RadvisionError(
                    "This table has no 'split' column; use radvision.data.patient_split() to make one."
                )
            present = sorted(frame["split"].dropna().unique().tolist())
            for name in names:
                check_choice(name, present or list(SPLITS), "split")
            keep = frame["split"].isin(names).to_numpy()
        else:
            arr = np.asarray(mask_or_split)
            if arr.dtype == bool:
                if arr.shape != (len(frame),):
                    raise RadvisionError(f"Boolean mask has {arr.shape} entries but the table has {len(frame)} rows.")
                keep = arr
            elif arr.size == 0 or np.issubdtype(arr.dtype, np.integer):
                return LabelTable(frame.iloc[arr.astype(int)].reset_index(drop=True), self.classes, self.root)
            else:
                raise RadvisionError("subset() takes a split name, a boolean mask or integer row positions.")
        return LabelTable(frame.loc[keep].reset_index(drop=True), self.classes, self.root)

    def select(self, classes: Iterable[str]) -> LabelTable:
        """A table with only the given label columns (meta columns are kept)."""
        chosen = select_classes(self.classes, classes, "this table")
        drop = [c for c in self.classes if c not in chosen]
        return LabelTable(self.frame.drop(columns=drop), chosen, self.root)

    def prevalence(self) -> pd.DataFrame:
        """Per class: positives, negatives, uncertain (-1), unknown (NaN) and positive rate among known."""
        y = self.labels()
        pos = (y == 1).sum(0)
        neg = (y == 0).sum(0)
        unc = (y == -1).sum(0)
        nan = np.isnan(y).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = pos / (pos + neg + unc)
        return pd.DataFrame(
            {"positive": pos, "negative": neg, "uncertain": unc, "unknown": nan, "prevalence": rate},
            index=pd.Index(self.classes, name="class"),
        )

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the frame atomically (temp file + rename)."""
        return atomic_write_csv(self.frame, path)


def validate_table(t: LabelTable) -> None:
    """Raise RadvisionError if ``t`` breaks the contract (missing columns, unknown classes, bad values)."""
    if not isinstance(t, LabelTable):
        raise RadvisionError(f"Expected a LabelTable, got {type(t).__name__}.")
    frame = t.frame
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise RadvisionError(f"Label table is missing required column(s) {missing}; it needs 'path' and 'patient_id'.")
    if not t.classes:
        raise RadvisionError("Label table has no classes; it needs at least one label column.")
    if len(set(t.classes)) != len(t.classes):
        raise RadvisionError(f"Label table lists a class twice: {t.classes}.")
    unknown = [c for c in t.classes if c not in frame.columns]
    if unknown:
        cols = [c for c in frame.columns if c not in META_COLUMNS]
        raise RadvisionError(
            f"Label table classes {unknown} have no column in the frame; label columns present: {', '.join(cols)}."
        )
    clash = [c for c in t.classes if c in META_COLUMNS]
    if clash:
        raise RadvisionError(f"Class name(s) {clash} clash with reserved columns {', '.join(META_COLUMNS)}.")
    if len(frame):
        y = t.labels()
        bad = ~(np.isnan(y) | np.isin(y, (-1.0, 0.0, 1.0)))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise RadvisionError(
                f"Label column {t.classes[c]!r} holds {float(y[r, c]):g} (row {r}); labels must be 1, 0, -1 or blank."
            )
        if frame["path"].isna().any():
            raise RadvisionError("Label table has rows with an empty 'path'.")
        require_patient_ids(frame)
    if "split" in frame:
        bad_split = sorted(set(frame["split"].dropna().unique()) - set(SPLITS))
        if bad_split:
            raise RadvisionError(f"Unknown split value(s) {bad_split}; valid splits: {', '.join(SPLITS)}.")


def require_patient_ids(frame: pd.DataFrame) -> None:
    """Refuse a hand-built table whose patient_id has blanks (the readers give such images their own id)."""
    no_patient = frame["patient_id"].isna().to_numpy()
    if no_patient.any():
        raise RadvisionError(f"Label table has {int(no_patient.sum())} row(s) with no 'patient_id' (first: row "
                             f"{int(np.flatnonzero(no_patient)[0])}); give such an image its own id (its path) so "
                             "the patient-level split can place it.")


def named_file(name: str | os.PathLike, *folders: Path) -> Path | None:
    """A label file a config names (``data.csv``): as given (absolute, or from the working directory), else in
    each of ``folders`` in turn; None when none holds it."""
    given = Path(name).expanduser()
    candidates = [given] if given.is_absolute() else [given, *(folder / given for folder in folders)]
    return next((c for c in candidates if c.is_file()), None)


def read_csv_checked(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """`pd.read_csv`, but a file that is not CSV text (an image, a binary, a broken quote) gives an error
    that names it instead of a pandas traceback."""
    try:
        frame = pd.read_csv(path, **kwargs)
        if isinstance(path, (str, os.PathLike)) and kwargs.get("header", "infer") == "infer" and "names" not in kwargs:
            _refuse_repeated_header(path, kwargs)
        return frame
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = first_line(exc)
        raise RadvisionError(f"{str(path)!r} is not a readable CSV file ({reason}).") from None


def _refuse_repeated_header(path: str | os.PathLike, kwargs: dict) -> None:
    """pandas renames a repeated header 'A' to 'A.1' without a word: read the header row as written (with the
    caller's separator, skipped rows, encoding ...) and refuse a name given twice.  Blank names are not names."""
    options = {k: v for k, v in kwargs.items() if k not in ("dtype", "usecols", "index_col", "converters", "nrows")}
    if options.get("sep", ",") is None and options.get("delimiter") is None:
        options.setdefault("engine", "python")  # separator sniffing, as the caller's read did
    options.update(header=None, nrows=1, dtype=str, keep_default_na=False)
    names = [str(h).strip() for h in pd.read_csv(path, **options).iloc[0].tolist()]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise RadvisionError(f"{str(path)!r} names the column {name!r} more than once; give each column its own "
                                 "name.")
        seen.add(name)


def canonical_split(values: pd.Series) -> pd.Series:
    """Split names as every reader (and `evaluate --split`) reads them: trimmed, lower case, val / validate /
    validation -> valid, training -> train, testing -> test (as split folders are named); missing stays NaN
    (object dtype, so comparisons give plain booleans)."""
    s = values.astype("string").str.strip().str.lower().replace(_SPLIT_SPELLINGS)
    return s.astype(object).where(s.notna(), np.nan)


def label_share(column: pd.Series) -> float:
    """The share of a column's filled cells (blank and spaces aside) that read as 1, 0 or -1; NaN when none is
    filled. 1.0 is a label column; most but not all is a label column with stray cells."""
    text = column.astype(str).str.strip()
    filled = text[(text != "") & column.notna().to_numpy()]
    if filled.empty:
        return float("nan")
    return float(pd.to_numeric(filled, errors="coerce").isin([1.0, 0.0, -1.0]).mean())


def keep_split(frame: pd.DataFrame, split: str, source: str) -> pd.DataFrame:
    """The rows of one split ("train" | "valid" | "test"); a split the table does not define is an error that
    names the splits it has, not an empty table that fails later."""
    check_choice(split, SPLITS, "split")
    if "split" not in frame:
        raise RadvisionError(f"{source} defines no splits; read it without split=.")
    kept = frame[frame["split"] == split]
    if kept.empty:
        present = [s for s in SPLITS if (frame["split"] == s).any()]
        carve = " (training carves valid out of train by patient)" if split == "valid" and "train" in present else ""
        raise RadvisionError(f"{source} has no {split!r} rows; its splits are "
                             f"{', '.join(present) or 'none'}{carve}.")
    return kept


def separator_hint(frame: pd.DataFrame) -> str:
    """' (... not comma-separated ...)' when a table read as CSV came back as one column holding tabs or ';'."""
    if len(frame.columns) == 1:
        only = str(frame.columns[0])
        for char, name in (("\t", "tab"), (";", "semicolon")):
            if char in only:
                return f" (the file looks {name}-separated; save it as comma-separated CSV)"
    return ""


def patient_ids(values: pd.Series, images: Sequence[str], source: str) -> np.ndarray:
    """A patient column as text ids.  A blank id makes its image its own patient (with a warning), as a table
    without a patient column does: NaN would break the patient split, and "nan" would pool strangers."""
    if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
        values = values.astype("Int64")  # a blank cell turned the column to float: 12.0 is patient "12"
    ids = values.astype("string").str.strip()
    blank = (ids.isna() | ids.eq("")).to_numpy()
    if blank.any():
        first = int(np.flatnonzero(blank)[0])
        log.warning("%s: %d image(s) have no patient id (first: data row %d); each counts as its own patient, so "
                    "the patient-level split cannot keep them with the patient's other images", source,
                    int(blank.sum()), first + 1)
    out = ids.astype(object).to_numpy(copy=True)
    out[blank] = np.asarray(images, dtype=object)[blank]
    return out


def no_finding_beside_findings(no_finding: pd.Series, findings: pd.DataFrame) -> pd.Series:
    """CheXpert-style tables (CheXpert's own, radlabel's output) leave "No Finding" blank where a finding is
    present or uncertain: it is 0 there, not unknown.  `findings` are the label columns that count (a
    "Support Devices" column among them is ignored: a device is not a finding)."""
    found = findings.drop(columns=["Support Devices"], errors="ignore").apply(pd.to_numeric, errors="coerce")
    no_finding = pd.to_numeric(no_finding, errors="coerce").astype(float)
    return no_finding.mask(no_finding.isna() & found.isin([1.0, -1.0]).any(axis=1), 0.0)


def finish_frame(frame: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Order columns as the contract lists them: path, classes, patient_id, then optional meta, then extras."""
    head = ["path", *classes, "patient_id"]
    meta = [c for c in ("age", "sex", "view", "split") if c in frame.columns]
    rest = [c for c in frame.columns if c not in head and c not in meta]
    out = frame[head + meta + rest].reset_index(drop=True)
    out["path"] = out["path"].astype(str)
    out["patient_id"] = out["patient_id"].astype(str)
    if "age" in out:
        out["age"] = pd.to_numeric(out["age"], errors="coerce").astype("float32")
    for c in classes:
        out[c] = out[c].astype("float32")
    return out.copy()  # one block per dtype again: columns set one by one leave 100+ blocks for 100+ classes


def normalize_sex(values: pd.Series) -> pd.Series:
    """Map the sexes that sources spell differently (Male/M/male, Female/F) onto "M"/"F"; others -> NaN."""
    mapping = {"m": "M", "male": "M", "f": "F", "female": "F"}
    return values.astype("string").str.strip().str.lower().map(mapping).astype(object)
