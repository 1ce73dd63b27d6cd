"""Atomic file writes: readers never see half a file, and an interrupted write leaves the old one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def nearest_existing(path: str | os.PathLike[str]) -> Path | None:
    """`path` or its closest existing parent (None when nothing of it exists): if that is a file, no folder can
    be made at or under `path`."""
    p = Path(path)
    return next((q for q in (p, *p.parents) if q.exists()), None)


def file_mode() -> int:
    """The mode a plain `open()` would give a new file under the current umask (mkstemp's files are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call `write(tmp_path)` on a temp file in the same folder, then move it over `path` (folders made)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:  # named after the file asked for, not the hidden temporary one
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())  # after writing: some writers (safetensors) recreate the file as 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_csv(frame: Any, path: str | os.PathLike[str], index: bool = False, **kwargs: Any) -> Path:
    """Atomically write a DataFrame as CSV (`DataFrame.to_csv` keyword arguments pass through)."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=index, **kwargs))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
