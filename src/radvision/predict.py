"""Use a finished run: load it, predict probabilities for new images, score predictions, explain them.

Bad images never vanish: `predict` returns one row per input image, in input order, with an `error`
column (empty when the image was fine, NaN probabilities when it was not).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from radvision.atomic import atomic_write_csv, nearest_existing
from radvision.config import Config, load_run_config
from radvision.data.imageclef import concept_set
from radvision.data.table import META_COLUMNS as TABLE_META_COLUMNS
from radvision.data.table import canonical_split, label_share, read_csv_checked, separator_hint
from radvision.errors import RadvisionError, closest, did_you_mean, first_line, some_names
from radvision.rundir import CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE, load_weights

logger = logging.getLogger(__name__)

# CSV inputs are read as text: blank lines and empty cells stay rows of "" (one output row per input row),
# and paths keep their exact spelling
TEXT_CELLS = {"dtype": str, "keep_default_na": False, "skip_blank_lines": False}
OVERLAY_MANIFEST = "overlays.csv"  # explain: image, class, probability, overlay file

__all__ = ["evaluate_files", "explain_images", "fit_thresholds_files", "input_paths", "load_run", "predict", "predict_images", "resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise RadvisionError(f"Unknown device {str(device)!r}; use auto, cpu, cuda, cuda:N or mps.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RadvisionError(f"Device {str(device)!r} was asked for but CUDA is not available; use 'auto' or 'cpu'.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RadvisionError(f"Device {str(device)!r} was asked for but this machine has no Apple GPU (MPS); use "
                             "'auto' or 'cpu'.")
    return dev


def _thresholds_vector(loaded: Any, class_names: list[str], source: str) -> np.ndarray:
    """Thresholds in class order, whatever shape `load_thresholds` hands back (`source` names the file)."""
    if isinstance(loaded, tuple) and len(loaded) == 2:
        names, values = loaded
        loaded = dict(zip(names, np.asarray(values, dtype=float).tolist(), strict=True))
    if isinstance(loaded, dict):
        missing = [c for c in class_names if c not in loaded]
        if missing:
            raise RadvisionError(f"Thresholds file {source!r} has no threshold for class {missing[0]!r}; it has "
                                 f"{', '.join(map(repr, loaded))}.")
        return np.array([float(loaded[c]) for c in class_names])
    arr = np.asarray(loaded, dtype=float)
    if arr.shape != (len(class_names),):
        raise RadvisionError(f"Thresholds file {source!r} holds {arr.size} thresholds for {len(class_names)} "
                             "classes.")
    return arr


def read_thresholds(path: str | os.PathLike[str], class_names: list[str]) -> np.ndarray:
    """Per-class thresholds from a thresholds.json (or a run folder holding one), in `class_names` order."""
    from radvision.thresholds import load_thresholds

    if Path(path).is_dir():
        path = Path(path) / THRESHOLDS_FILE
    if not Path(path).is_file():
        raise RadvisionError(f"Thresholds file {str(path)!r} does not exist.")
    return _thresholds_vector(load_thresholds(path), class_names, str(path))


def run_thresholds(run_dir: str | os.PathLike[str], class_names: list[str]) -> np.ndarray:
    """A run's thresholds in `class_names` order; 0.5 each for a run stopped before it chose them."""
    saved = Path(run_dir) / THRESHOLDS_FILE
    return read_thresholds(saved, class_names) if saved.is_file() else np.full(len(class_names), 0.5)


def check_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The run folder as a Path, or a RadvisionError when it holds no run's config (cheap: checked first)."""
    run = Path(run_dir)
    if not (run / CONFIG_FILE).is_file():
        raise RadvisionError(f"{str(run)!r} is not a run directory (it has no {CONFIG_FILE}); pass the folder "
                             "that `radvision train` wrote.")
    return run


def load_run(run_dir: str | os.PathLike[str], device: str | torch.device | None = "cpu",
             with_thresholds: bool = True) -> tuple[torch.nn.Module, Config, list[str], np.ndarray | None]:
    """(model in eval mode, config, class names, thresholds) of a finished run; thresholds 0.5 if not chosen,
    None without `with_thresholds` (probabilities and features do not read thresholds.json, so a damaged one
    does not stop them)."""
    from radvision.train import build_model_from_config

    run = check_run_dir(run_dir)
    cfg = load_run_config(run / CONFIG_FILE)
    class_names = list(cfg.data.classes or [])
    if not class_names:
        raise RadvisionError(f"The config in {str(run)!r} lists no classes (data.classes); it was not written by a run.")
    model = build_model_from_config(cfg, class_names, pretrained=None)
    load_weights(model, run / MODEL_FILE)
    model.to(resolve_device(device)).eval()
    return model, cfg, class_names, run_thresholds(run, class_names) if with_thresholds else None


def input_paths(source: str | os.PathLike[str] | pd.DataFrame | Sequence[str],
                root: str | os.PathLike[str] | None = None, path_column: str = "path") -> list[str]:
    """Image paths to read, from a CSV with a `path` column, a folder (searched recursively for image files,
    sorted), one image file, a DataFrame or a list / Series of paths.  Relative paths start at `root`; without it, at
    the CSV's folder (and as given for a DataFrame or a list).  An empty cell gives "" (a row that fails).
    `path_column`: the table column that names each image (CheXpert's tables call it `Path`)."""
    return input_rows(source, root, path_column)[1]


