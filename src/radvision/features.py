"""Pooled backbone features, computed once and cached on disk, so fusion models train in seconds.

`.npy` holds the (N, F) float32 matrix; `.parquet` holds `path`, columns `f0..f{F-1}` and `error`. Beside
either sits `<name>.meta.json`: the key the features were made for (image paths in order, a digest of the
backbone's weights, the image transform) and the rows that failed. A cache is read back only when its key
matches the call exactly; anything else, a cache without a key included, is recomputed.

Bad rows never vanish: with ``on_error="skip"`` an unreadable image keeps its row, as NaN features, and
its error is logged, kept in the parquet `error` column and in the sidecar.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from radvision.atomic import atomic_write, atomic_write_text, nearest_existing
from radvision.errors import RadvisionError, first_line

logger = logging.getLogger(__name__)

__all__ = ["extract_features", "pooled_features", "read_features"]

FORMATS = (".npy", ".parquet")
ON_ERROR = ("raise", "skip")
# Bump when the features computed for the same key change (pooling, dtype ...): old caches are then rebuilt.
KEY_VERSION = 1
_ACCEPTED = ("a LabelTable, a torch Dataset, a DataFrame with a 'path' column, a list of image paths, "
             "a folder of images or a CSV file with a 'path' column")


def pooled_features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, F) pooled backbone features of an ImageClassifier (or of a bare backbone)."""
    backbone = getattr(model, "backbone", model)
    if hasattr(backbone, "forward_pooled"):
        feats = backbone.forward_pooled(images)
    else:
        feats = backbone(images)
    if isinstance(feats, (list, tuple)):  # multi-scale maps (FPN backbones): pool the last
        feats = feats[-1]
    if feats.dim() == 4:
        feats = torch.nn.functional.adaptive_avg_pool2d(feats, 1).flatten(1)
    return feats.flatten(1)


def _check_out(out_path: str | os.PathLike[str] | None) -> Path | None:
    if out_path is None:
        return None
    p = Path(out_path)
    if p.suffix.lower() not in FORMATS:
        raise RadvisionError(f"Feature file {str(p)!r} must end in {' or '.join(FORMATS)}.")
    blocked = nearest_existing(p)
    if blocked is not None and (blocked == p and p.is_dir() or blocked != p and not blocked.is_dir()):
        what = "is a folder" if blocked == p else f"lies under {str(blocked)!r}, a file"
        raise RadvisionError(f"Feature file {str(p)!r} {what}; give a file path such as features.parquet.")
    return p


_FEATURE_COLUMN = re.compile(r"f\d+")


def _refuse_foreign_file(out: Path) -> None:
    """An existing output that is not a feature file (a label table given as -o by mistake) is refused rather
    than replaced: the cache rebuilds only files of its own shape, a 2-D float array or f0.. columns."""
    if out.stat().st_size == 0:  # an empty placeholder (mktemp, NamedTemporaryFile): nothing to lose
        return
    try:
        if out.suffix.lower() == ".npy":
            array = np.load(out, mmap_mode="r", allow_pickle=False)
            ours = array.ndim == 2 and array.dtype.kind == "f"
        else:
            import pyarrow.parquet as pq

            names = pq.read_schema(out).names
            features = [n for n in names if _FEATURE_COLUMN.fullmatch(n)]
            ours = bool(features) and len(features) + sum(n in ("path", "error") for n in names) == len(names)
    except Exception:  # unreadable as .npy / parquet: not ours either
        ours = False
    if not ours:
        raise RadvisionError(f"{str(out)!r} exists and is not a feature file written by radvision features; "
                             "give another output path, or pass overwrite=True (--overwrite) to replace it.")


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a handle: np.save would append ".npy" to the temp file's name
        np.save(fh, array)


