"""Labeler evaluation in the style of the CheXpert paper (Irvin et al., 2019).

For every class, precision / recall / F1 of four tasks:
  positive   - rows labelled 1 (positive mention)
  negative   - rows labelled 0 (negative mention)
  uncertain  - rows labelled -1 (uncertain mention)
  binary     - 1 or -1 counted as positive, 0 and blank as negative (the image-training target)
plus micro and macro averages over classes. Blank (NaN) is "not mentioned" and counts as "not this
value" for the mention tasks. Computed with numpy/pandas so the radlabel core needs no scikit-learn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from radlabel.errors import RadlabelError
from radlabel.io import missing_column_error

logger = logging.getLogger(__name__)

TASKS = {"positive": (1.0,), "negative": (0.0,), "uncertain": (-1.0,), "binary": (1.0, -1.0)}
VALID_VALUES = {1.0, 0.0, -1.0}


def _scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; NaN when the class never occurs in gold nor prediction, else 0 for 0/0."""
    if tp + fp + fn == 0:
        return float("nan"), float("nan"), float("nan")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


_BLANK_WORDS = frozenset({"", "nan", "na", "n/a", "none", "null"})  # how tables spell an empty cell


def label_values(frame: pd.DataFrame, classes: Sequence[str], name: str) -> np.ndarray:
    """The label cells of `classes` as floats (1, 0, -1, NaN for blank), whatever the file type gave: text from a
    CSV, nullable integers from Parquet. Any other value ("positive", 2) is a RadlabelError naming it."""
    out = np.full((len(frame), len(classes)), np.nan)
    for j, c in enumerate(classes):
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        else:
            text = col.astype("string").str.strip()
            blank = text.isna() | text.str.lower().isin(_BLANK_WORDS)
            values = pd.to_numeric(text.where(~blank), errors="coerce").to_numpy(dtype=float)
            unread = ~blank.to_numpy(dtype=bool) & np.isnan(values)
            if unread.any():
                raise RadlabelError(f"{name} have the value {text[unread].iloc[0]!r} in column {c!r}; valid values "
                                    "are 1, 0, -1 or blank.")
        bad = ~np.isnan(values) & ~np.isin(values, list(VALID_VALUES))
        if bad.any():
            raise RadlabelError(f"{name} have the value {float(values[bad][0]):g} in column {c!r}; valid values are "
                                "1, 0, -1 or blank.")
        out[:, j] = values
    return out



def _label_cells(column: pd.Series) -> np.ndarray | None:
    """The column's cells as label values (NaN for blank), or None when one holds something else (a split, a note,
    an id)."""
    try:
        return label_values(column.to_frame(), [column.name], "")[:, 0]
    except RadlabelError:
        return None


def _label_like(column: pd.Series) -> bool:
    """Whether every filled cell is 1, 0 or -1 and one is filled (a label column, not ids or notes)."""
    cells = _label_cells(column)
    return cells is not None and bool((~np.isnan(cells)).any())