def input_rows(source: str | os.PathLike[str] | pd.DataFrame | Sequence[str],
               root: str | os.PathLike[str] | None = None, path_column: str = "path"
               ) -> tuple[list[str], list[str]]:
    """(paths as the input gives them, paths to read): one entry per input row, in input order.  Outputs
    carry the first, so they join back to the input (and to gold tables keyed like it)."""
    from radvision.data.dicom import is_dicom
    from radvision.data.images import IMAGE_EXTENSIONS, image_files

    if root is not None and not Path(root).is_dir():
        raise RadvisionError(f"Root {str(root)!r} is not a folder; relative paths would start nowhere.")
    if isinstance(source, pd.DataFrame):
        if path_column not in source:
            raise RadvisionError(f"The table has no {path_column!r} column{_column_hint(source, path_column)}; "
                                 f"columns are {', '.join(map(str, source.columns))}.")
        given = _cells(source[path_column])
        return given, _under(root, [g.strip() for g in given])
    if isinstance(source, (list, tuple, pd.Series)):  # names from code are taken exactly as given
        bad = next((s for s in source if not (s is None or isinstance(s, str | os.PathLike) or pd.isna(s))), None)
        if bad is not None:
            raise RadvisionError(f"Image paths must be text or path-like; got {bad!r} ({type(bad).__name__}).")
        given = _cells(pd.Series([os.fspath(s) if isinstance(s, os.PathLike) else s for s in source], dtype=object))
        return given, _under(root, given)  # a blank (None, NaN) gives "", a row that fails as "empty path"
    if not isinstance(source, str | os.PathLike):
        raise RadvisionError(f"Cannot read images from {source!r} ({type(source).__name__}); pass a CSV with a 'path' column, "
                             "a folder, an image file, a DataFrame with a 'path' column, or a list of paths.")
    p = Path(source)
    if p.is_dir():
        paths = image_files(p)
        if not paths:
            raise RadvisionError(f"Folder {str(p)!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}).")
        return paths, paths
    if not p.is_file():
        raise RadvisionError(f"Input {str(p)!r} does not exist; pass a CSV with a 'path' column, a folder of "
                             "images or an image file.")
    if p.suffix.lower() in IMAGE_EXTENSIONS or is_dicom(p):  # PACS exports often have no extension
        return [os.fspath(source)], [str(p)]
    frame = read_csv_checked(p, **TEXT_CELLS)
    if path_column not in frame:
        nih = (" This is NIH ChestX-ray14's Data_Entry table, whose 'Image Index' holds bare file names: pass the "
               "images folder itself, or a CSV whose 'path' column names each image.") if _is_nih_table(frame) else ""
        raise RadvisionError(f"Input CSV {str(p)!r} has no {path_column!r} column{_column_hint(frame, path_column)}; "
                             f"columns are {', '.join(map(str, frame.columns))}.{nih}")
    if frame.empty:
        logger.warning("%s has a header but no rows: no image to read", p)
    given = _cells(frame[path_column])
    return given, _under(p.parent if root is None else root, [g.strip() for g in given])


def _column_hint(frame: pd.DataFrame, column: str) -> str:
    """Why the path column may be missing: a wrong separator, or a near name (CheXpert's 'Path'), which
    --path-column (path_column=) selects."""
    hint = separator_hint(frame)
    if hint:
        return hint
    name = closest(column, [c for c in map(str, frame.columns) if c != column])
    return "" if name is None else f" (did you mean {name!r}? --path-column {name} reads it; in Python, path_column={name!r})"


def _cells(column: pd.Series) -> list[str]:
    """Path cells as written (blank -> ""): outputs carry this spelling so they join back to the input; the
    file read is the cell without surrounding spaces."""
    return ["" if pd.isna(v) else str(v) for v in column]


def _under(root: str | os.PathLike[str] | None, paths: Any) -> list[str]:
    """Relative paths joined onto `root`; onto its parent instead when they start with the root's own folder name
    and only there name files (CheXpert's "CheXpert-v1.0-small/valid/..." under root CheXpert-v1.0-small, as its
    reader, and training's data.root, take it)."""
    if root is None:
        return list(paths)
    base = Path(root)
    # the folder's name as written (a linked dataset folder keeps its own); "." and ".." have none of their own
    named = base if base.name not in ("", "..") else base.resolve()
    relative = [s for s in paths if s and not os.path.isabs(s)][:20]
    if relative and all(Path(s).parts[0] == named.name for s in relative) \
            and not any((base / s).exists() for s in relative) and any((named.parent / s).exists() for s in relative):
        logger.info("the relative paths start with the root's own folder %r: they are read from %s", named.name,
                    named.parent)
        base = named.parent
    return [s if not s or os.path.isabs(s) else str(base / s) for s in paths]


class ImageFiles(Dataset):
    """Decoded, transformed images; a file that fails yields a zero tensor and its error message."""

    def __init__(self, paths: list[str], transform: Any):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        from radvision.data import load_image

        if not self.paths[i]:
            return torch.empty(0), "empty path"
        try:
            x = self.transform(load_image(self.paths[i]))
            return x, ""
        except (RadvisionError, OSError, ValueError) as exc:
            return torch.empty(0), first_line(exc)


def check_batching(batch_size: int, num_workers: int) -> None:
    """Refuse a batch size or worker count `image_loader` cannot use, before any work is done."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise RadvisionError(f"batch_size must be a positive whole number, got {batch_size!r}.")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise RadvisionError(f"num_workers must be 0 (decode in this process) or more, got {num_workers!r}.")


def image_loader(ds: Dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Batches of `ImageFiles`-style items in order; `num_workers` processes decode images (0: this one)."""
    check_batching(batch_size, num_workers)
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_images)


