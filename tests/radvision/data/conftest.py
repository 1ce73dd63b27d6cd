"""Tiny synthetic images and datasets for the radvision.data tests (offline, milliseconds each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radvision.data.table import LabelTable


def save_gray(path: Path, size: int = 16, seed: int = 0, bits: int = 8) -> Path:
    """A random gray image; ``bits=16`` writes a 16-bit PNG holding 12-bit data."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if bits == 16:
        Image.fromarray(rng.integers(100, 4000, (size, size), dtype=np.uint16)).save(path)
    else:
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), mode="L").save(path)
    return path


def save_truncated(path: Path, size: int = 32) -> Path:
    save_gray(path, size)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_table(paths: list[Path], classes=("A", "B"), seed: int = 0, patients=None) -> LabelTable:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"path": [str(p) for p in paths]})
    for c in classes:
        frame[c] = rng.integers(0, 2, len(paths)).astype("float32")
    frame["patient_id"] = [str(i) for i in range(len(paths))] if patients is None else list(patients)
    return LabelTable(frame, list(classes), None)


@pytest.fixture(autouse=True)
def _temporary_files_in_tmp_path(tmp_path: Path, monkeypatch) -> None:
    """Files the code under test makes with `tempfile` (e.g. lists of skipped images) stay in tmp_path."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture
def gray_images(tmp_path: Path) -> list[Path]:
    """Six gray PNGs of differing size, half of them 16-bit."""
    return [save_gray(tmp_path / "img" / f"im{i}.png", size=12 + 4 * i, seed=i, bits=16 if i % 2 else 8)
            for i in range(6)]


@pytest.fixture
def helpers():
    """The helper functions above, as a fixture so tests need no import of conftest."""
    from types import SimpleNamespace

    return SimpleNamespace(save_gray=save_gray, save_truncated=save_truncated, make_table=make_table)
