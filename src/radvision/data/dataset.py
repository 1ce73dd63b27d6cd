"""`ImageDataset`: a torch Dataset over a LabelTable, reading from the uint8 cache when one is given."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from tqdm.auto import tqdm

from radvision.atomic import atomic_write_csv
from radvision.data.cache import SKIPPED_NAME, ImageCache
from radvision.data.images import check_image, load_image
from radvision.data.table import LabelTable, check_choice, validate_table
from radvision.errors import RadvisionError

__all__ = ["ImageDataset", "describe_skipped", "drop_unreadable_parts", "is_missing", "unreadable_images"]

log = logging.getLogger(__name__)

_TO_TENSOR = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()])


# how a skipped image's error starts when there is no file to read (`load_image`'s words)
_MISSING = ("Image file not found", "Empty image path")


def is_missing(error: str) -> bool:
    """True when a skipped image's error says its file is missing (not unreadable)."""
    return error.startswith(_MISSING)


def unreadable_images(paths: list[str], check: str = "decode", workers: int | None = None) -> dict[str, str]:
    """path -> the reason it cannot be used, for the missing and (``check="decode"``) undecodable ``paths``.

    A missing file's reason starts with "Image file not found" (`is_missing`); "decode" decodes every existing
    image (``workers`` threads), "exists" only looks for the files."""
    check_choice(check, ("decode", "exists"), "image check")
    unique = list(dict.fromkeys(paths))
    # no decode: load_image fails before it reads (not found, a blank path, a folder)
    reasons = {p: check_image(p) or "" for p in unique if not os.path.isfile(p)}
    present = [p for p in unique if p not in reasons]
    if present and check == "decode":
        n = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = pool.map(check_image, present)
            bar = tqdm(results, total=len(present), desc="checking images", unit="img", disable=len(present) < 1000)
            for p, err in zip(present, bar, strict=True):
                if err is not None:
                    reasons[p] = err
    return reasons


def describe_skipped(skipped: list[tuple[str, str]]) -> str:
    """"3 image(s): 1 missing file(s) (first: ...), 2 unreadable (first: ...)" for (path, error) pairs."""
    missing = [err for _, err in skipped if is_missing(err)]
    broken = [err for _, err in skipped if not is_missing(err)]
    parts = [f"{len(errs)} {what} (first: {errs[0].rstrip('.')})"
             for what, errs in (("missing file(s)", missing), ("unreadable image(s)", broken)) if errs]
    return f"{len(skipped)} image(s): {', '.join(parts)}"


def _check_cache_geometry(cache: ImageCache | None, transform: Callable | None) -> None:
    """A cache of another size or fit than the transform expects would be read as it is (upsampled, or squashed
    where the transform crops): other pixels than the files give, without a word."""
    geometry = getattr(transform, "radvision_geometry", None)
    if cache is None or geometry is None or geometry == (cache.size, cache.fit):
        return
    size, fit = geometry
    raise RadvisionError(
        f"The image cache in {cache.cache_dir} holds {cache.size} px images fitted by {cache.fit!r}, but the transform "
        f"expects {size} px by {fit!r}; build the cache with build_cache(..., size={size}, fit={fit!r}) "
        "(radvision.data.transforms.preset_fit gives a preset's fit).")