def collate_images(batch: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor | None, list[bool], list[str]]:
    ok = [err == "" for _, err in batch]
    good = [x for x, err in batch if err == ""]
    return (torch.stack(good) if good else None), ok, [err for _, err in batch]


def image_transform(cfg: Config) -> Any:
    """The evaluation transform of a run's config."""
    from radvision.data import build_transforms

    return build_transforms(cfg.data.transforms, cfg.data.image_size, train=False, channels=cfg.data.channels)


@torch.no_grad()
def predict(run_dir: str | os.PathLike[str], input: str | os.PathLike[str] | pd.DataFrame | Sequence[str],
            batch_size: int = 32, device: str | torch.device | None = "auto", num_workers: int = 0,
            with_labels: bool = False, root: str | os.PathLike[str] | None = None, progress: bool = False,
            path_column: str = "path") -> pd.DataFrame:
    """DataFrame: `path`, one probability column per class, (`<class>_label` 0/1 when with_labels), `error`;
    one row per input row, in input order, with a DataFrame input's own index (so `frame["A"] = out["A"]`
    lines up).  `root`: where relative paths in a CSV start (default: the CSV's folder).  `path_column`: the
    CSV / DataFrame column naming each image (the output calls it `path` whatever its name).  `num_workers`:
    processes that decode images (0: this one).  `progress`: a progress bar on stderr."""
    from tqdm.auto import tqdm

    check_batching(batch_size, num_workers)  # before the run is loaded
    dev = resolve_device(device)
    check_run_dir(run_dir)  # a wrong run folder is named before a long input is read ...
    given, paths = input_rows(input, root=root, path_column=path_column)  # ... and a bad input before the model is built
    model, cfg, class_names, thresholds = load_run(run_dir, device=dev, with_thresholds=with_labels)
    loader = image_loader(ImageFiles(paths, image_transform(cfg)), batch_size, num_workers)
    probs = np.full((len(paths), len(class_names)), np.nan, dtype=np.float32)
    errors: list[str] = []
    row = 0
    for images, ok, errs in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        if images is not None:
            out = model.probabilities(model(images.to(dev))).cpu().numpy()  # P(positive) per class
            idx = row + np.flatnonzero(ok)
            probs[idx] = out
        errors.extend(errs)
        row += len(ok)
    failed = sum(1 for e in errors if e)
    if failed:
        logger.warning("%d of %d images could not be read; their rows carry the error", failed, len(paths))
    # float64 so a CSV round trip gives back exactly these values: thresholds sit exactly on a validation score
    index = input.index if isinstance(input, pd.DataFrame) else None
    df = pd.DataFrame(probs.astype(np.float64), columns=class_names, index=index)
    df.insert(0, "path", given)
    if with_labels:
        labels = decide_labels(run_dir, cfg, probs, thresholds)
        for j, c in enumerate(class_names):
            df[f"{c}_label"] = labels[:, j]
    df["error"] = errors
    return df


def decide_labels(run_dir: str | os.PathLike[str], cfg: Config, probs: np.ndarray, thresholds: np.ndarray
                  ) -> np.ndarray:
    """0/1 labels (NaN for unread images) by the run's decision rule, as its test metrics were scored:
    thresholds, `thresholds.cardinality` over these images, `min_labels` and `top_k` per image."""
    from radvision.thresholds import decide, load_train_cardinality, rule_from_config

    t, saved = cfg.thresholds, Path(run_dir) / THRESHOLDS_FILE
    if not saved.is_file():  # a run stopped before its thresholds were chosen: load_run gave 0.5 each
        logger.warning("%s has no %s (the run did not finish); the labels use 0.5 for every class",
                       run_dir, THRESHOLDS_FILE)
    recorded = load_train_cardinality(saved)
    if t.cardinality == "train" and recorded is None:
        logger.warning("thresholds.cardinality is 'train' but %s records no train_cardinality; the thresholds "
                       "are not shifted", run_dir)
        t = dataclasses.replace(t, cardinality=None)
    labels = decide(probs, thresholds, **rule_from_config(t, recorded)).astype("float32")
    labels[np.isnan(probs).any(axis=1)] = np.nan
    return labels


# `radvision.predict` is this module once imported, so the package exports the function under this name.
predict_images = predict


