"""radvision.data: dataset readers with one contract (`LabelTable`), splits, imbalance tools,
transforms, robust image loading, a uint8 image cache and a torch Dataset.

The torch-based parts (`ImageDataset`, `build_transforms`) are imported on first use so that reading
and splitting label tables stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from radvision.data.cache import ImageCache, build_cache
from radvision.data.chexpert import CHEXPERT_CLASSES, CHEXPERT_COMPETITION, read_chexpert
from radvision.data.generic import read_csv_table, read_folder
from radvision.data.imageclef import (
    concept_id,
    label_cardinality,
    label_density,
    read_concepts,
    read_imageclef,
)
from radvision.data.images import check_image, load_image
from radvision.data.imbalance import class_weights, downsample, pos_weight, sample_weights, weighted_sampler
from radvision.data.mimic import read_mimic
from radvision.data.nih import NIH_CLASSES, read_nih
from radvision.data.openi import OPENI_TERM_MAP, read_openi
from radvision.data.splits import (
    assert_patient_disjoint,
    patient_kfold,
    patient_split,
    require_train_and_valid,
    source_splits,
)
from radvision.data.table import POLICIES, SPLITS, UNMENTIONED, LabelTable, apply_policy, validate_table

if TYPE_CHECKING:
    from radvision.data.dataset import ImageDataset
    from radvision.data.transforms import PRESETS, build_transforms

_LAZY = {
    "ImageDataset": "radvision.data.dataset",
    "build_transforms": "radvision.data.transforms",
    "PRESETS": "radvision.data.transforms",
}

__all__ = [
    "CHEXPERT_CLASSES",
    "CHEXPERT_COMPETITION",
    "NIH_CLASSES",
    "OPENI_TERM_MAP",
    "POLICIES",
    "PRESETS",
    "SPLITS",
    "UNMENTIONED",
    "ImageCache",
    "ImageDataset",
    "LabelTable",
    "apply_policy",
    "assert_patient_disjoint",
    "build_cache",
    "build_transforms",
    "check_image",
    "class_weights",
    "concept_id",
    "downsample",
    "label_cardinality",
    "label_density",
    "load_image",
    "patient_kfold",
    "patient_split",
    "pos_weight",
    "read_chexpert",
    "read_csv_table",
    "read_folder",
    "read_concepts",
    "read_imageclef",
    "read_mimic",
    "read_nih",
    "read_openi",
    "sample_weights",
    "require_train_and_valid",
    "source_splits",
    "validate_table",
    "weighted_sampler",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'radvision.data' has no attribute {name!r}")
