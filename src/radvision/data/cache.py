"""Pre-resized uint8 image cache: decode each full-size radiograph once, then read epochs from a memmap.

Layout of ``cache_dir``: ``images.npy`` (N, H, W[, C]) uint8, ``index.json`` (settings, array
fingerprint, path -> row with the source file's mtime, size and ctime), ``skipped.csv`` (path, error).
A rebuild decodes only files that are new or changed since the last build.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from radvision.atomic import atomic_write_csv, atomic_write_text, file_mode, nearest_existing
from radvision.data.images import load_image, stat_or_none
from radvision.data.table import LabelTable, check_choice
from radvision.errors import RadvisionError, some_names

__all__ = ["FITS", "ImageCache", "build_cache", "resize_image"]

log = logging.getLogger(__name__)

# 2: squash / crop use the transforms' geometry, full decode (no JPEG draft);
# 3: a one-channel cache makes colour images gray after the geometry, as the transforms do;
# 4: 16-bit colour files are stretched at full depth (they held their high bytes), and colour becomes gray
#    with rounding (a gray picture stored as RGB kept one level less)
# 5: a file's ctime joins mtime and size, so a file replaced by one of the same size with its mtime set back
#    (`touch -r`, `cp -p`) is decoded again
FORMAT = 5
ARRAY_NAME = "images.npy"
INDEX_NAME = "index.json"
SKIPPED_NAME = "skipped.csv"
LOCK_NAME = ".build.lock"
#: How a non-square image becomes size x size: stretch, centre-crop the shorter side, or letterbox.
FITS = ("squash", "crop", "pad")


def resize_image(img: Image.Image, size: int, fit: str = "squash") -> Image.Image:
    """Resize a PIL image to ``size`` x ``size`` following ``fit`` (see `FITS`).  "squash" and "crop" are the
    transforms' own geometry (`radvision.data.transforms.fit_geometry`), pixel for pixel, so a cached image
    reaches the model exactly as a freshly decoded one does."""
    if fit == "pad":
        return ImageOps.pad(img, (size, size), method=Image.Resampling.BILINEAR, color=0)
    from torchvision.transforms import v2

    from radvision.data.transforms import fit_geometry

    tensor = v2.Compose([v2.ToImage(), *fit_geometry(fit, size)])(img)
    return v2.functional.to_pil_image(tensor)


def _stat(path: str) -> tuple[int, int, int] | None:
    """(mtime in ns, size, ctime in ns) of a file, what tells a changed image; None when it cannot be reached.
    The ctime is there because the mtime can be set back (`touch -r`, `cp -p`) and the ctime cannot; chmod or
    a new hard link change it too, which only costs a decode."""
    st = stat_or_none(path)
    return None if st is None else (st.st_mtime_ns, st.st_size, st.st_ctime_ns)


class ImageCache:
    """Read side of a cache built by `build_cache`. Safe to pickle into DataLoader workers: the
    memmap is reopened lazily in each process instead of being copied."""

    def __init__(self, cache_dir: str | os.PathLike):
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        index_path = self.cache_dir / INDEX_NAME
        if not index_path.is_file():
            raise RadvisionError(f"No image cache in {self.cache_dir} (missing {INDEX_NAME}); build it with build_cache().")
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RadvisionError(f"Cache index {index_path} is unreadable: {exc}; delete the folder and rebuild.") from exc
        if index.get("format") != FORMAT:
            raise RadvisionError(f"Cache {self.cache_dir} has format {index.get('format')}, expected {FORMAT}; rebuild it.")
        self.size: int = index["size"]
        self.channels: int = index["channels"]
        self.fit: str = index["fit"]
        self.scaling: str = index["scaling"]
        self.shape: tuple[int, ...] = tuple(index["array"]["shape"])
        self._entries: dict[str, list[int]] = index["entries"]  # path -> [row, mtime_ns, bytes, ctime_ns]
        self._skipped: dict[str, list] = index["skipped"]  # path -> [mtime_ns, bytes, ctime_ns, error]
        self._fingerprint = (index["array"]["bytes"], index["array"]["mtime_ns"])
        st = _stat(str(self.array_path))
        if st is None:
            raise RadvisionError(f"Cache array {self.array_path} is missing; rebuild the cache.")
        if (st[1], st[0]) != self._fingerprint:  # e.g. a build died between writing the array and the index
            raise RadvisionError(f"Cache array {self.array_path} does not match its index; rebuild the cache.")
        # Mapped now: DataLoader workers forked from this process keep reading this build's file even after
        # another run sharing the folder replaces it; a copy opened by path in a spawned worker is checked.
        self._array: np.ndarray | None = self._open_array()

    @property
    def array_path(self) -> Path:
        return self.cache_dir / ARRAY_NAME

    def _open_array(self) -> np.ndarray:
        array = np.load(self.array_path, mmap_mode="r")
        st = _stat(str(self.array_path))  # after mapping: a match means the mapped file is this index's
        if st is None or (st[1], st[0]) != self._fingerprint:
            raise RadvisionError(
                f"The image cache in {self.cache_dir} was rebuilt after this run opened it (another run sharing "
                "data.cache_dir with other settings or images?); its rows no longer match. Give such runs their "
                "own data.cache_dir, then resume."
            )
        return array

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = self._open_array()
        return self._array

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return str(path) in self._entries

    def __repr__(self) -> str:
        return f"ImageCache({self.cache_dir}, {len(self)} images of {self.size}px x {self.channels}ch)"

    @property
    def paths(self) -> list[str]:
        return list(self._entries)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, error) of the files the last build could not decode."""
        return [(p, v[3]) for p, v in self._skipped.items()]

    def failed_unchanged(self, path: str) -> bool:
        """True when the last build could not decode ``path`` and the file is unchanged (or still gone) since:
        a file repaired after the build is worth reading again."""
        s = self._skipped.get(str(path))
        return s is not None and (_stat(str(path)) or (None, None, None)) == tuple(s[:3])

    def is_current(self, path: str) -> bool:
        """True when ``path`` is cached and unchanged on disk since it was cached."""
        e = self._entries.get(str(path))
        return e is not None and _stat(str(path)) == tuple(e[1:4])

    def index_of(self, path: str | os.PathLike) -> int:
        try:
            return self._entries[str(path)][0]
        except KeyError:
            raise RadvisionError(f"Image {path} is not in the cache {self.cache_dir}; rebuild it for this table.") from None

    def get(self, path: str | os.PathLike) -> np.ndarray:
        """The cached uint8 image, (H, W) for one channel or (H, W, C)."""
        return np.array(self.array[self.index_of(path)])