def read_features(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str] | None]:
    """(features, paths or None) from a cache written by `extract_features`; failed rows are NaN."""
    p = _check_out(path)
    assert p is not None
    if not p.is_file():
        raise RadvisionError(f"Feature file {str(p)!r} does not exist.")
    if p.suffix.lower() == ".npy":
        return np.load(p, allow_pickle=False), None
    frame = pd.read_parquet(p)
    cols = [c for c in frame.columns if c not in ("path", "error")]
    paths = frame["path"].astype(str).tolist() if "path" in frame else None
    return frame[cols].to_numpy(dtype=np.float32), paths


# ---------------------------------------------------------------------------------------------- inputs


class _Guarded(Dataset):
    """A user's Dataset as (image, error) items, the shape `radvision.predict` batches; with `catch`, an
    unreadable item becomes an error message instead of an exception, so its row can be kept."""

    def __init__(self, dataset: Dataset, catch: bool):
        self.dataset, self.catch = dataset, catch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            item = self.dataset[i]
        except (RadvisionError, OSError, ValueError) as exc:
            if not self.catch:
                raise
            return torch.empty(0), first_line(exc)
        return (item[0] if isinstance(item, (list, tuple)) else item), ""


def _image_paths(data: Any, root: str | os.PathLike[str] | None, path_column: str = "path"
                 ) -> tuple[list[str], list[str]] | None:
    """(paths as the input gives them, paths to read) for the path-like inputs (parsed by
    `radvision.predict.input_rows`, as `radvision predict` does); None for anything else."""
    from radvision.data import LabelTable
    from radvision.predict import input_rows

    if isinstance(data, LabelTable):
        paths = [str(p) for p in data.paths]
        return paths, paths
    if isinstance(data, (list, tuple)):
        if not all(isinstance(p, (str, os.PathLike)) for p in data):
            return None
        return input_rows([os.fspath(p) for p in data], root=root)
    if isinstance(data, (pd.DataFrame, str, os.PathLike)):
        return input_rows(data, root=root, path_column=path_column)
    return None


def _image_source(data: Any, transform: Any, on_error: str, root: str | os.PathLike[str] | None,
                  path_column: str = "path") -> tuple[Dataset, list[str] | None, list[str] | None]:
    """(dataset of (image, error) items, image paths to read, paths as the input gives them); the paths are
    None when the input does not say.  Outputs carry the given paths, so they join back to the input."""
    from radvision.predict import ImageFiles

    if isinstance(data, Dataset):
        table = getattr(data, "table", None)
        paths = [str(p) for p in table.paths] if table is not None and hasattr(table, "paths") else None
        return _Guarded(data, catch=on_error == "skip"), paths, paths
    rows = _image_paths(data, root, path_column)
    if rows is None:
        raise RadvisionError(f"extract_features takes {_ACCEPTED}; got {type(data).__name__}.")
    if transform is None:
        raise RadvisionError("extract_features needs a transform (or a run directory) to read image files.")
    given, paths = rows
    return ImageFiles(paths, transform), paths, given


def _raise_if_missing(paths: list[str]) -> None:
    """Fail before any work, naming the way to keep going."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        first = f"an empty path (row {paths.index(missing[0]) + 1} of the input)" if not missing[0] else missing[0]
        raise RadvisionError(f"Image file not found: {first} ({len(missing)} of {len(paths)} missing; pass "
                             "on_error='skip' (radvision features --skip-errors) to keep their rows as NaN features "
                             "with the error recorded).")


# ------------------------------------------------------------------------------------------- cache key


def _model_digest(model: torch.nn.Module) -> str:
    """sha256 of the backbone's class, weights and buffers: the pooled features depend on nothing else of
    the model (the head is not used), and content, unlike a file's name or mtime, also covers in-memory
    models and copied run directories."""
    backbone = getattr(model, "backbone", model)
    h = hashlib.sha256(type(backbone).__qualname__.encode())
    for name, tensor in _digest_items(backbone):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)};".encode())
        h.update(t.view(torch.uint8).numpy())  # raw bytes; a uint8 view also works for bfloat16
    return h.hexdigest()


def _digest_items(backbone: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The backbone's state dict laid out as caches were keyed until the Grad-CAM layer stopped being registered
    twice: each Backbone's entries followed by that layer's tensors again under ``cam_layer.``, and a
    MultiBackbone's first layer once more at the end, so the caches written then still match."""
    from radvision.backbones import Backbone, MultiBackbone

    def alias(b: torch.nn.Module, prefix: str) -> list[tuple[str, torch.Tensor]]:
        return [(f"{prefix}cam_layer.{k}", v) for k, v in b.cam_layer.state_dict().items()]

    if isinstance(backbone, MultiBackbone):
        items = [(f"backbones.{i}.{k}", v) for i, b in enumerate(backbone.backbones) for k, v in _digest_items(b)]
        return items + alias(backbone, "")
    if isinstance(backbone, Backbone):
        return [*backbone.state_dict().items(), *alias(backbone, "")]
    return list(backbone.state_dict().items())


