"""The run directory: one place per training run, every file written atomically.

Layout::

    config.yaml          resolved config (class names filled in)
    metrics.csv          one row per finished epoch
    model.safetensors    weights after the last epoch (the best epoch once training ends with restore_best)
    best.safetensors     weights of the best epoch so far
    optimizer.pt         optimizer + LR-scheduler state of the current cycle
    trainer_state.json   epoch / cycle / best value, so --resume never repeats a finished epoch
    thresholds.json      per-class F1-optimal thresholds chosen on the validation split
    valid_metrics.csv    per-class metrics on valid (test_metrics.csv when a test split exists)
    plots/*.png          loss / metric curves, ROC per class, confusion matrices
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from radvision.atomic import atomic_write, atomic_write_csv
from radvision.errors import RadvisionError, first_line

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "trainer_state.json"
THRESHOLDS_FILE = "thresholds.json"
SKIPPED_FILE = "skipped_images.csv"  # images on_error=skip left out of the run: split, path, reason, error
PLOTS_DIR = "plots"
STAGED_SUFFIX = ".pending"  # an epoch's checkpoint file before trainer_state.json confirms the epoch


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Atomically write JSON (NaN/inf become null so the file stays standard JSON)."""
    text = json.dumps(_json_safe(obj), indent=2)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _json_safe(obj.item())
    return obj


def save_weights(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save a module's state dict as safetensors (copies make shared / channels_last tensors safe)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))


def load_weights(model: Any, path: str | os.PathLike[str]) -> Any:
    """Load safetensors weights into `model` (strict: the architecture must match the run's config)."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise RadvisionError(f"Weights file {str(p)!r} does not exist; train a run first or check the path.")
    try:
        state = load_file(str(p))
    except Exception as exc:  # safetensors' own error type: a truncated or foreign file
        raise RadvisionError(f"Weights file {str(p)!r} is not a readable safetensors file ({exc}); it may be "
                             "truncated: copy it again or retrain.") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = first_line(exc)
        raise RadvisionError(
            f"Weights in {str(p)!r} do not fit the model built from the config ({first})."
        ) from None
    return model


class RunDir:
    """Paths and (atomic) readers / writers for one run directory."""

    def __init__(self, path: str | os.PathLike[str]):
        # "~" as the user's home, as pandas and most tools read it (output.run_dir=~/runs/x reaches here unexpanded)
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def plots(self) -> Path:
        return self.path / PLOTS_DIR

    def has_run(self) -> bool:
        return self.file(STATE_FILE).is_file()

    def prepare(self, *, resume: bool, overwrite: bool = False) -> None:
        """Create the directory; refuse to train over an existing run unless resuming or overwriting."""
        if resume:
            if not self.has_run():
                raise RadvisionError(
                    f"Cannot resume: {str(self.path)!r} holds no {STATE_FILE}; pass the directory of an earlier run."
                )
        elif self.has_run() and not overwrite:
            raise RadvisionError(
                f"Run directory {str(self.path)!r} already holds a run; pass --resume {self.path}, "
                "set output.overwrite=true, or choose another output.run_dir."
            )
        elif self.has_run():
            self._clear_outputs()
            logger.info("Overwriting the run in %s", self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.plots.mkdir(exist_ok=True)

    def _clear_outputs(self) -> None:
        """Remove what a run writes, so nothing of the replaced run (a test split's metrics, say) survives;
        other files a user put in the folder stay."""
        fixed = (STATE_FILE, METRICS_FILE, OPTIMIZER_FILE, BEST_FILE, MODEL_FILE, THRESHOLDS_FILE, SKIPPED_FILE)
        for path in [*(self.file(n) for n in fixed), *self.path.glob("*_metrics.csv"),
                     *self.path.glob("*_per_class.csv"), *self.plots.glob("*.png"),
                     *self.path.glob(f"*{STAGED_SUFFIX}")]:
            path.unlink(missing_ok=True)
        self._drop_partial_writes()

    def _drop_partial_writes(self) -> None:
        """Remove the hidden temp files of writes a kill interrupted (``.metrics.csv.x1y2.tmp`` of the atomic
        writer, ``.tmpx1y2`` of a library's own): nothing reads them, and they would pile up with every kill."""
        for folder in (self.path, self.plots):
            for path in [*folder.glob(".*.tmp"), *folder.glob(".tmp*")]:
                if path.is_file():
                    path.unlink(missing_ok=True)

    # -- checkpoints: staged files, then trainer_state.json, then promotion ---------------------------
    # Each file is written atomically, but a checkpoint is several files. They are written under staged names,
    # trainer_state.json (which lists them) confirms the epoch, and only then do they replace the previous
    # epoch's files. An interruption before the state leaves the previous epoch's files untouched (its staged
    # files are dropped on resume); one after it is finished on resume (`recover`).
    def staged(self, name: str, epoch: int | str) -> Path:
        """Where epoch `epoch` (or a tag such as "5-final") writes checkpoint file `name` until it is confirmed."""
        return self.file(f"{name}.epoch{epoch}{STAGED_SUFFIX}")

    def promote(self, staged: list[str]) -> None:
        """Move confirmed staged files (names from `staged`) over their final names."""
        for name in staged:
            try:
                os.replace(self.file(name), self.file(name[: name.rindex(".epoch")]))
            except FileNotFoundError:  # promoted already: earlier, or just now by another process of the run
                pass

    def recover(self, state: dict[str, Any]) -> None:
        """After an interruption: promote the staged files trainer_state.json confirmed, drop any other."""
        self.promote(list(state.get("staged", [])))
        for path in self.path.glob(f"*{STAGED_SUFFIX}"):
            path.unlink(missing_ok=True)
        self._drop_partial_writes()

    # -- trainer state -------------------------------------------------------------------------------
    def save_state(self, state: dict[str, Any]) -> None:
        write_json(state, self.file(STATE_FILE))

    def load_state(self) -> dict[str, Any]:
        p = self.file(STATE_FILE)
        if not p.is_file():
            raise RadvisionError(f"{str(p)!r} does not exist; {str(self.path)!r} is not a radvision run directory.")
        return json.loads(p.read_text(encoding="utf-8"))

    # -- metrics -------------------------------------------------------------------------------------
    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_csv(pd.DataFrame(rows), self.file(METRICS_FILE))

    def read_metrics(self) -> pd.DataFrame:
        p = self.file(METRICS_FILE)
        return pd.read_csv(p) if p.is_file() else pd.DataFrame()

    # -- optimizer -----------------------------------------------------------------------------------
    def save_optimizer(self, state: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
        import torch

        return atomic_write(path or self.file(OPTIMIZER_FILE), lambda tmp: torch.save(state, tmp))

    def load_optimizer(self) -> dict[str, Any] | None:
        import torch

        p = self.file(OPTIMIZER_FILE)
        if not p.is_file():
            return None
        return torch.load(p, map_location="cpu", weights_only=True)