def _decode(path: str, size: int, channels: int, fit: str, scaling: str) -> np.ndarray:
    # the same steps as the transforms' deterministic start, so cached and decoded images are the same pixels:
    # a full decode (no JPEG draft), the geometry, then a colour image to one channel: Pillow's "L" is exactly
    # the transforms' `gray_uint8`
    img = resize_image(load_image(path, mode="RGB" if channels == 3 else None, scaling=scaling), size, fit)
    if channels == 1 and img.mode != "L":
        img = img.convert("L")
    return np.asarray(img, dtype=np.uint8)


def _try_open(cache_dir: Path, size: int, channels: int, fit: str, scaling: str) -> ImageCache | None:
    if not (cache_dir / INDEX_NAME).is_file():
        return None
    try:
        cache = ImageCache(cache_dir)
    except RadvisionError as exc:
        log.info("cache: ignoring the old cache in %s (%s)", cache_dir, exc)
        return None
    if (cache.size, cache.channels, cache.fit, cache.scaling) != (size, channels, fit, scaling):
        log.info("cache: settings changed; rebuilding %s", cache_dir)
        return None
    return cache


def check_cache_dir(cache_dir: str | os.PathLike) -> Path:
    """The resolved cache folder, or a RadvisionError when no cache can go there: a file on its path, or a
    folder of other files. Cheap, so a run can say so before it reads its label table."""
    cache_dir = Path(cache_dir).expanduser().resolve()
    blocked = nearest_existing(cache_dir)
    if blocked is not None and not blocked.is_dir():
        raise RadvisionError(f"The cache folder (data.cache_dir) {str(cache_dir)!r} cannot be made: {str(blocked)!r} "
                             "is a file; give a folder path.")
    foreign = _foreign_files(cache_dir)
    if foreign:  # a build writes images.npy, index.json and skipped.csv: never over files of the user's
        raise RadvisionError(f"The cache folder (data.cache_dir) {str(cache_dir)!r} is not a radvision image cache "
                             f"and holds other files ({some_names(foreign)}); give an empty or new folder.")
    return cache_dir


