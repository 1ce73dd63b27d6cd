"""A bundled subset of NIH ChestX-ray14 for demos, docs and tests (see README.md beside this file).

126 real radiographs downsampled to 64x64 PNG (95 train / 31 valid, no patient in both) with their
rows of the official Data_Entry_2017 table plus a ``split`` column. Released by the NIH Clinical
Center for unrestricted use with citation: Wang et al., "ChestX-ray8: Hospital-scale Chest X-ray
Database and Benchmarks on Weakly-Supervised Classification and Localization of Common Thorax
Diseases", IEEE CVPR 2017.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from radvision.data.nih import read_nih
from radvision.data.table import LabelTable

__all__ = ["load_nih_sample", "sample_root"]


def sample_root() -> Path:
    """Folder holding ``Data_Entry_sample.csv`` and ``images/``."""
    return Path(str(resources.files(__name__)))


def load_nih_sample(classes: Iterable[str] | None = None, split: str | None = None) -> LabelTable:
    """The bundled NIH subset as a LabelTable (14 findings by default; ``split`` "train" or "valid")."""
    return read_nih(sample_root(), classes=classes, split=split)
