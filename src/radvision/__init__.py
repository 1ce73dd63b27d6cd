"""radvision: radiology image classifiers (train, evaluate, explain).

Importing the package is cheap: the torch-heavy submodules load on first use of a name below.

    import radvision
    cfg = radvision.load_config("configs/demo.yaml", ["optim.epochs=2"])
    run_dir = radvision.Trainer(cfg).fit()
    probs = radvision.predict_images(run_dir, "images/")   # also radvision.predict.predict
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from radvision.errors import RadvisionError

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY = {
    "Config": "radvision.config",
    "load_config": "radvision.config",
    "save_config": "radvision.config",
    "Trainer": "radvision.train",
    "build_datasets": "radvision.train",
    "RunDir": "radvision.rundir",
    "load_run": "radvision.predict",
    "predict_images": "radvision.predict",
    "evaluate_files": "radvision.predict",
    "explain_images": "radvision.predict",
    "extract_features": "radvision.features",
    "read_features": "radvision.features",
    "build_model": "radvision.heads",
    "create_backbone": "radvision.backbones",
    "list_backbones": "radvision.backbones",
    "create_loss": "radvision.losses",
    "evaluate_predictions": "radvision.metrics",
    "per_class_metrics": "radvision.metrics",
    "f1_optimal_thresholds": "radvision.thresholds",
    "gradcam": "radvision.explain",
}

__all__ = [
    "RadvisionError",
    "__version__",
    "Config",
    "load_config",
    "save_config",
    "Trainer",
    "build_datasets",
    "RunDir",
    "load_run",
    "predict_images",
    "evaluate_files",
    "explain_images",
    "extract_features",
    "read_features",
    "build_model",
    "create_backbone",
    "list_backbones",
    "create_loss",
    "evaluate_predictions",
    "per_class_metrics",
    "f1_optimal_thresholds",
    "gradcam",
]

if TYPE_CHECKING:  # pragma: no cover - for IDEs and type checkers only
    from radvision.backbones import create_backbone, list_backbones
    from radvision.config import Config, load_config, save_config
    from radvision.explain import gradcam
    from radvision.features import extract_features, read_features
    from radvision.heads import build_model
    from radvision.losses import create_loss
    from radvision.metrics import evaluate_predictions, per_class_metrics
    from radvision.predict import evaluate_files, explain_images, load_run, predict_images
    from radvision.rundir import RunDir
    from radvision.thresholds import f1_optimal_thresholds
    from radvision.train import Trainer, build_datasets


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'radvision' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