def evaluate_files(pred: str | os.PathLike[str] | pd.DataFrame, gold: str | os.PathLike[str] | pd.DataFrame,
                   thresholds: str | os.PathLike[str] | None = None, split: str | None = None,
                   path_column: str = "path", concepts: bool = False) -> tuple[dict[str, float], pd.DataFrame]:
    """Score a prediction table against gold labels joined on `path`: (summary metrics, per-class table).

    `thresholds`: a thresholds.json (labels at those thresholds), or a run folder (labels by the run's whole
    decision rule, as `predict --labels` gives them); none: 0.5 for every class.  `split`: score only the gold
    rows whose `split` column holds it.  `path_column`: the column naming each image in a table that has it
    (CheXpert's gold tables call it `Path`); a table without it is joined on its `path` column.
    `concepts`: `gold` is an ImageCLEF / ROCO concept file (see `read_concepts`), matched to the predictions by
    image id (the file name without its extension).  With a concept file, or a gold table with a `concepts`
    column (`read_imageclef(...).frame`), every predicted concept is scored (1 where the image lists it, else
    0) and the summary adds `imageclef_f1`, ImageCLEF's own score, where gold concepts outside the predicted
    vocabulary count as misses."""
    from radvision.metrics import binarize, evaluate_predictions, imageclef_f1, per_class_metrics

    p, g, classes, pred_classes = _shared_classes(pred, gold, split, path_column, concepts)
    y_gold = _numeric(g, classes, "gold", allowed=(0.0, 1.0, -1.0))
    run = Path(thresholds) if thresholds is not None and (Path(thresholds) / CONFIG_FILE).is_file() else None
    run_cfg = load_run_config(run / CONFIG_FILE) if run is not None else None
    run_classes = _rule_classes(run_cfg, pred_classes) if run_cfg is not None else []
    if run is not None:
        foreign = [c for c in classes if c not in run_classes]
        if foreign:
            raise RadvisionError(
                f"--thresholds {str(run)!r}: the run has no class {', '.join(map(repr, foreign))}, which the "
                f"prediction and gold tables share, so its decision rule cannot label it; the run's classes are "
                f"{', '.join(run_cfg.data.classes or [])}. Score predictions of that run, or pass a thresholds.json.")
        rule_thresholds = run_thresholds(run, run_classes)  # 0.5 without thresholds.json, as predict --labels
    predicted = classes + [c for c in run_classes if c not in classes]
    y_pred = _numeric(p, predicted, "prediction", allowed=None)
    left = pd.DataFrame(y_gold, columns=[f"{c}_gold" for c in classes]).assign(path=g["path"].to_numpy())
    if CONCEPTS in g:  # each image's whole concept list, for the official score
        left[_GOLD_CONCEPTS] = g[CONCEPTS].to_numpy()
    right = pd.DataFrame(y_pred, columns=predicted).assign(path=p["path"].to_numpy())
    if run is not None:  # the rule (top_k, a cardinality shift) sees every predicted image, as predict --labels
        decided = decide_labels(run, run_cfg, right[run_classes].to_numpy(dtype=float), rule_thresholds)
        right = right.assign(**{f"{c}_decided": decided[:, run_classes.index(c)] for c in classes})
    y_true, y_prob, merged = _scored_rows(left, right, classes, len(g))
    thr: float | np.ndarray = 0.5
    if run is not None:
        thr = rule_thresholds[[run_classes.index(c) for c in classes]]
    elif thresholds is not None:
        thr = read_thresholds(thresholds, classes)
    labels = None
    if run is not None:
        labels = np.nan_to_num(merged[[f"{c}_decided" for c in classes]].to_numpy(dtype=float)).astype(int)
    summary = evaluate_predictions(y_true, y_prob, classes, thresholds=thr, y_pred=labels)
    summary = {k: float(v) for k, v in summary.items()
               if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}
    if _GOLD_CONCEPTS in merged:
        decided = labels if labels is not None else binarize(y_prob, thr)
        names = np.asarray(classes, dtype=object)
        summary["imageclef_f1"] = imageclef_f1([set(names[row > 0]) for row in decided],
                                               merged[_GOLD_CONCEPTS].map(concept_set).tolist())
    per_class = per_class_metrics(y_true, y_prob, classes, thresholds=thr, y_pred=labels)
    if not isinstance(per_class, pd.DataFrame):
        per_class = pd.DataFrame(per_class)
    if per_class.index.name is not None:
        per_class = per_class.reset_index()
    return summary, per_class


def fit_thresholds_files(pred: str | os.PathLike[str] | pd.DataFrame, gold: str | os.PathLike[str] | pd.DataFrame,
                         output: str | os.PathLike[str], *, min_precision: float | None = None,
                         split: str | None = None, path_column: str = "path", concepts: bool = False) -> pd.DataFrame:
    """Choose per-class F1-optimal thresholds on a labelled calibration set (a prediction table and its gold
    labels, joined on `path` as `evaluate_files` joins them) and write them to `output` as a thresholds.json.

    `min_precision`: only thresholds reaching it qualify (see `f1_optimal_thresholds`); `split`: use only
    the gold rows whose `split` column holds it; `path_column`, `concepts`: as for `evaluate_files`.  When `output` already holds thresholds (a run's own
    thresholds.json being replaced), classes the gold table does not label keep theirs, with a warning, and
    its `train_cardinality` is kept, so the run still loads and `thresholds.cardinality: train` still works;
    predicted classes the gold does not label and the file did not hold get 0.5 (a run's default).  Returns the
    per-class metrics of the calibration set at the new thresholds."""
    from radvision.metrics import per_class_metrics
    from radvision.thresholds import f1_optimal_thresholds, load_train_cardinality, save_thresholds

    p, g, classes, pred_classes = _shared_classes(pred, gold, split, path_column, concepts)
    left = pd.DataFrame(_numeric(g, classes, "gold", allowed=(0.0, 1.0, -1.0)),
                        columns=[f"{c}_gold" for c in classes]).assign(path=g["path"].to_numpy())
    right = pd.DataFrame(_numeric(p, classes, "prediction", allowed=None),
                         columns=classes).assign(path=p["path"].to_numpy())
    y_true, y_prob, _ = _scored_rows(left, right, classes, len(g))
    thr = f1_optimal_thresholds(y_true, y_prob, min_precision=min_precision, class_names=classes)
    table = dict(zip(classes, thr.tolist(), strict=True))
    kept = {c: v for c, v in _existing_thresholds(output).items() if c not in table}
    if kept:  # a run's thresholds.json must keep a threshold for every class, or the run stops loading
        logger.warning("the gold table labels %d of the classes in %s; the other %d keep their thresholds: %s",
                       len(classes), output, len(kept), ", ".join(kept))
    unset = [c for c in pred_classes if c not in table and c not in kept]
    if unset:  # a run given this file as its thresholds.json needs one per class; 0.5 is a run's own default
        logger.warning("the gold table does not label %d of the predicted classes; they get 0.5, the default of a "
                       "run without chosen thresholds: %s", len(unset), ", ".join(unset))
    cardinality = load_train_cardinality(output) if Path(output).is_file() else None
    table = kept | dict.fromkeys(unset, 0.5) | table
    save_thresholds(output, list(table), list(table.values()), train_cardinality=cardinality)
    return per_class_metrics(y_true, y_prob, classes, thresholds=thr).reset_index()