def build_cache(
    table: LabelTable,
    size: int,
    cache_dir: str | os.PathLike,
    channels: int = 1,
    workers: int | None = None,
    on_error: str = "raise",
    fit: str = "squash",
    scaling: str = "minmax",
    progress: bool = True,
) -> ImageCache:
    """Decode every image of ``table`` once into a (N, size, size[, 3]) uint8 memmap in ``cache_dir``.

    Reuses an existing cache when its settings match and every file is unchanged (same path, mtime, size
    and ctime); otherwise decodes only new or changed files. ``on_error="skip"`` leaves unreadable files out
    (listed in ``cache_dir/skipped.csv`` and `ImageCache.skipped`); "raise" stops at the first one.
    ``workers`` threads decode in parallel (PIL releases the GIL while decoding). Builds of one folder
    take turns (a lock file), so two runs sharing ``data.cache_dir`` cannot mix their arrays and indexes;
    still, build once (e.g. rank 0 of a multi-GPU run) and open it everywhere with `ImageCache(cache_dir)`.
    ``fit`` must be the geometry of the transforms that will read it (`radvision.data.transforms.preset_fit`).
    """
    check_choice(on_error, ("raise", "skip"), "on_error mode")
    check_choice(channels, (1, 3), "channel count")
    check_choice(fit, FITS, "cache fit")
    if not isinstance(size, int) or size < 8:
        raise RadvisionError(f"Cache size must be an integer of at least 8 pixels, got {size!r}.")
    cache_dir = check_cache_dir(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RadvisionError(f"The cache folder (data.cache_dir) {str(cache_dir)!r} cannot be made "
                             f"({exc.strerror or exc}); give a folder you can write to.") from None
    workers = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))
    from filelock import FileLock

    # one build at a time per folder: two at once could pair one build's array with the other's index
    lock = FileLock(str(cache_dir / LOCK_NAME))
    try:
        lock.acquire()
    except OSError as exc:  # a read-only folder: fine as long as there is nothing to write
        paths, old = _table_paths(table), _try_open(cache_dir, size, channels, fit, scaling)
        if old is not None and not _plan(old, paths, on_error)[2]:  # nothing to decode
            log.info("cache: %s is read-only and up to date (%d images); using it as it is", cache_dir, len(paths))
            return old
        raise RadvisionError(f"The cache folder (data.cache_dir) {str(cache_dir)!r} is not writable "
                             f"({exc.strerror or exc}) and holds no up-to-date cache for these images and "
                             "settings; give a folder you can write to.") from None
    try:
        for orphan in cache_dir.glob(f".{ARRAY_NAME}.*.tmp"):  # left by a build that was killed
            orphan.unlink(missing_ok=True)
        return _build_locked(table, size, cache_dir, channels, workers, on_error, fit, scaling, progress)
    finally:
        lock.release()


def _foreign_files(cache_dir: Path) -> list[str]:
    """The visible names in ``cache_dir``, which a build could write over, unless it is a radvision cache (a
    build's lock file or its index, of any format: an older one is rebuilt)."""
    try:
        names = sorted(os.listdir(cache_dir))
    except OSError:  # not there yet (or no folder): mkdir reports what is wrong
        return []
    if LOCK_NAME in names or _is_cache_index(cache_dir / INDEX_NAME):
        return []
    # hidden names (.DS_Store, a killed build's temp files) are never written over
    return [n for n in names if not n.startswith(".")]


def _is_cache_index(path: Path) -> bool:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(index, dict) and {"format", "entries"} <= index.keys()


def _table_paths(table: LabelTable) -> list[str]:
    return list(dict.fromkeys(table.frame["path"].astype(str)))  # each file once, in table order


