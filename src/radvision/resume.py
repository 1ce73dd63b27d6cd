"""Resuming a run: where training stands (trainer_state.json) and which config changes a resumed run may make."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from radvision.config import Config, CycleConfig, flatten_config, with_absolute_paths
from radvision.errors import RadvisionError
from radvision.rundir import CONFIG_FILE

logger = logging.getLogger(__name__)

__all__ = ["RESUME_FREE_KEYS", "SCHEDULE_KEYS", "Progress", "check_resume_config"]


@dataclass
class Progress:
    """Where training stands; saved as trainer_state.json after every epoch."""

    epoch: int = 0  # epochs finished over all cycles
    cycle: int = 0  # index of the current cycle
    cycle_epoch: int = 0  # epochs finished in the current cycle
    stopped_early: bool = False  # the current cycle ended by early stopping
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    # the value of the last improvement larger than schedule.min_delta: patience counts from it, while `best`
    # follows every improvement (None in states written before it existed: `best` was that value then)
    patience_ref: float | None = None
    # the valid loss of the best epoch: an epoch that ties the best monitored value (AUROC stuck at 1.0 on a
    # small valid split) with a lower valid loss becomes the best one (None in older states: no tie-break)
    best_loss: float | None = None
    # True once training refuses classes without any training label; a state without it (None) comes from a
    # run that may have trained such a class, which a resume then lets go on with a warning
    labels_checked: bool | None = None
    finished: bool = False
    # True once the finished run's thresholds, test metrics and plots are written too (False: interrupted while
    # writing them, which --resume completes; None in states written before it existed)
    outputs_written: bool | None = None

    def to_dict(self, monitor: str, mode: str, classes: list[str]) -> dict[str, Any]:
        return {**self.__dict__, "monitor": monitor, "mode": mode, "classes": classes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Progress:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})




# Keys a resumed run may change: how it runs (runtime, except the seed, which fixes the patient split and the
# shuffling), where it writes (output), loader processes, the image cache, when the epochs still to come stop
# (schedule.patience), and the thresholds, which are chosen again after every fit. Any other key decides what
# the finished epochs were; changing it would leave config.yaml describing a run that never happened.
RESUME_FREE_KEYS = frozenset({
    "runtime.amp", "runtime.channels_last", "runtime.compile", "runtime.device", "runtime.progress",
    "output.run_dir", "output.overwrite", "optim.num_workers", "data.cache_dir", "schedule.patience",
    "thresholds.min_precision", "thresholds.top_k", "thresholds.min_labels", "thresholds.cardinality",
})
# Keys that make up the schedule: compared through Config.resolved_cycles, so a resumed run may add epochs
# and cycles but never rewrite the ones already trained.
SCHEDULE_KEYS = ("optim.epochs", "optim.lr", "model.strategy", "loss.class_weights", "cycles")


def _schedule_change(old: list[CycleConfig], new: list[CycleConfig], progress: Progress) -> str | None:
    """None when `new` continues what `old` trained, "short" when `new` ends inside the trained part (nothing
    left to train), otherwise why `new` would rewrite trained epochs."""
    cur, done = progress.cycle, progress.cycle_epoch
    for i in range(min(cur + (done > 0), len(old))):  # the cycles that have trained epochs
        if i >= len(new):
            return "short"
        a, b = old[i], new[i]
        same = (a.lr, a.strategy, a.class_weights) == (b.lr, b.strategy, b.class_weights)
        if not same or (i < cur and a.epochs != b.epochs):  # the current cycle may grow
            return f"changes cycle {i + 1}, which has already trained"
    if 0 < done and cur < len(new) and new[cur].epochs < done:
        if len(new) == cur + 1:
            return "short"
        return f"gives cycle {cur + 1} {new[cur].epochs} epochs but {done} have already trained"
    return None


def _show(value: Any) -> str:
    """A config value as the user would write it in an override (cycles without their unset fields)."""
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        items = (", ".join(f"{k}: {x}" for k, x in v.items() if x is not None) for v in value)
        return "[" + ", ".join("{" + item + "}" for item in items) + "]"
    return repr(value)


def _changes(keys: list[tuple[str, Any, Any]]) -> str:
    return ", ".join(f"{k} ({_show(old)} -> {_show(new)})" for k, old, new in keys)


def check_resume_config(saved: Config, new: Config, progress: Progress, run_dir: str | os.PathLike[str]) -> bool:
    """Compare the config of a resumed run with the run's own config.yaml (`saved`).

    Raises RadvisionError naming every key outside RESUME_FREE_KEYS that differs, and the schedule keys when the
    new schedule rewrites trained epochs. Returns True when the new schedule ends before the epochs already
    trained: nothing is left to train, and config.yaml keeps the run's schedule.
    """
    old_flat, new_flat = flatten_config(with_absolute_paths(saved)), flatten_config(with_absolute_paths(new))
    changed = [(k, old_flat.get(k), v) for k, v in new_flat.items() if v != old_flat.get(k)]
    if new.data.classes is None:  # "every class the data has": checked against the run once the data is read
        changed = [c for c in changed if c[0] != "data.classes"]
    fixed = [c for c in changed if c[0] not in RESUME_FREE_KEYS and c[0] not in SCHEDULE_KEYS]
    schedule = _schedule_change(saved.resolved_cycles(), new.resolved_cycles(), progress)
    reason = ""
    if schedule not in (None, "short"):
        # the schedule keys that rewrite trained epochs; more optim.epochs alone would be allowed
        fixed += [c for c in changed if c[0] in SCHEDULE_KEYS
                  and not (c[0] == "optim.epochs" and c[2] is not None and c[1] is not None and c[2] >= c[1])]
        reason = f" (the new schedule {schedule}; to train on with other settings, keep the trained cycles and add one)"
    if fixed:
        raise RadvisionError(
            f"Cannot resume {str(run_dir)!r}: the config differs from its {CONFIG_FILE} in {_changes(fixed)}, which "
            f"decide what the finished epochs trained{reason}; start a new run instead (a different "
            "output.run_dir), or resume with the run's settings."
        )
    free = [c for c in changed if c[0] in RESUME_FREE_KEYS and c[0] != "output.run_dir"]  # the resume dir wins
    if free:
        logger.info("Resuming with changed settings: %s", _changes(free))
    return schedule == "short"
