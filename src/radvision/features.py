"""Pooled backbone features, computed once and cached on disk, so fusion models train in seconds.

`.npy` holds the (N, F) float32 matrix; `.parquet` holds `path` plus columns `f0..f{F-1}`, which lets a
later call check that the cache still matches the images it is asked about.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from radvision.errors import RadvisionError
from radvision.atomic import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["extract_features", "pooled_features", "read_features"]

FORMATS = (".npy", ".parquet")


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
    return p


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a handle: np.save would append ".npy" to the temp file's name
        np.save(fh, array)


def read_features(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str] | None]:
    """(features, paths or None) from a cache written by `extract_features`."""
    p = _check_out(path)
    assert p is not None
    if not p.is_file():
        raise RadvisionError(f"Feature file {str(p)!r} does not exist.")
    if p.suffix.lower() == ".npy":
        return np.load(p, allow_pickle=False), None
    frame = pd.read_parquet(p)
    cols = [c for c in frame.columns if c != "path"]
    paths = frame["path"].astype(str).tolist() if "path" in frame else None
    return frame[cols].to_numpy(dtype=np.float32), paths


def _as_dataset(data: Any, transform: Any, on_error: str) -> tuple[Dataset, list[str] | None]:
    """Accept a Dataset (items (image, ...)) or a LabelTable (wrapped in an ImageDataset)."""
    from radvision.data import LabelTable

    if isinstance(data, LabelTable):
        if transform is None:
            raise RadvisionError("extract_features needs a transform (or a run directory) to read a LabelTable.")
        from radvision.data import ImageDataset

        return ImageDataset(data, transform, on_error=on_error), data.paths
    if isinstance(data, Dataset):
        table = getattr(data, "table", None)
        return data, (table.paths if table is not None and hasattr(table, "paths") else None)
    raise RadvisionError(f"extract_features takes a LabelTable or a torch Dataset, got {type(data).__name__}.")


@torch.no_grad()
def extract_features(
    model: torch.nn.Module | str | os.PathLike[str],
    data: Any,
    out_path: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = "auto",
    transform: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> np.ndarray:
    """(N, F) pooled backbone features for every image of `data`, in order; cached at `out_path`.

    `model` is an ImageClassifier or a run directory (whose config also gives the transform). An existing
    cache with the right number of rows (and, for parquet, the same paths) is read instead of recomputed
    unless `overwrite`.
    """
    from tqdm.auto import tqdm

    from radvision.predict import image_transform, load_run, resolve_device

    out = _check_out(out_path)
    dev = resolve_device(device)
    on_error = "raise"
    if isinstance(model, (str, os.PathLike)):
        model, cfg, _, _ = load_run(model, device=dev)
        transform = transform if transform is not None else image_transform(cfg)
        on_error = cfg.data.on_error
    if not isinstance(model, torch.nn.Module):
        raise RadvisionError(f"extract_features takes a model or a run directory, got {type(model).__name__}.")
    ds, paths = _as_dataset(data, transform, on_error)

    if out is not None and out.is_file() and not overwrite:
        cached, cached_paths = read_features(out)
        if len(cached) == len(ds) and (cached_paths is None or paths is None or cached_paths == paths):
            logger.info("Read %d cached feature rows from %s", len(cached), out)
            return cached
        logger.info("Cache %s does not match the %d images asked for; recomputing", out, len(ds))

    model = model.to(dev).eval()
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    chunks = []
    for batch in tqdm(loader, desc="features", disable=not progress, leave=False):
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        chunks.append(pooled_features(model, images.to(dev)).float().cpu().numpy())
    feats = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), dtype=np.float32)

    if out is not None:
        if out.suffix.lower() == ".npy":
            atomic_write(out, lambda tmp: _save_npy(tmp, feats))
        else:
            frame = pd.DataFrame(feats, columns=[f"f{i}" for i in range(feats.shape[1])])
            if paths is not None:
                frame.insert(0, "path", paths)
            atomic_write(out, lambda tmp: frame.to_parquet(tmp, index=False))
        logger.info("Wrote %s features to %s", feats.shape, out)
    return feats