def _plan(old: ImageCache | None, paths: list[str], on_error: str
          ) -> tuple[dict[int, int], dict[str, list], list[int], list[tuple[int, int] | None]]:
    """What a build must do: (new row -> reusable old row, still-unreadable files, rows to decode, file stats)."""
    stats = [_stat(p) for p in paths]
    reuse: dict[int, int] = {}
    skipped: dict[str, list] = {}
    todo: list[int] = []
    for i, (p, st) in enumerate(zip(paths, stats, strict=True)):
        e = old._entries.get(p) if old is not None else None
        s = old._skipped.get(p) if old is not None else None
        if e is not None and st == tuple(e[1:4]):
            reuse[i] = e[0]
        elif s is not None and st is not None and st == tuple(s[:3]):
            skipped[p] = s  # failed before and unchanged since: do not retry
        else:
            todo.append(i)
    if skipped and on_error == "raise":
        p = next(iter(skipped))
        raise RadvisionError(f"{skipped[p][3].rstrip('.')} (pass on_error='skip' to leave it out).")
    return reuse, skipped, todo, stats


def _build_locked(table: LabelTable, size: int, cache_dir: Path, channels: int, workers: int, on_error: str,
                  fit: str, scaling: str, progress: bool) -> ImageCache:
    paths = _table_paths(table)
    old = _try_open(cache_dir, size, channels, fit, scaling)
    reuse, skipped, todo, stats = _plan(old, paths, on_error)

    if old is not None and not todo:
        log.info("cache: %s is up to date (%d images)", cache_dir, len(paths))
        try:
            _write_skipped(cache_dir, skipped)
        except PermissionError:  # a folder made read-only (chmod a-w) after the build: nothing else to write
            log.info("cache: %s is read-only; %s is left as it was", cache_dir, SKIPPED_NAME)
        return old

    shape = (len(paths), size, size) + ((3,) if channels == 3 else ())
    fd, tmp = tempfile.mkstemp(prefix=f".{ARRAY_NAME}.", suffix=".tmp", dir=cache_dir)
    os.close(fd)
    os.chmod(tmp, file_mode())
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for new_row, old_row in reuse.items():
            arr[new_row] = old.array[old_row]
        log.info("cache: reusing %d, decoding %d images into %s", len(reuse), len(todo), cache_dir)
        failed: dict[int, str] = {}

        def work(i: int, out: np.ndarray = arr) -> tuple[int, str | None]:
            try:
                out[i] = _decode(paths[i], size, channels, fit, scaling)
            except RadvisionError as exc:
                if on_error == "raise":
                    raise
                return i, str(exc)
            return i, None

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(work, todo)
            try:
                for i, err in tqdm(results, total=len(todo), desc="caching images", unit="img", disable=not progress):
                    if err is not None:
                        failed[i] = err
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        arr.flush()
        del arr
        for i, err in failed.items():
            skipped[paths[i]] = [*(stats[i] or (None, None, None)), err]
            log.warning("cache: skipping %s", err)
        os.replace(tmp, cache_dir / ARRAY_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    st = os.stat(cache_dir / ARRAY_NAME)
    entries = {
        p: [i, *stats[i]] for i, p in enumerate(paths) if p not in skipped and stats[i] is not None
    }
    index = {
        "format": FORMAT,
        "size": size,
        "channels": channels,
        "fit": fit,
        "scaling": scaling,
        "array": {"file": ARRAY_NAME, "shape": list(shape), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns},
        "entries": entries,
        "skipped": skipped,
    }
    atomic_write_text(cache_dir / INDEX_NAME, json.dumps(index))
    _write_skipped(cache_dir, skipped)
    return ImageCache(cache_dir)


def _write_skipped(cache_dir: Path, skipped: dict[str, list]) -> None:
    frame = pd.DataFrame({"path": list(skipped), "error": [v[3] for v in skipped.values()]})
    target = cache_dir / SKIPPED_NAME
    if target.is_file():
        with open(target, encoding="utf-8", newline="") as fh:  # newline="": a "\r" in an error reads back as is
            if fh.read() == frame.to_csv(index=False):
                return  # unchanged: no write (a read-only folder stays usable)
    atomic_write_csv(frame, target)