def _input_settings(ds: Dataset, transform: Any) -> str | None:
    """What, besides paths and weights, shapes the features: the transform (for a Dataset, its own and its
    pixel cache's size). None when that has no stable description (a repr with a memory address, e.g. a
    lambda): such a cache cannot be told apart from another one, so it is never reused."""
    if isinstance(ds, _Guarded):
        inner = ds.dataset
        parts = [type(inner).__name__, f"transform={getattr(inner, 'transform', None)!r}"]
        cache = getattr(inner, "cache", None)
        if cache is not None:
            parts.append("cache=" + ", ".join(f"{a}={getattr(cache, a, None)}" for a in
                                              ("cache_dir", "size", "channels", "fit", "scaling")))
        text = "; ".join(parts)
    else:
        text = repr(transform)
    return None if re.search(r" at 0x[0-9a-fA-F]+", text) else text


def _paths_digest(paths: list[str] | None) -> str | None:
    if paths is None:
        return None
    # absolute, so the same files from another working folder match; an empty path stays empty (not ".")
    return hashlib.sha256("\n".join(os.path.abspath(p) if p else "" for p in paths).encode()).hexdigest()


def _cache_key(model: torch.nn.Module, ds: Dataset, paths: list[str] | None, transform: Any) -> dict[str, Any]:
    return {"version": KEY_VERSION, "rows": len(ds), "paths": _paths_digest(paths),  # type: ignore[arg-type]
            "model": _model_digest(model), "input": _input_settings(ds, transform)}


def _meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def computed_at(out: str | os.PathLike[str]) -> int | None:
    """When the features in cache file `out` were computed (ns since the epoch, from its sidecar), or None: a
    reuse keeps it, so a caller can tell a reused cache from a new one."""
    meta = _read_meta(Path(out)) if Path(out).is_file() else None
    value = meta.get("computed_ns") if meta else None
    return value if isinstance(value, int) else None


def _file_stamp(path: Path) -> dict[str, Any]:
    """Size, mtime and content digest of the feature file, kept in its sidecar: a feature file replaced by
    anything else (an older radvision, another run) no longer matches its key, while a copy (cp, rsync) does."""
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(path)}


def _same_file(path: Path, stamp: Any) -> bool:
    """Whether `path` is the file `stamp` describes: size and mtime unchanged (no need to read it), or else
    the same content (a copy has a new mtime)."""
    if not isinstance(stamp, dict):
        return False
    st = path.stat()
    if stamp.get("bytes") != st.st_size:
        return False
    return stamp.get("mtime_ns") == st.st_mtime_ns or stamp.get("sha256") == _sha256(path)