def _existing_thresholds(path: str | os.PathLike[str]) -> dict[str, float]:
    """The thresholds already in `path` (a run's own thresholds.json being replaced); {} for no file or
    a file that is not a thresholds file, which is then simply overwritten."""
    from radvision.thresholds import load_thresholds

    try:
        return load_thresholds(path) if Path(path).is_file() else {}
    except RadvisionError:
        return {}


def _is_nih_table(frame: pd.DataFrame) -> bool:
    """NIH ChestX-ray14's own Data_Entry_2017 table, which users naturally try as a gold or input table."""
    return {"Image Index", "Finding Labels"} <= set(map(str, frame.columns))


def _shared_classes(pred: str | os.PathLike[str] | pd.DataFrame, gold: str | os.PathLike[str] | pd.DataFrame,
                    split: str | None, path_column: str = "path", concepts: bool = False
                    ) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """The prediction and gold tables (gold cut to `split`), the class columns both have, and every predicted
    class column; gold columns that look like labels but have no prediction, and predicted classes the gold
    does not label, are named in a warning.  A concept gold (`concepts`, or a `concepts` column) labels every
    predicted concept."""
    p = _read_table(pred, "prediction", path_column)
    pred_classes = [c for c in p.columns if c not in META_COLUMNS and not str(c).endswith("_label")]
    if concepts and _has_concepts_column(gold):  # read_imageclef's own table: its images matched by id, as a file's
        table = gold if isinstance(gold, pd.DataFrame) else read_csv_checked(gold, **TEXT_CELLS)
        gold = pd.DataFrame({"id": table["path"].astype(str), CONCEPTS: table[CONCEPTS]})
    if concepts:
        if split is not None:
            raise RadvisionError(f"--split {split!r}: a concept file has no split column; pass the concept file of "
                                 "that split (e.g. valid_concepts.csv).")
        g = _concept_gold(gold, p)
    else:
        try:
            g = _read_table(gold, "gold", path_column)
        except RadvisionError as err:
            if isinstance(gold, pd.DataFrame) or not _looks_like_concept_file(gold):
                raise
            raise RadvisionError(f"{err} {str(gold)!r} looks like an ImageCLEF / ROCO concept file (an id and "
                                 "';'-separated CUIs per line): score against it with --concepts (concepts=True in "
                                 "Python).") from None
    if split is not None:
        if "split" not in g:
            raise RadvisionError(f"--split {split!r}: the gold table has no 'split' column; columns are "
                                 f"{', '.join(map(str, g.columns))}.")
        values, wanted = canonical_split(g["split"]), canonical_split(pd.Series([split])).iloc[0]
        if not (values == wanted).any():
            present = sorted(set(values.dropna()) - {""})
            raise RadvisionError(f"--split {split!r}: no gold row has that split; " + (
                f"the table's splits are {', '.join(present)}." if present else "the 'split' column is empty."))
        g = g[(values == wanted).to_numpy()]  # the index keeps each row's place in the file, for messages
    elif "split" in g:
        present = sorted(set(canonical_split(g["split"]).dropna()) - {""})
        if len(present) > 1:  # e.g. a gold table that also holds the training images
            logger.warning("the gold table holds the splits %s and they are scored together; --split NAME scores "
                           "one", ", ".join(present))
    for table, what in ((p, "prediction"), (g, "gold")):
        if table.empty:
            raise RadvisionError(f"The {what} table has no rows with a path; there is nothing to score.")
    if CONCEPTS in g:
        g = _label_every_concept(g, pred_classes)
    gold_classes = [c for c in g.columns if c not in META_COLUMNS and c != CONCEPTS]
    classes = [c for c in gold_classes if c in pred_classes]
    if not classes:
        raise RadvisionError(
            f"Prediction and gold tables share no class column; gold classes are {', '.join(gold_classes)}, "
            f"predicted classes are {', '.join(pred_classes)}."
        )
    unpredicted = [c for c in gold_classes if c not in classes and _label_like(g[c])]  # not a study / note column
    if len(unpredicted) == 1:
        logger.warning("gold column %r has no prediction column%s and is not scored", unpredicted[0],
                       did_you_mean(unpredicted[0], pred_classes))
    elif unpredicted:  # one line: a concept vocabulary has thousands
        logger.warning("%d gold columns have no prediction column and are not scored: %s", len(unpredicted),
                       some_names(unpredicted, 5))
    unlabelled = [c for c in pred_classes if c not in classes]
    if unlabelled:  # their false alarms are not counted: micro and samples figures cover the shared classes only
        hint = " (with an ImageCLEF / ROCO concept file as gold, --concepts scores every predicted concept)" if any(
            _CUI.fullmatch(str(c)) for c in unlabelled) else ""
        logger.warning("%d predicted class(es) have no gold column and are not scored: %s; micro and samples figures "
                       "cover the %d shared class(es)%s", len(unlabelled), some_names(unlabelled, 5), len(classes),
                       hint)
    return p, g, classes, pred_classes