def _align(pred: pd.DataFrame, gold: pd.DataFrame, id_column: str | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    for frame, name in ((pred, "predictions"), (gold, "gold")):
        if frame.empty:  # a header alone (or nothing) would score as a table of NaN
            raise RadlabelError(f"The {name} table has no rows; nothing to evaluate.")
    id_column = id_column or str(gold.columns[0])
    for frame, name in ((pred, "predictions"), (gold, "gold")):
        if id_column not in frame.columns:
            err = missing_column_error(id_column, list(frame.columns), f"the {name}")
            raise RadlabelError(f"{err} The ids are joined on gold's first column unless --id-column (id_column=) "
                                "names another; both files must call it the same.")
        if frame[id_column].isna().any():
            row = int(frame[id_column].isna().to_numpy().argmax())
            raise RadlabelError(f"The {name} have a blank id in column {id_column!r} (data row {row + 1}); "
                                "every row needs an id to be joined on.")
        dup = frame[id_column][frame[id_column].duplicated()]
        if len(dup):
            raise RadlabelError(f"The {name} repeat id {dup.iloc[0]!r} in column {id_column!r}; ids must be unique.")
    # Compare ids as strings so "7" from a CSV matches 7 from a parquet file.
    p = pred.set_index(pred[id_column].astype(str))
    g = gold.set_index(gold[id_column].astype(str))
    missing = g.index.difference(p.index)
    if len(missing):
        raise RadlabelError(
            f"{len(missing)} gold id(s) have no prediction (e.g. {missing[0]!r}); "
            f"label every gold report, or keep only the gold rows whose ids were labelled."
        )
    extra = p.index.difference(g.index)
    if len(extra):
        logger.info("ignoring %d predicted ids that are not in the gold", len(extra))
    return p.loc[g.index], g, id_column


def evaluate(
    pred: pd.DataFrame,
    gold: pd.DataFrame,
    id_column: str | None = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Score predicted labels against gold labels, joined on `id_column`.

    `id_column` defaults to the first column of `gold`; `classes` defaults to the class columns the two
    tables share (everything but the id and `error`). Returns a long table with one row per
    (class, task), plus `micro avg` and `macro avg` rows per task: columns class, task, precision,
    recall, f1, support (gold count), tp, fp, fn. Macro averages skip classes with nothing to score.
    """
    pred_a, gold_a, id_column = _align(pred, gold, id_column)
    if classes is None:
        skip = {id_column, "error"}
        shared = [c for c in gold.columns if c not in skip and c in pred.columns]
        # a column both tables fill with other values (split, a note) is not a class; one that only one table
        # fills so is still scored, and refused below naming the odd value
        others = [c for c in shared if _label_cells(gold[c]) is None and _label_cells(pred[c]) is None]
        if others:
            logger.info("not scoring the shared column(s) %s: they hold values other than 1, 0, -1 or blank",
                        ", ".join(map(repr, others)))
        classes = [c for c in shared if c not in others]
        if not classes:
            raise RadlabelError(
                f"Predictions and gold share no class columns (gold has {', '.join(map(str, gold.columns))})."
            )
        for c in gold.columns:  # a misspelt class would drop out unseen; ids / notes / splits are not classes
            if c not in skip and c not in pred.columns and _label_like(gold[c]):
                logger.warning("gold column %r has no prediction column and is not scored", c)
    classes = list(classes)
    for frame, name in ((pred_a, "predictions"), (gold_a, "gold")):
        for c in classes:
            if c not in frame.columns:
                    raise missing_column_error(c, [x for x in frame.columns if x != id_column], f"the {name}")
    p = label_values(pred_a, classes, "The predictions")
    g = label_values(gold_a, classes, "The gold labels")
    rows = []
    for task, positives in TASKS.items():
        pp, gg = np.isin(p, positives), np.isin(g, positives)
        tp = (pp & gg).sum(axis=0)
        fp = (pp & ~gg).sum(axis=0)
        fn = (~pp & gg).sum(axis=0)
        task_rows = []
        for i, c in enumerate(classes):
            prec, rec, f1 = _scores(int(tp[i]), int(fp[i]), int(fn[i]))
            task_rows.append(dict(cls=c, task=task, precision=prec, recall=rec, f1=f1,
                                  support=int(gg[:, i].sum()), tp=int(tp[i]), fp=int(fp[i]), fn=int(fn[i])))
        micro = _scores(int(tp.sum()), int(fp.sum()), int(fn.sum()))
        scored = pd.DataFrame(task_rows)
        rows += task_rows
        rows.append(dict(cls="micro avg", task=task, precision=micro[0], recall=micro[1], f1=micro[2],
                         support=int(gg.sum()), tp=int(tp.sum()), fp=int(fp.sum()), fn=int(fn.sum())))
        rows.append(dict(cls="macro avg", task=task, precision=scored.precision.mean(), recall=scored.recall.mean(),
                         f1=scored.f1.mean(), support=int(gg.sum()), tp=int(tp.sum()), fp=int(fp.sum()),
                         fn=int(fn.sum())))
    return pd.DataFrame(rows).rename(columns={"cls": "class"})


def summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """F1 per class (rows) and task (columns) from `evaluate`'s long table, for printing."""
    table = metrics.pivot(index="class", columns="task", values="f1")
    order = list(dict.fromkeys(metrics["class"]))
    return table.reindex(index=order, columns=list(TASKS))
