"""Training plots as PNG: loss / metric curves, ROC per class, per-class confusion matrices.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly, so nothing touches pyplot's
global state or the user's backend; every file is written atomically.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from radvision.atomic import atomic_write
from radvision.metrics import confusion_matrices

logger = logging.getLogger(__name__)

_MISSING_GLYPH = r"Glyph \d+ .* missing from font"
_warned_glyphs = False  # said once per process

CURVE_METRICS = ("mean_auroc", "macro_f1", "micro_f1", "samples_f1", "f1_macro", "f1_micro", "f1_samples")


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(fig)
    with warnings.catch_warnings(record=True) as caught:
        # class names in a script the font lacks: matplotlib warns once per character and per plot
        warnings.filterwarnings("always", message=_MISSING_GLYPH, category=UserWarning)
        written = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    glyphs = [w for w in caught if re.match(_MISSING_GLYPH, str(w.message))]
    for w in caught:
        if w not in glyphs:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    global _warned_glyphs
    if glyphs and not _warned_glyphs:
        _warned_glyphs = True
        logger.warning("the plot font (%s) lacks some characters of the class names; they show as boxes in the "
                       "plots", matplotlib.rcParams["font.family"][0])
    return written


def plot_training_curves(metrics: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Loss (train / valid) and validation metrics against epoch, from a run's metrics.csv rows."""
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_metric = fig.subplots(1, 2)
    x = metrics["epoch"] if "epoch" in metrics else np.arange(1, len(metrics) + 1)
    for col in ("train_loss", "valid_loss"):
        if col in metrics:
            ax_loss.plot(x, metrics[col], marker="o", label=col)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss")
    for col in CURVE_METRICS:
        if col in metrics and metrics[col].notna().any():
            ax_metric.plot(x, metrics[col], marker="o", label=col)
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title("Validation metrics")
    for ax in (ax_loss, ax_metric):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, max(1, n))
    return math.ceil(n / cols), cols


# One panel per class: a concept vocabulary (ImageCLEF: thousands of CUIs) took over a minute per figure and made
# PNGs 80,000 px tall, so past this many classes only those with the most positives are drawn.
MAX_PANELS = 48


def _panels(y_true: np.ndarray, class_names: Sequence[str], title: str | None) -> tuple[list[int], str | None]:
    """The class columns to draw (all, or the MAX_PANELS with the most positives, in class order) and the title,
    which says when classes were left out."""
    n = len(class_names)
    if n <= MAX_PANELS:
        return list(range(n)), title
    positives = np.nansum(np.asarray(y_true, dtype=float) == 1, axis=0)
    keep = sorted(np.argsort(-positives, kind="stable")[:MAX_PANELS].tolist())
    note = f"the {MAX_PANELS} of {n} classes with the most positives"
    return keep, f"{title}; {note}" if title else note


def plot_roc(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str], path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """One ROC panel per class; classes without both outcomes (after masking NaN) are marked undefined.
    ``title`` (e.g. "valid: 200 images") heads the figure."""
    y_true = np.asarray(y_true, dtype=float)
    y_prob = np.asarray(y_prob, dtype=float)
    shown, title = _panels(y_true, class_names, title)
    rows, cols = _grid(len(shown))
    fig = Figure(figsize=(3 * cols, 3 * rows), layout="constrained")  # no blank band under a tall figure's title
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, i in zip(axes, shown, strict=False):
        name = class_names[i]
        mask = ~np.isnan(y_true[:, i])
        t, p = y_true[mask, i], y_prob[mask, i]
        if len(np.unique(t)) < 2:
            ax.text(0.5, 0.5, "undefined\n(one class only)", ha="center", va="center", fontsize=8)
        else:
            fpr, tpr, _ = roc_curve(t, p)
            ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(t, p):.3f}")
            ax.legend(loc="lower right", fontsize=7)
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        ax.set_title(str(name), fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    for ax in axes[len(shown) :]:
        ax.set_axis_off()
    fig.supxlabel("false positive rate")
    fig.supylabel("true positive rate")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrices(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """A 2x2 confusion matrix per class (rows: truth 0/1, columns: prediction 0/1); NaN truth is skipped."""
    shown, title = _panels(y_true, class_names, title)
    y_true, y_pred = np.asarray(y_true, dtype=float)[:, shown], np.asarray(y_pred)[:, shown]
    cms = confusion_matrices(y_true, y_pred, [class_names[i] for i in shown])
    rows, cols = _grid(len(shown))
    fig = Figure(figsize=(2.6 * cols, 2.6 * rows), layout="constrained")  # titles clear the ticks above
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, cm) in zip(axes, cms.items(), strict=False):
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
        for (r, c), v in np.ndenumerate(cm):
            ax.text(c, r, str(v), ha="center", va="center", color="black" if v < max(int(cm.max()), 1) / 2 else "white")
        ax.set_xticks([0, 1], ["0", "1"])
        ax.set_yticks([0, 1], ["0", "1"])
        ax.set_title(str(name), fontsize=9)
    for ax in axes[len(shown) :]:
        ax.set_axis_off()
    fig.supxlabel("predicted")
    fig.supylabel("true")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