class ImageDataset(Dataset):
    """Yields ``(image, labels)`` — or ``(image, labels, meta)`` with ``return_meta=True`` — per table row.

    ``image`` is whatever ``transform`` makes of a PIL image (or of the cached uint8 tensor (C, H, W));
    without a transform, a float tensor in [0, 1] at the source size. ``labels`` is float32 (C,) with
    NaN for unknown labels. ``meta`` holds path, patient_id, row index, age (NaN if unknown), sex and
    view ("" if unknown).

    ``on_error="skip"`` drops unreadable rows up front (missing, truncated or corrupt files; with a cache,
    the ones the cache skipped unless repaired since, and cached ones changed or gone since) and records
    them in ``skipped``; "raise" fails fast at construction for missing files and at load time for
    undecodable ones. The full list of skipped files (CSV: path, error) is written to ``skipped_csv`` when
    given; else, with a cache that holds all of them, it is the cache's ``skipped.csv``; else it stays in
    ``skipped`` (a training run writes every split's list to its folder's ``skipped_images.csv``). The warning that reports the skips names the file, and ``skipped_csv`` holds
    its path afterwards (None when nothing was skipped or no file lists them). Without a cache, ``check``
    says how "skip" tests files: "decode" (sure, but costs one full decode of every image; ``workers``
    threads) or "exists" (instant; a corrupt file then fails at load time). With a cache, the cache's
    own record of failures is used and only files changed since they were cached are checked again.
    """

    def __init__(
        self,
        table: LabelTable,
        transform: Callable | None = None,
        cache: ImageCache | None = None,
        on_error: str = "raise",
        return_meta: bool = False,
        workers: int | None = None,
        check: str = "decode",
        skipped_csv: str | os.PathLike | None = None,
    ):
        check_choice(on_error, ("raise", "skip"), "on_error mode")
        check_choice(check, ("decode", "exists"), "image check")
        self.check = check
        validate_table(table)
        _check_cache_geometry(cache, transform)
        self.transform = transform
        self.cache = cache
        self.on_error = on_error
        self.return_meta = return_meta
        self.skipped: list[tuple[str, str]] = []
        self.skipped_csv: Path | None = None
        # files changed (or gone) since they were cached are checked and read like uncached ones: found once
        # here, not on every read
        self._stale = set() if cache is None else {
            p for p in dict.fromkeys(table.frame["path"].astype(str)) if p in cache and not cache.is_current(p)}
        if on_error == "skip":
            table = self._drop_unreadable(table, workers, skipped_csv)
        else:
            missing = [p for p in table.frame["path"] if not self._cached(p) and not os.path.isfile(p)]
            if missing:
                raise RadvisionError(
                    f"Image file not found: {missing[0]} ({len(missing)} of {len(table)} missing; "
                    "pass on_error='skip' to drop them)."
                )
        self.table = table
        self.classes = list(table.classes)
        self._paths = table.frame["path"].astype(str).tolist()
        self._stale &= set(self._paths)
        if self._stale:
            log.warning("ImageDataset: %d cached image(s) changed on disk since the cache was built (first: %s); "
                        "they are decoded from the files; rebuild the cache to speed them up", len(self._stale),
                        next(iter(self._stale)))
        self._labels = torch.from_numpy(table.labels())
        frame = table.frame
        self._patients = frame["patient_id"].astype(str).tolist()
        self._age = (pd.to_numeric(frame["age"], errors="coerce").astype("float32").tolist() if "age" in frame
                     else [float("nan")] * len(frame))
        self._sex = self._strings(frame, "sex")
        self._view = self._strings(frame, "view")

    @staticmethod
    def _strings(frame: pd.DataFrame, column: str) -> list[str]:
        if column not in frame:
            return [""] * len(frame)
        return [v if isinstance(v, str) else "" for v in frame[column].tolist()]

    def _drop_unreadable(self, table: LabelTable, workers: int | None,
                         skipped_csv: str | os.PathLike | None) -> LabelTable:
        paths = table.frame["path"].astype(str).tolist()
        reasons: dict[str, str] = {}
        to_check = paths
        if self.cache is not None:
            reasons.update({p: err for p, err in self.cache.skipped if self.cache.failed_unchanged(p)})
            to_check = [p for p in paths if not self._cached(p) and p not in reasons]
        reasons.update(unreadable_images(to_check, self.check, workers))
        keep = np.array([p not in reasons for p in paths], dtype=bool)
        self.skipped = [(p, reasons[p]) for p in dict.fromkeys(paths) if p in reasons]
        if self.skipped:
            self.skipped_csv = self._list_skipped(skipped_csv)
            where = f"full list: {self.skipped_csv}" if self.skipped_csv else "full list in ImageDataset.skipped"
            log.warning("ImageDataset: skipping %s; %s", describe_skipped(self.skipped), where)
        return table.subset(keep) if not keep.all() else table

    def _list_skipped(self, skipped_csv: str | os.PathLike | None) -> Path | None:
        """The file that lists every skipped image: ``skipped_csv`` (written), else the cache's list when it
        holds them all, else None (the list is ``skipped``; no stray temporary file)."""
        if skipped_csv is not None:
            return self.write_skipped(skipped_csv)
        if self.cache is not None:
            cached = dict(self.cache.skipped)
            listed = self.cache.cache_dir / SKIPPED_NAME
            if listed.is_file() and all(p in cached for p, _ in self.skipped):
                return listed
        return None

    def write_skipped(self, path: str | os.PathLike) -> Path:
        """Write the skipped files as CSV (path, error), atomically."""
        frame = pd.DataFrame(self.skipped, columns=["path", "error"])
        return atomic_write_csv(frame, path)

    def __len__(self) -> int:
        return len(self._paths)

    def labels(self) -> np.ndarray:
        """(N, C) float32 labels (NaN unknown), e.g. for samplers and class weights (as `LabelTable.labels`)."""
        return self._labels.numpy().copy()

    def _cached(self, path: str) -> bool:
        """True when ``path`` is read from the cache: cached, and unchanged on disk since."""
        return self.cache is not None and path in self.cache and path not in self._stale

    def _image(self, path: str):
        if self._cached(path):
            arr = torch.from_numpy(self.cache.get(path))
            arr = arr.unsqueeze(0) if arr.ndim == 2 else arr.permute(2, 0, 1)
            return tv_tensors.Image(arr)
        return load_image(path)

    def __getitem__(self, index: int):
        path = self._paths[index]
        image = self._image(path)
        image = self.transform(image) if self.transform is not None else _TO_TENSOR(image)
        labels = self._labels[index]
        if not self.return_meta:
            return image, labels
        meta = {
            "path": path,
            "patient_id": self._patients[index],
            "index": index,
            "age": self._age[index],
            "sex": self._sex[index],
            "view": self._view[index],
        }
        return image, labels, meta


def drop_unreadable_parts(parts: dict[str, LabelTable], check: str = "exists", workers: int | None = None
                          ) -> tuple[dict[str, LabelTable], list[tuple[str, str, str]]]:
    """``parts`` ({split: LabelTable}) without the rows ``on_error="skip"`` would skip (`unreadable_images`:
    missing files, and with ``check="decode"`` undecodable ones), and the (split, path, error) rows left out:
    what `radvision data` counts for data.on_error=skip."""
    reasons = unreadable_images([p for t in parts.values() for p in t.frame["path"].astype(str)], check, workers)
    out, skipped = {}, []
    for split, t in parts.items():
        paths = t.frame["path"].astype(str).tolist()
        keep = np.array([p not in reasons for p in paths], dtype=bool)
        skipped += [(split, p, reasons[p]) for p in dict.fromkeys(paths) if p in reasons]
        out[split] = t if keep.all() else t.subset(keep)
    return out, skipped
