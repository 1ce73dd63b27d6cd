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
    .run.lock            held by the process training into the folder (removed when it ends)
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import pandas as pd

from radvision.atomic import atomic_write, atomic_write_csv, nearest_existing
from radvision.errors import RadvisionError, first_line, some_names

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
LOCK_FILE = ".run.lock"  # flock-ed by the one process training into the folder; holds its pid and host


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
    from radvision.weights import without_cam_alias

    try:
        model.load_state_dict(without_cam_alias(state))
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

    def is_run(self) -> bool:
        """True for a radvision run folder, with or without a finished epoch: a run writes its config.yaml
        (a mapping with data, model and output sections) before its first epoch."""
        if self.has_run():
            return True
        try:
            import yaml

            saved = yaml.safe_load(self.file(CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            return False
        return isinstance(saved, dict) and {"data", "model", "output"} <= saved.keys()

    def check_target(self, key: str, fresh: bool = True) -> None:
        """Before any data is read: the path can be a run folder (not a file, nor under one) and, for a `fresh`
        run, is new, empty or a run already, never a folder of other files a run would write among.
        `key` names the setting in errors (output.run_dir, or the --resume folder)."""
        blocked = nearest_existing(self.path)
        if blocked is not None and not blocked.is_dir():
            where = "is a file" if blocked == self.path else f"cannot be made: {str(blocked)!r} is a file"
            raise RadvisionError(f"{key} {str(self.path)!r} {where}; give a folder path.")
        if not fresh or not self.path.is_dir() or self.is_run():
            return
        # hidden names (.DS_Store, .gitkeep) are never written over; an empty plots/ is a run's first step
        foreign = sorted(p.name for p in self.path.iterdir() if not p.name.startswith(".")
                         and not (p.name == PLOTS_DIR and p.is_dir() and not any(p.iterdir())))
        if foreign:
            raise RadvisionError(f"{key} {str(self.path)!r} is not a radvision run folder but holds other files "
                                 f"({some_names(foreign)}); give a new or empty folder.")

    def lock(self, key: str) -> RunLock:
        """Make the folder and lock it for this process until `RunLock.release` (see RunLock)."""
        made = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RadvisionError(f"{key} {str(self.path)!r} cannot be created ({exc.strerror or exc}); give a "
                                 "folder you can write to.") from None
        run_lock = RunLock(self.path, made)
        try:
            run_lock.acquire(key)
        except BaseException:
            run_lock.release()  # removes the folders made just now
            raise
        return run_lock

    def restart(self) -> None:
        """Drop what a run stopped before its first finished epoch left (a staged checkpoint, an orphaned best
        epoch of a half-cleared overwrite), so it trains from epoch 1 with nothing stale to load."""
        self._clear_outputs()

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


class RunLock:
    """An exclusive lock on a run folder while one process trains into it: two runs writing the same files
    would leave a mixture of both. fcntl.flock on LOCK_FILE, which the kernel drops when the process dies, so
    a killed run never leaves its folder locked. Without fcntl (Windows) or where the filesystem refuses
    flock the folder is not locked (debug log)."""

    def __init__(self, folder: Path, made: list[Path] | None = None):
        self.path = folder / LOCK_FILE
        self._made = list(made or [])  # folders made for the run: removed on release when nothing else went in
        self._fd: int | None = None

    def acquire(self, key: str) -> None:
        try:
            import fcntl
        except ImportError:
            logger.debug("No fcntl here: %s is not locked against a second run", self.path.parent)
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise RadvisionError(f"{key} {str(self.path.parent)!r} is not writable ({exc.strerror or exc}); "
                                     "give a folder you can write to.") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").split()  # "pid host", or not written yet
                os.close(fd)
                who = f" (pid {holder[0]})" if holder else ""
                if len(holder) > 1 and holder[1] != socket.gethostname():
                    who = f" (pid {holder[0]} on {holder[1]})"
                raise RadvisionError(f"{key} {str(self.path.parent)!r} is in use by another radvision training"
                                     f"{who}; wait for it to end, or train into another folder.") from None
            except OSError as exc:  # a filesystem without flock (ENOLCK, EOPNOTSUPP)
                os.close(fd)
                logger.debug("Cannot lock %s (%s); it is not locked against a second run", self.path, exc)
                return
            # the holder before us removes the file on release: a lock on a file no longer there locks nothing
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            self.path.unlink(missing_ok=True)  # while still held (see acquire)
            fcntl.flock(self._fd, fcntl.LOCK_UN)  # a DataLoader worker forked meanwhile shares the descriptor
            os.close(self._fd)
            self._fd = None
        for folder in self._made:  # deepest first
            try:
                folder.rmdir()
            except OSError:  # the run wrote into it (or someone else did): it stays
                break
        self._made = []