CONCEPTS = "concepts"  # a concept gold's column: each image's concepts, ';'-joined
_GOLD_CONCEPTS = "_gold_concepts"


def _has_concepts_column(gold: str | os.PathLike[str] | pd.DataFrame) -> bool:
    """A gold table with `path` and `concepts` columns (as `read_imageclef(...).frame` writes), not a concept file."""
    if isinstance(gold, pd.DataFrame):
        return {"path", CONCEPTS} <= set(map(str, gold.columns))
    try:
        header = pd.read_csv(gold, nrows=0, sep=",")
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return False
    return {"path", CONCEPTS} <= {str(c).strip() for c in header.columns}


def _looks_like_concept_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file reads as concept lines whose concepts are mostly UMLS CUIs ("C0040405")."""
    from radvision.data.imageclef import read_concepts

    try:
        table = read_concepts(path)
    except (RadvisionError, OSError):
        return False
    found = [c for cs in table[CONCEPTS] for c in cs]
    return bool(found) and sum(bool(_CUI.fullmatch(c)) for c in found) >= len(found) / 2


_CUI = re.compile(r"C\d{4,}")


def _label_every_concept(g: pd.DataFrame, pred_classes: list[str]) -> pd.DataFrame:
    """A concept gold with a 0/1 column for each predicted concept it lacks: an image that does not list a
    concept is a negative for it (a held-out file lacks the concepts none of its images has)."""
    sets = g[CONCEPTS].map(concept_set)
    added = [c for c in pred_classes if c not in g]
    if not added:
        return g
    logger.info("concept gold: %d predicted concept(s) have no column and are labelled from the concept lists",
                len(added))
    columns = pd.DataFrame({c: sets.map(lambda s, c=c: float(c in s)) for c in added}, index=g.index)
    return pd.concat([g, columns], axis=1)


def _concept_gold(gold: str | os.PathLike[str] | pd.DataFrame, p: pd.DataFrame) -> pd.DataFrame:
    """A concept file (or `read_concepts`' table) as a gold table: `path` spelled as the prediction of the same
    image id (file name without extension), else the id itself, and `concepts`."""
    from radvision.data.imageclef import concept_id, read_concepts

    if isinstance(gold, pd.DataFrame):
        if not {"id", CONCEPTS} <= set(gold.columns):
            raise RadvisionError("A concept gold table needs 'id' and 'concepts' columns (as read_concepts gives); "
                                 f"columns are {', '.join(map(str, gold.columns))}.")
        table = gold
    else:
        table = read_concepts(gold)
    lists = table[CONCEPTS].map(lambda cs: ";".join(cs) if isinstance(cs, (list, tuple, set)) else cs)
    ids = table["id"].astype(str).map(concept_id)
    keys = p["path"].map(concept_id)
    for key, names, what in ((ids, table["id"].astype(str), "concept file"), (keys, p["path"], "prediction table")):
        twice = key.duplicated(keep=False)
        if twice.any():
            shown = names[key == key[twice].iloc[0]].tolist()
            raise RadvisionError(f"The {what} names image id {key[twice].iloc[0]!r} twice ({shown[0]!r} and "
                                 f"{shown[1]!r}); images are matched by file name without extension, so each "
                                 "id must appear once.")
    where = dict(zip(keys, p["path"], strict=True))
    if not ids.isin(where).any():
        raise RadvisionError(f"No image of the prediction table has an id of the concept file (ids start "
                             f"{ids.iloc[0]!r}, prediction images start {keys.iloc[0]!r}); images are matched by "
                             "file name without extension.")
    return pd.DataFrame({"path": [where.get(k, k) for k in ids], CONCEPTS: lists.to_numpy()})


def _scored_rows(left: pd.DataFrame, right: pd.DataFrame, classes: list[str], n_gold: int
                 ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Gold (`<class>_gold` columns) joined with predictions (`<class>` columns) on `path`: (y_true with
    -1 and blanks as NaN, y_prob, the joined rows), keeping only rows whose image was read."""
    merged = left.merge(right, on="path", how="inner")
    if merged.empty:  # `predict images/` writes the paths as given; a gold table often has them absolute
        merged = _merge_on_absolute_paths(left, right)
    if merged.empty:
        raise RadvisionError("No path in the prediction table matches a path in the gold table; check both 'path' "
                             f"columns (gold starts {left['path'].iloc[0]!r}, prediction {right['path'].iloc[0]!r}).")
    if len(merged) < n_gold:
        logger.warning("%d of %d gold rows have no prediction and are left out", n_gold - len(merged), n_gold)
    if len(merged) < len(right):  # images the gold (or its --split) does not label: expected with --split
        extra = right["path"][~right["path"].isin(merged["path"])]
        logger.info("%d of %d prediction rows match no gold row and are not scored (first: %r)", len(extra),
                    len(right), extra.iloc[0])
    y_true = np.array(merged[[f"{c}_gold" for c in classes]], dtype=float)  # a writable copy
    y_true[~np.isin(y_true, (0.0, 1.0))] = np.nan  # uncertain (-1) and blanks are not scored
    y_prob = merged[classes].to_numpy(dtype=float)
    blank = np.isnan(y_prob)
    partial = blank.any(axis=1) & ~blank.all(axis=1)
    if partial.any():
        i = int(np.flatnonzero(partial)[0])
        raise RadvisionError(f"The prediction row for {merged['path'].iloc[i]!r} has probabilities for some classes "
                             f"but a blank {classes[int(np.flatnonzero(blank[i])[0])]!r}; a row is either scored "
                             "for every class or blank for all (an image that could not be read).")
    scored = ~blank.all(axis=1)
    if not scored.any():
        raise RadvisionError(f"None of the {len(merged)} prediction rows that match the gold table has "
                             "probabilities (their images could not be read; see the prediction table's error "
                             "column); there is nothing to score.")
    if not scored.all():
        logger.warning("%d rows have no probabilities (failed images, first %r) and are left out",
                       int((~scored).sum()), merged["path"].iloc[int(np.flatnonzero(~scored)[0])])
        y_true, y_prob, merged = y_true[scored], y_prob[scored], merged[scored]
    return y_true, y_prob, merged


def _merge_on_absolute_paths(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """The join on each path made absolute from the current folder (text only, no file is looked at), keeping the
    prediction's spelling; empty when that matches nothing either. One image spelled two ways in a table
    ("images/a.png", "./images/a.png") is refused: it would be scored twice."""
    keys = [t["path"].map(lambda p: os.path.abspath(os.path.expanduser(str(p)))) for t in (left, right)]
    shared = set(keys[0]) & set(keys[1])
    for key, table, what in ((keys[0], left, "gold"), (keys[1], right, "prediction")):
        twice = key.duplicated(keep=False) & key.isin(shared)
        if twice.any():
            names = table["path"][key == key[twice].iloc[0]].tolist()
            raise RadvisionError(f"The {what} table spells one image two ways ({names[0]!r} and {names[1]!r}); "
                                 "list each image once, with its path written as in the other table.")
    merged = left.drop(columns="path").assign(_abs=keys[0]).merge(right.assign(_abs=keys[1]), on="_abs", how="inner")
    if not merged.empty:
        logger.info("no path is spelled alike in both tables; %d rows matched once relative paths were taken from "
                    "the current folder %s", len(merged), os.getcwd())
    return merged.drop(columns="_abs")


META_COLUMNS = {*TABLE_META_COLUMNS, "error"}  # a label table's columns that are never classes, and a status column


def _label_like(column: pd.Series) -> bool:
    """Whether every filled cell is 1, 0 or -1: a label column, as opposed to ids or notes."""
    return label_share(column) == 1.0


def _rule_classes(run_cfg: Config, pred_classes: list[str]) -> list[str]:
    """The run's classes that the prediction table has: its decision rule (top_k, cardinality) is applied over
    these, so a table missing some of them is labelled differently from `predict --labels`."""
    run_classes = list(run_cfg.data.classes or [])
    missing = [c for c in run_classes if c not in pred_classes]
    if missing:
        logger.warning("the prediction table has no column for the run's class(es) %s; the run's decision rule "
                       "is applied over the other %d classes", ", ".join(missing), len(run_classes) - len(missing))
    return [c for c in run_classes if c in pred_classes]


def _read_table(source: str | os.PathLike[str] | pd.DataFrame, what: str, path_column: str = "path"
                ) -> pd.DataFrame:
    """The table with its image column (`path_column` where it has one, else `path`) as `path`, spaces
    stripped, rows without a path dropped; duplicated paths are an error."""
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
    else:
        path = Path(source)
        if path.is_dir():
            raise RadvisionError(f"The {what} file {str(path)!r} is a folder; pass the {what} CSV file.")
        if not path.is_file():
            raise RadvisionError(f"The {what} file {str(path)!r} does not exist.")
        frame = read_csv_checked(path, **TEXT_CELLS)
    if path_column != "path" and path_column in frame:  # the named column wins over a `path` column
        frame = frame.drop(columns=["path"], errors="ignore").rename(columns={path_column: "path"})
    if "path" not in frame:
        nih = (" This is NIH ChestX-ray14's Data_Entry table (bare file names, every class in one 'Finding Labels' "
               "cell): score against it with `python examples/nih_densenet_fpn.py --score PRED.csv GOLD.csv`, or write "
               "a gold table with a 'path' column spelled as in the predictions and one 1/0 column per "
               "class.") if _is_nih_table(frame) else ""
        named = repr("path") if path_column == "path" else f"{path_column!r} or 'path'"
        raise RadvisionError(f"The {what} table has no {named} column{_column_hint(frame, path_column)}; columns "
                             f"are {', '.join(map(str, frame.columns))}.{nih}")
    # joined on the name without surrounding spaces, as predict reads it (its output keeps the input's spelling)
    frame = frame.assign(path=frame["path"].astype(str).str.strip())
    named = frame["path"] != ""  # rows of failed or empty inputs carry no path
    frame = frame[named.to_numpy()]  # the index keeps each row's place in the file, for messages
    dup = frame["path"].astype(str).duplicated()
    if dup.any():
        raise RadvisionError(f"The {what} table lists {int(dup.sum())} path(s) more than once (first: "
                             f"{frame['path'].astype(str)[dup].iloc[0]!r}); each image must appear once.")
    return frame


def _numeric(frame: pd.DataFrame, classes: list[str], what: str, allowed: tuple[float, ...] | None) -> np.ndarray:
    """Class columns as floats (blank -> NaN).  Gold values must be in `allowed`; predictions in [0, 1]."""
    out = np.empty((len(frame), len(classes)))
    for j, c in enumerate(classes):
        raw = frame[c]
        if pd.api.types.is_numeric_dtype(raw):
            values, blank = raw.to_numpy(dtype=float), raw.isna().to_numpy()
        else:  # text cells (object or pandas' string dtype): "" and whitespace are blanks
            text = raw.astype(str).str.strip()
            lower = text.str.lower()  # True / False: what pandas writes for a bool label column, which trains
            text = text.mask(lower == "true", "1").mask(lower == "false", "0")
            blank = raw.isna().to_numpy() | (text == "").to_numpy()
            values = pd.to_numeric(text.mask(blank), errors="coerce").to_numpy(dtype=float)
        bad = (np.isnan(values) & ~blank) | (
            ~np.isnan(values) & (~np.isin(values, allowed) if allowed else ((values < 0) | (values > 1))))
        if bad.any():
            valid = ", ".join(f"{v:g}" for v in allowed) + " or blank" if allowed else "a probability in [0, 1] or blank"
            shown = raw[bad].iloc[0]
            shown = repr(shown) if isinstance(shown, str) else str(shown)
            row = int(np.flatnonzero(bad)[0])
            raise RadvisionError(f"The {what} column {c!r} holds {shown} (data row {int(frame.index[row]) + 1}, "
                                 f"path {frame['path'].iloc[row]!r}); values must be {valid}.")
        out[:, j] = values
    return out


def _is_table(path: str | os.PathLike[str]) -> bool:
    """A CSV file of image paths, as `predict` takes (an image file is never one)."""
    return Path(path).suffix.lower() == ".csv" and Path(path).is_file()


def explain_images(run_dir: str | os.PathLike[str], images: Sequence[str | os.PathLike[str]],
                   out_dir: str | os.PathLike[str], classes: Sequence[str] | None = None,
                   method: str = "gradcam", path_column: str = "path") -> list[Path]:
    """Grad-CAM overlays (PNG) per image and class, named `<image stem>_<class>.png` (`<stem>_2_<class>` when
    that name is taken by an earlier image of the call); `images` may include folders and CSV tables (their
    `path_column`, relative to the table's folder, as `predict` reads them).  A missing or unreadable
    image is logged and skipped, as `predict` keeps going; none readable is an error.  `out_dir/overlays.csv` lists
    this call's overlays (image as given, class, the model's probability, overlay file).  Returns the files written."""
    from radvision.data import load_image
    from radvision.data.transforms import preset_fit
    from radvision.explain import gradcam, overlay_name, place_cam, save_overlays

    out = Path(out_dir)
    blocked = nearest_existing(out.absolute())
    if blocked is not None and not blocked.is_dir():
        raise RadvisionError(f"Output {str(out_dir)!r} cannot be used: {str(blocked)!r} is a file; explain writes "
                             f"its overlays and overlays.csv into a folder (e.g. 'explain').")
    model, cfg, class_names, _ = load_run(run_dir, device="cpu", with_thresholds=False)
    chosen = list(class_names if classes is None else [classes] if isinstance(classes, str) else classes)
    if not chosen:
        raise RadvisionError(f"No class to explain was given; name one or more of {', '.join(class_names)}, or none "
                             "for all.")
    for name in chosen:
        if name not in class_names:
            raise RadvisionError(f"Unknown class {name!r}{did_you_mean(name, class_names)}; the run's classes are "
                                 f"{', '.join(class_names)}.")
    files = [f for image in images for f in (
        input_paths(image, path_column=path_column) if Path(image).is_dir() or _is_table(image) else [str(image)])]
    transform = image_transform(cfg)
    fit = preset_fit(cfg.data.transforms)
    written: list[Path] = []
    taken: set[str] = set()  # file names written by this call, lower-cased for case-insensitive file systems
    manifest: list[dict[str, Any]] = []
    failed = 0
    for image_path in files:
        try:
            img = load_image(image_path)
        except RadvisionError as err:  # one bad file does not stop the others
            failed += 1
            logger.warning("skipping %s: %s", image_path, first_line(err))
            continue
        x = transform(img)
        with torch.no_grad():
            probs = model.probabilities(model(x.unsqueeze(0).to(next(model.parameters()).device)))[0].tolist()
        cams = {name: place_cam(cam, img.width, img.height, fit)
                for name, cam in gradcam(model, x, chosen, method=method).items()}
        stem, n = Path(image_path).stem, 1
        prefix = stem
        while any(overlay_name(prefix, c).lower() in taken for c in chosen):  # e.g. a/x.png and b/x.png
            n += 1
            prefix = f"{stem}_{n}"
        saved = save_overlays(img, cams, out_dir, prefix, taken=taken)
        written.extend(saved)
        manifest += [{"image": str(image_path), "class": name, "probability": round(probs[class_names.index(name)], 6),
                      "overlay": path.name} for name, path in zip(cams, saved, strict=True)]
    if failed and not written:
        raise RadvisionError(f"No image could be read ({failed} tried); see the warnings for each file.")
    # which overlay belongs to which input, with the model's probability: names alone lose the folder
    atomic_write_csv(pd.DataFrame(manifest, columns=["image", "class", "probability", "overlay"]),
                     Path(out_dir) / OVERLAY_MANIFEST)
    return written