def _read_meta(out: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(_meta_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


_KEY_FIELDS = (("version", "it was written by another radvision version"), ("rows", "the number of images differs"),
               ("paths", "the image paths differ"), ("model", "the backbone weights differ"),
               ("input", "the image transform differs"))


def _stale_reason(out: Path, meta: dict[str, Any] | None, key: dict[str, Any], on_error: str) -> str | None:
    """Why the cache at `out` (with sidecar `meta`) cannot serve `key`; None when it can."""
    if key["paths"] is None:
        return "the input does not say which image files it reads, so the cache cannot be checked"
    if key["input"] is None:
        return "the transform has no stable description (its repr names a memory address)"
    if meta is None:
        return "it has no key (written by an older radvision, or the write was interrupted)"
    if not _same_file(out, meta.get("file")):
        return "the feature file changed after its key was written"
    cached_key = meta.get("key") or {}
    for field, why in _KEY_FIELDS:
        if cached_key.get(field) != key[field]:
            return why
    if meta.get("errors") and on_error == "raise":
        return f"{len(meta['errors'])} image(s) failed when it was written and on_error='raise'"
    return None


def _cached(out: Path, key: dict[str, Any], on_error: str
            ) -> tuple[np.ndarray, list[str] | None, dict[str, Any]] | None:
    """(features, stored paths, sidecar) when `out` was written for exactly `key`; None otherwise (logged,
    with why)."""
    if not out.is_file():
        logger.info("Building feature cache %s", out)
        return None
    meta = _read_meta(out)
    reason = _stale_reason(out, meta, key, on_error)
    if reason is not None:
        logger.info("Rebuilding feature cache %s: %s", out, reason)
        return None
    feats, stored = read_features(out)
    logger.info("Reusing feature cache %s: %d rows for the same images, backbone weights and transform", out,
                len(feats))
    errors = meta.get("errors") or {}  # type: ignore[union-attr]
    if errors:
        first = next(iter(errors.items()))
        logger.warning("%d cached rows have no features (first: row %s: %s); pass overwrite=True (--overwrite) to retry them",
                       len(errors), *first)
    return feats, stored, meta  # type: ignore[return-value]


def _respell_paths(out: Path, given: list[str], meta: dict[str, Any]) -> None:
    """A reused .parquet cache gets this call's spelling of the paths (the same files, e.g. relative instead of
    absolute), so it joins back to this input; the features and key stay as they are."""
    frame = pd.read_parquet(out)
    frame["path"] = list(given)
    atomic_write(out, lambda tmp: frame.to_parquet(tmp, index=False))
    meta["file"] = _file_stamp(out)  # the sidecar's file stamp follows the rewritten file
    atomic_write_text(_meta_path(out), json.dumps(meta, indent=1) + "\n")


def _write_cache(out: Path, feats: np.ndarray, paths: list[str] | None, errors: list[str],
                 key: dict[str, Any]) -> None:
    # The old key goes first: if this write dies half way, the new features never sit beside an old key.
    _meta_path(out).unlink(missing_ok=True)
    if out.suffix.lower() == ".npy":
        atomic_write(out, lambda tmp: _save_npy(tmp, feats))
    else:
        frame = pd.DataFrame(feats, columns=[f"f{i}" for i in range(feats.shape[1])])
        if paths is not None:
            frame.insert(0, "path", paths)
        frame["error"] = errors
        atomic_write(out, lambda tmp: frame.to_parquet(tmp, index=False))
    meta = {"key": key, "file": _file_stamp(out), "errors": {str(i): e for i, e in enumerate(errors) if e},
            "computed_ns": time.time_ns()}  # kept when a reuse only respells the paths
    atomic_write_text(_meta_path(out), json.dumps(meta, indent=1) + "\n")
    logger.info("Wrote %s features to %s", feats.shape, out)


# ---------------------------------------------------------------------------------------------- compute


def _compute(model: torch.nn.Module, loader: DataLoader, paths: list[str] | None, dev: torch.device,
             on_error: str, progress: bool) -> tuple[np.ndarray, list[str]]:
    """(N, F) features, NaN where an image failed, and one error message per row ("" when fine)."""
    from tqdm.auto import tqdm

    n = len(loader.dataset)  # type: ignore[arg-type]
    feats: np.ndarray | None = None
    errors: list[str] = []
    for images, ok, errs in tqdm(loader, desc="features", disable=not progress, leave=False):
        row = len(errors)
        if on_error == "raise" and not all(ok):
            i = row + ok.index(False)
            # the image error names the file already; only a row number is added when no path is known
            where = "" if paths is not None else f"row {i}: "
            raise RadvisionError(f"{where}{errs[i - row].rstrip('.')} (pass on_error='skip', or --skip-errors, to "
                                 "keep its row as NaN features with the error recorded).")
        if images is not None:
            out = pooled_features(model, images.to(dev)).float().cpu().numpy()
            if feats is None:  # the width is known from the first readable batch
                feats = np.full((n, out.shape[1]), np.nan, dtype=np.float32)
            feats[row + np.flatnonzero(ok)] = out
        errors.extend(errs)
    if feats is None:  # nothing readable (or no rows): the backbone's width, if it says
        width = int(getattr(getattr(model, "backbone", model), "num_features", 0))
        feats = np.full((n, width), np.nan, dtype=np.float32)
    return feats, errors


def _log_failures(errors: list[str], paths: list[str] | None) -> None:
    failed = [i for i, e in enumerate(errors) if e]
    if failed:
        i = failed[0]
        where = paths[i] if paths is not None else f"row {i}"
        logger.warning("%d of %d images could not be read; their feature rows are NaN (first: %s: %s)",
                       len(failed), len(errors), where, errors[i])


@torch.no_grad()
def extract_features(
    model: torch.nn.Module | str | os.PathLike[str],
    data: Any,
    out_path: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = "auto",
    transform: Any = None,
    on_error: str = "raise",
    root: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    num_workers: int = 0,
    path_column: str = "path",
) -> np.ndarray:
    """(N, F) pooled backbone features for every image of `data`, in order; cached at `out_path`.

    `model` is an ImageClassifier or a run directory (whose config also gives the transform). `data` is a
    LabelTable, a torch Dataset (items (image, ...)), a DataFrame with a `path` column, a list of image
    paths, a folder (searched recursively, sorted) or a CSV with a `path` column; relative paths start at
    `root` (default: the CSV's folder); `path_column` names the table's image column if it is not `path`
    (the parquet output calls it `path`). `on_error`: "raise" stops at the first unreadable image; "skip"
    keeps its row as NaN features and logs / records the error. An existing cache is read instead of
    recomputed only when it was written for the same image paths, backbone weights and transform (and,
    with "raise", has no failed rows); `overwrite` always recomputes. `num_workers`: processes that decode
    images (0: this one).
    """
    from radvision.data.table import check_choice
    from radvision.predict import check_batching, image_loader, image_transform, load_run, resolve_device

    check_choice(on_error, ON_ERROR, "on_error mode")
    check_batching(batch_size, num_workers)
    out = _check_out(out_path)
    if out is not None and out.is_file() and not overwrite:
        _refuse_foreign_file(out)
    dev = resolve_device(device)
    if isinstance(model, (str, os.PathLike)):
        model, cfg, _, _ = load_run(model, device=dev, with_thresholds=False)
        transform = transform if transform is not None else image_transform(cfg)
    if not isinstance(model, torch.nn.Module):
        raise RadvisionError(f"extract_features takes a model or a run directory, got {type(model).__name__}.")
    ds, paths, given = _image_source(data, transform, on_error, root, path_column)
    key = _cache_key(model, ds, paths, transform) if out is not None else None  # hashing weights costs ~0.1 s
    if out is not None and key is not None and not overwrite:
        cached = _cached(out, key, on_error)
        if cached is not None:
            feats, stored, meta = cached
            if given is not None and stored is not None and stored != list(given):
                _respell_paths(out, given, meta)
            return feats
    if on_error == "raise" and paths is not None and not isinstance(ds, _Guarded):
        _raise_if_missing(paths)  # after the cache check: a matching cache needs no image files at all

    was_training = model.training
    try:
        loader = image_loader(ds, batch_size, num_workers)
        feats, errors = _compute(model.to(dev).eval(), loader, paths, dev, on_error, progress)
    finally:
        model.train(was_training)  # a model extracted from mid-training goes on training as it was
    _log_failures(errors, paths)
    if out is not None and key is not None:
        _write_cache(out, feats, given, errors, key)
    return feats
