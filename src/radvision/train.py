"""One `Trainer` for every radvision experiment.

Device placement, mixed precision and multi-GPU come from Hugging Face `accelerate` (start several processes
with `accelerate launch` or `torchrun`; nothing here is hand-rolled DDP). On top of it the Trainer adds what
the experiments need: cycles (e.g. frozen backbone, then full fine-tuning, each with its own LR and class
weights), early stopping and ReduceLROnPlateau on any monitored metric, a checkpoint after every epoch and
`resume` that never repeats a finished epoch, F1-optimal thresholds, test metrics and plots.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from radvision.atomic import atomic_write_csv
from radvision.config import (
    LOSS_MONITORS,
    LOWER_IS_BETTER,
    MULTICLASS,
    Config,
    CycleConfig,
    DataConfig,
    check_names_to_train,
    config_to_dict,
    load_run_config,
    outputs_per_class,
    save_config,
    with_absolute_paths,
)
from radvision.data.dataset import is_missing
from radvision.data.table import SPLITS
from radvision.errors import RadvisionError, did_you_mean, first_line
from radvision.resume import SCHEDULE_KEYS, Progress, check_resume_config
from radvision.rundir import (
    BEST_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    SKIPPED_FILE,
    STATE_FILE,
    THRESHOLDS_FILE,
    RunDir,
    RunLock,
    load_weights,
    save_weights,
)

logger = logging.getLogger(__name__)

__all__ = ["Trainer", "build_datasets", "build_loss", "build_optimizer", "build_train_loader", "check_resume_config",
           "check_training_config", "dataset_labels", "dataset_classes"]


# ------------------------------------------------------------------------------------------ data helpers


def dataset_classes(ds: Any) -> list[str] | None:
    """Class names a dataset knows (ImageDataset keeps its LabelTable), or None."""
    for owner in (ds, getattr(ds, "table", None), getattr(ds, "dataset", None)):
        names = getattr(owner, "classes", None) or getattr(owner, "class_names", None)
        if names:
            return list(names)
    inner = getattr(ds, "dataset", None)
    return dataset_classes(inner) if inner is not None and inner is not ds else None


def dataset_labels(ds: Any, decode: bool = True) -> np.ndarray | None:
    """(N, C) label matrix of a dataset, read from its table when it has one (no image decoding); without one,
    sample by sample, or None when `decode` is False (the labels are not worth decoding every image)."""
    table = getattr(ds, "table", None)
    if table is not None and hasattr(table, "labels"):
        return np.asarray(table.labels(), dtype=np.float32)
    if hasattr(ds, "labels") and callable(ds.labels):
        return np.asarray(ds.labels(), dtype=np.float32)
    if not decode:
        return None
    logger.info("Dataset has no label table; reading labels sample by sample")
    return np.stack([np.asarray(ds[i][1], dtype=np.float32) for i in range(len(ds))])


def build_datasets(cfg: Config) -> tuple[Dataset, Dataset, Dataset | None, list[str]]:
    """(train, valid, test or None, class names) from the data section of a config: the tables of
    `split_tables`, with the config's transforms, optional uint8 cache and on_error policy."""
    from radvision import data as rvdata
    from radvision.data.transforms import preset_fit

    d = cfg.data
    parts, table = split_tables(cfg)
    cache = None
    if d.cache_dir:
        cache = rvdata.build_cache(table, d.image_size, d.cache_dir, channels=d.channels, on_error=d.on_error,
                                   fit=preset_fit(d.transforms), progress=cfg.runtime.progress)

    sets = make_datasets(cfg, parts, cache)
    for needed in ("train", "valid", *(["test"] if "test" in sets else [])):  # on_error=skip may have emptied one
        if len(sets.get(needed, ())) == 0:  # type: ignore[arg-type]
            raise RadvisionError(f"No readable {needed!r} image is left after skipping unreadable ones.")
    logger.info("Data: %d train, %d valid, %d test images, %d classes", len(sets["train"]), len(sets["valid"]),
                len(sets["test"]) if "test" in sets else 0, len(table.classes))
    return sets["train"], sets["valid"], sets.get("test"), list(table.classes)


def split_tables(cfg: Config) -> tuple[dict[str, Any], Any]:
    """({split: LabelTable} for train, valid and test when there is one, the whole LabelTable) as a config's
    data section gives them, before any image is decoded; ``train`` is after ``data.downsample``.

    A source that defines its own splits (a `split` column: NIH sample, MIMIC, folders) keeps them, and
    when it has train but no valid rows, valid is split off train by patient with the `data.split` train /
    valid ratio; otherwise patients are split by `data.split` fractions, so no patient crosses splits.
    """
    from radvision import data as rvdata

    d = cfg.data
    table = _read_table(cfg)
    if d.frontal_only and d.dataset not in _READERS_WITH_FRONTAL_FILTER:
        if "view" in table.frame:
            table = _drop_lateral(table)
        else:
            logger.warning("data.frontal_only changes nothing for dataset %r: its table has no view column, so "
                           "every image is kept", d.dataset)
    if d.classes and list(table.classes) != list(d.classes):
        table = table.select(d.classes)
    if len(table.frame) == 0:
        raise RadvisionError(f"The {d.dataset} label table ({d.csv or d.root}) holds no images.")
    listed_again = table.frame["path"].astype(str).duplicated()
    if listed_again.any():  # kept (one row per input row), but each copy weighs as one more image
        logger.warning("the %s label table lists %d image file(s) more than once (first: %s); every row is used, "
                       "so such an image counts more in training and scoring; drop the duplicates if that is not "
                       "meant", d.dataset, int(listed_again.sum()), table.frame["path"].astype(str)[listed_again].iloc[0])
    source_split = "split" in table.frame and table.frame["split"].notna().all()
    if "split" in table.frame and not source_split and table.frame["split"].notna().any():
        unassigned = table.frame.loc[table.frame["split"].isna(), "path"]
        logger.warning("%d of %d images have no split in the source (first: %s), so its splits are not used: "
                       "patients are split by data.split instead.", len(unassigned), len(table.frame),
                       unassigned.iloc[0])
    if source_split:
        parts = rvdata.source_splits(table)
        if len(parts.get("train", ())) and not len(parts.get("valid", ())):
            # e.g. CheXpert's train.csv or NIH's official train_val list: carve valid out of train by patient
            tr, va = d.split["train"], d.split["valid"]
            source_train = parts["train"]
            parts.update(rvdata.patient_split(source_train, {"train": tr / (tr + va), "valid": va / (tr + va)},
                                              cfg.runtime.seed))
            patients = source_train.frame["patient_id"].nunique() if "patient_id" in source_train.frame else "?"
            rvdata.require_train_and_valid(parts, f"Carving train and valid out of the source's {len(source_train)} "
                                                  f"train images ({patients} patients) by data.split {d.split}")
        elif d.split != DataConfig().split:  # given, but the source's own splits win
            logger.warning("data.split %s is not used: the source names every image's split (its split column or "
                           "official split files)", d.split)
    else:
        parts = rvdata.patient_split(table, d.split, cfg.runtime.seed)
    for needed in ("train", "valid"):
        if needed not in parts or len(parts[needed]) == 0:
            if source_split:  # data.split is not consulted when the source names every image's split
                found = ", ".join(f"{k} {len(v)}" for k, v in parts.items() if len(v)) or "none"
                raise RadvisionError(f"The source's own splits (its split column or official split files) hold no "
                                     f"{needed!r} images (found: {found}); data.split applies only when the source "
                                     "names no split.")
            raise RadvisionError(f"The data has no {needed!r} rows; give data.split fractions for train and valid.")
    if d.downsample:
        parts["train"] = rvdata.downsample(parts["train"], d.downsample, cfg.runtime.seed)
        if not len(parts["train"]):
            raise RadvisionError(f"data.downsample {d.downsample} leaves no train image; lower its fractions.")
    out = {name: parts[name] for name in SPLITS if name in parts and len(parts[name])}
    _warn_shared_images(out)
    return out, table


def _warn_shared_images(parts: dict[str, Any]) -> None:
    """Warn when one image file is in train and in another split: a patient split cannot see it when the
    table lists the file under two patient ids (two merged tables that number patients apart)."""
    train = set(parts["train"].frame["path"].astype(str))
    for name, table in parts.items():
        if name == "train":
            continue
        shared = [p for p in table.frame["path"].astype(str) if p in train]
        if shared:
            logger.warning("%d %s image file(s) are also train images (first: %s): the table lists them under "
                           "more than one patient_id, so the %s figures are not held out; give each file one "
                           "patient id or drop the duplicates.", len(shared), name, shared[0], name)


def _own_dataset_classes(cfg: Config, train_ds: Dataset, valid_ds: Dataset, test_ds: Dataset | None = None
                         ) -> list[str]:
    """The class names of datasets handed to fit(), after checking that they fit the config: the model is
    built, and predict / explain later read images, from the config alone."""
    named = dataset_classes(train_ds)
    if cfg.data.classes and named and list(cfg.data.classes) != named:
        raise RadvisionError(f"data.classes {list(cfg.data.classes)} differs from the datasets' classes {named}; "
                             "fit() trains on the datasets' label columns as they are, so leave data.classes "
                             "unset (or equal), or select the classes when building the datasets.")
    class_names = list(cfg.data.classes or named or [])
    if not class_names:
        raise RadvisionError("The datasets do not name their classes; set data.classes in the config.")
    if len(valid_ds) == 0:  # type: ignore[arg-type]
        raise RadvisionError("The valid dataset passed to fit() is empty; it chooses the epoch and the thresholds.")
    if test_ds is not None and len(test_ds) == 0:  # type: ignore[arg-type]  # found only after training, before
        raise RadvisionError("The test dataset passed to fit() is empty (no readable image left?); pass test_ds=None "
                             "to train without test metrics.")
    want = (cfg.model.in_chans, cfg.data.image_size, cfg.data.image_size)  # resolved by the Trainer
    for split, ds in (("train", train_ds), ("valid", valid_ds), ("test", test_ds)):
        if ds is None:
            continue
        own = dataset_classes(ds)
        if split != "train" and own and own != class_names:
            raise RadvisionError(f"The {split} dataset's classes {own} differ from the train dataset's {class_names}; "
                                 "every split must have the same label columns in the same order (its labels would "
                                 "be scored against the wrong classes).")
        _check_dataset_item(ds, split, want, class_names)
    return class_names


def _check_dataset_item(ds: Dataset, split: str, want: tuple[int, int, int], class_names: list[str]) -> None:
    """One item of a dataset given to fit(): an (image, labels) pair of the config's image shape and one label
    per class."""
    item = ds[0]
    if not isinstance(item, tuple | list) or len(item) != 2:
        raise RadvisionError(f"fit() needs dataset items (image, labels); the {split} dataset gives "
                             f"{type(item).__name__} of {len(item) if isinstance(item, tuple | list) else 1} "
                             "(build ImageDataset without return_meta).")
    image, labels = item
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) != 3 or shape != want:
        raise RadvisionError(f"The {split} dataset gives images of shape {shape} but the config says {want} "
                             "(model.in_chans / data.channels, data.image_size); set them to match, so that "
                             "predict and explain prepare images the way the model was trained.")
    if np.asarray(labels).size != len(class_names):
        raise RadvisionError(f"The {split} dataset gives {np.asarray(labels).size} labels per image but there are "
                             f"{len(class_names)} classes ({', '.join(class_names)}).")


def _bad_label(y: np.ndarray, class_names: list[str], what: str, uncertain: bool
               ) -> tuple[float, str, int, str] | None:
    """The first label that is not 1 / 0 / NaN (or -1 when `uncertain`): (value, class, row, what is allowed);
    a table of the wrong width is an error naming `what` ("training", "valid" ...)."""
    if y.ndim != 2 or y.shape[1] != len(class_names):
        raise RadvisionError(f"The {what} labels have shape {y.shape} but there are {len(class_names)} classes.")
    bad = ~np.isnan(y) & (y != 0) & (y != 1) & ((y != -1) | (not uncertain))
    if not bad.any():
        return None
    row, col = (int(i[0]) for i in np.nonzero(bad))
    return float(y[row, col]), class_names[col], row, "1, 0, -1 (uncertain) or blank" if uncertain else "1, 0 or blank"


def _check_split_labels(y: np.ndarray | None, split: str, class_names: list[str], uncertain: bool) -> None:
    """A valid / test label table (when the dataset has one) holds 1 / 0 / blank (and -1 under U-MultiClass)."""
    found = _bad_label(y, class_names, split, uncertain) if y is not None else None
    if found:
        value, name, row, allowed = found
        raise RadvisionError(f"The {split} label {value:g} for {name!r} (row {row}) is not {allowed}; apply the same "
                             "uncertainty policy as for train.")


def check_training_labels(y: np.ndarray, class_names: list[str], resuming: bool = False, uncertain: bool = False) -> None:
    """Training targets are 1 / 0 / NaN, one column per class, and -1 (uncertain) too when `uncertain` (policy
    U-MultiClass, whose 3-way loss learns it).
    A class no training image labels is refused, or only warned about when resuming a run that trained so."""
    found = _bad_label(y, class_names, "training", uncertain)
    if found:
        value, name, row, allowed = found
        raise RadvisionError(f"Training label {value:g} for {name!r} (row {row}): labels must be {allowed}; map "
                             "uncertain (-1) labels with policy U-Ignore, U-Zeros or U-Ones, or learn them as a third "
                             "state with U-MultiClass.")
    unknown = [c for c, known in zip(class_names, (~np.isnan(y)).sum(axis=0), strict=True) if known == 0]
    if len(y) and unknown:  # e.g. a report labeler's classes that no report of this corpus mentions
        known = [c for c in class_names if c not in unknown]
        leave_out = f"Leave them out with data.classes (e.g. data.classes=[{', '.join(known)}]). " if known else ""
        message = (
            f"No training image has a label for {', '.join(map(repr, unknown[:5]))}"
            f"{f' (and {len(unknown) - 5} more)' if len(unknown) > 5 else ''}: every value is masked (blank under "
            "data.unmentioned=masked, or uncertain under policy U-Ignore), so the model would output noise for "
            f"them. {leave_out}Count blanks as negatives with data.unmentioned=negative, or map uncertain labels "
            "with U-Zeros / U-Ones."
        )
        if not resuming:
            raise RadvisionError(message)
        logger.warning("%s (The run was saved before radvision refused this, so it goes on.)", message)


_NO_POSITIVES = {
    "train": "the model cannot learn to find them",
    "valid": "their AUROC is undefined (NaN), they do not count in the monitored mean and their thresholds stay 0.5",
    "test": "their test AUROC and recall are undefined (NaN)",
}


def _warn_without_positives(split: str, y: np.ndarray, class_names: list[str]) -> None:
    """A class with no positive label in a split trains or scores as nothing; say so once, by name."""
    if len(y) == 0:
        return
    none = [c for c, n in zip(class_names, (y == 1).sum(axis=0), strict=True) if n == 0]
    if none:
        logger.warning("No positive label for %s among the %d %s images: %s", ", ".join(none), len(y), split,
                       _NO_POSITIVES[split])


def make_datasets(cfg: Config, tables: dict[str, Any], cache: Any = None) -> dict[str, Dataset]:
    """One ImageDataset per non-empty split table, with the config's transforms (augmenting only
    "train"), channels, optional uint8 cache and on_error policy."""
    from radvision import data as rvdata

    d = cfg.data
    return {
        name: rvdata.ImageDataset(
            t, rvdata.build_transforms(d.transforms, d.image_size, train=name == "train", channels=d.channels),
            cache=cache, on_error=d.on_error,
        )
        for name, t in tables.items()
        if len(t)
    }


# readers whose labels may be -1 (uncertain) or blank (unmentioned): data.policy and data.unmentioned apply
_READERS_WITH_UNCERTAIN_LABELS = ("chexpert", "mimic", "csv")
# readers that apply data.frontal_only themselves, from their own view columns
_READERS_WITH_FRONTAL_FILTER = ("chexpert", "mimic", "openi")


def _drop_lateral(table: Any) -> Any:
    """data.frontal_only for a table with a `view` column: keep PA / AP (e.g. "AP SUPINE") / FRONTAL views and
    blank ones (nothing says they are lateral); drop the rest, saying how many and which views."""
    view = table.frame["view"].astype("string").str.strip().str.upper()
    keep = (view.isna() | (view == "") | view.str.match(r"^(PA|AP)\b") | (view == "FRONTAL")).fillna(True)
    keep = keep.to_numpy(dtype=bool)
    if keep.all():
        return table
    dropped = view[~keep].value_counts().head(5).to_dict()
    logger.info("data.frontal_only: dropping %d of %d rows whose view is not frontal (%s)", int((~keep).sum()),
                len(keep), ", ".join(f"{v}: {n}" for v, n in dropped.items()))
    return table.subset(keep)


def _read_table(cfg: Config) -> Any:
    from radvision import data as rvdata

    d = cfg.data
    if d.dataset not in _READERS_WITH_UNCERTAIN_LABELS:  # their labels are 1 / 0 (or unknown), never -1
        if d.policy == MULTICLASS:
            raise RadvisionError(f"data.policy U-MultiClass trains an 'uncertain' output per class, but dataset "
                                 f"{d.dataset!r} has no uncertain (-1) labels; it applies to "
                                 f"{', '.join(_READERS_WITH_UNCERTAIN_LABELS)}. Leave data.policy at its default.")
        if d.policy != "U-Ones":
            logger.warning("data.policy=%s changes nothing for dataset %r: policies apply to the uncertain (-1) "
                           "labels of %s", d.policy, d.dataset, ", ".join(_READERS_WITH_UNCERTAIN_LABELS))
    if d.unmentioned != "masked" and d.dataset not in _READERS_WITH_UNCERTAIN_LABELS:
        logger.warning("data.unmentioned=%s changes nothing for dataset %r: it applies to the blank labels of "
                       "chexpert, mimic and csv tables (Open-i's unindexed studies stay masked)", d.unmentioned,
                       d.dataset)
    if d.dataset == "nih_sample":
        from radvision.sample import load_nih_sample

        return load_nih_sample(classes=d.classes)
    # with on_error=skip a missing file is left to the image datasets, which skip it with the unreadable ones
    # and list it (split, path, error); "drop" here would leave it out of that list
    missing = "ignore" if d.on_error == "skip" else "raise"
    if d.dataset == "csv":
        if d.csv is None:
            raise RadvisionError("data.csv is not set; dataset 'csv' needs the path of a CSV with an image path "
                                 "column (data.path_column, default 'path').")
        return rvdata.read_csv_table(d.csv, root=d.root, path_column=d.path_column, label_columns=d.classes,
                                     patient_column=d.patient_column, policy=d.policy, missing=missing,
                                     unmentioned=d.unmentioned)
    if d.root is None:
        raise RadvisionError(f"data.root is not set; dataset {d.dataset!r} needs the directory of its data.")
    if d.dataset == "nih":
        return rvdata.read_nih(d.root, csv=d.csv, classes=d.classes, missing=missing)
    if d.dataset == "chexpert":
        return rvdata.read_chexpert(d.root, frontal_only=d.frontal_only, policy=d.policy,
                                    classes=d.classes, missing=missing, csv=d.csv, unmentioned=d.unmentioned)
    if d.dataset == "mimic":
        return rvdata.read_mimic(d.root, policy=d.policy, classes=d.classes, frontal_only=d.frontal_only,
                                 missing=missing, unmentioned=d.unmentioned, csv=d.csv)
    if d.dataset == "openi":
        return rvdata.read_openi(d.root, reports_csv=d.csv, frontal_only=d.frontal_only, classes=d.classes,
                                 missing=missing)
    if d.dataset == "imageclef":
        if d.csv is None:
            raise RadvisionError("data.csv is not set; dataset 'imageclef' needs the concept file (data.csv).")
        return rvdata.read_imageclef(d.csv, d.root, top_k=d.concept_top_k, min_frequency=d.concept_min_frequency,
                                     classes=d.classes, missing=missing, sep=d.concept_sep)
    return rvdata.read_folder(d.root, classes=d.classes)


# ------------------------------------------------------------------------------------- model / optimizer


def _check_batch_norm_batches(model: torch.nn.Module, cfg: Config, cycles: list) -> None:
    """With one image per batch, a BatchNorm layer that sees one value per channel (a 1 x 1 map, or a BatchNorm1d
    head) fails in torch mid-epoch: try one such batch now (BatchNorm statistics restored), so the error comes
    before the run folder is written. A backbone frozen in every cycle keeps its BatchNorm layers in eval mode."""
    if cfg.optim.batch_size >= 2:
        return
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    was_training = model.training
    model.train()
    if all(c.strategy == "frozen" for c in cycles) and hasattr(model, "backbone"):
        model.backbone.eval()
    size = cfg.data.image_size
    try:
        with torch.no_grad():
            model(torch.zeros(1, cfg.model.in_chans, size, size))
    except ValueError as err:
        if "Expected more than 1 value per channel" not in str(err):
            raise
        raise RadvisionError(f"optim.batch_size is 1, but at {size} px a BatchNorm layer of the model sees one value "
                             "per channel, which torch cannot train on; set optim.batch_size to 2 or more (or a "
                             "larger data.image_size).") from None
    finally:
        for m, state in zip(norms, saved, strict=True):
            m.load_state_dict(state)
        model.train(was_training)


def build_model_from_config(cfg: Config, class_names: list[str],
                            pretrained: str | list[str | None] | None = None) -> torch.nn.Module:
    """The ImageClassifier a config describes (`pretrained`, used in place of model.pretrained, is None to
    rebuild a trained run, or one value / one per backbone)."""
    from radvision.heads import build_model

    m = cfg.model
    head_kwargs: dict[str, Any] = {}
    if m.hidden is not None and m.head == "mlp":  # other heads have no hidden layers (load_config warns)
        head_kwargs["hidden"] = [m.hidden] if isinstance(m.hidden, int) else list(m.hidden)
    if m.dropout is not None:
        head_kwargs["dropout"] = m.dropout
    return build_model(
        m.backbone, len(class_names), class_names, head=m.head, pretrained=pretrained,
        in_chans=m.in_chans or cfg.data.channels, input_norm=m.input_norm,
        outputs_per_class=outputs_per_class(cfg), **head_kwargs,
    )


def build_optimizer(cfg: Config, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Optimizer over the trainable parameters, the backbone at `lr * backbone_lr_mult`."""
    from radvision.finetune import param_groups

    groups = param_groups(model, lr, backbone_lr_mult=cfg.model.resolved_backbone_lr_mult(),
                          weight_decay=cfg.optim.weight_decay)
    # frozen parameters stay in the groups (no gradient, so the optimizer skips them): layerwise unfreezing
    # then needs no new optimizer
    if not any(p.requires_grad for g in groups for p in g["params"]):
        raise RadvisionError("No trainable parameters: the strategy froze the whole model; use 'full' or 'layerwise'.")
    name = cfg.optim.name
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.optim.momentum)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr)


def _class_weight_vector(spec: Any, class_names: list[str], y: np.ndarray,
                         key: str = "loss.class_weights") -> torch.Tensor | None:
    from radvision.data import class_weights

    if spec is None:
        return None
    if spec == "auto":
        return torch.as_tensor(class_weights(y, class_names=class_names))
    unknown = [k for k in spec if k not in class_names]
    if unknown:
        raise RadvisionError(f"{key} names unknown class {unknown[0]!r}{did_you_mean(unknown[0], class_names)}; "
                             f"classes are {', '.join(class_names)}.")
    negative = [k for k, v in spec.items() if not float(v) >= 0]
    if negative:
        raise RadvisionError(f"{key} gives {negative[0]!r} the weight {spec[negative[0]]!r}; weights must be "
                             "zero or more.")
    vector = torch.tensor([float(spec.get(c, 1.0)) for c in class_names], dtype=torch.float32)
    if not vector.any():
        raise RadvisionError(f"{key} gives every class the weight 0, so the loss would be 0 and nothing "
                             "would train; give at least one class a positive weight.")
    return vector


def build_loss(cfg: Config, class_names: list[str], y: np.ndarray, class_weights: Any) -> torch.nn.Module:
    """The configured loss; pos_weight / class weights computed from the training labels when 'auto'."""
    from radvision.data import pos_weight as pos_weight_of
    from radvision.losses import create_loss

    pos_weight = None
    if cfg.loss.pos_weight == "auto":
        pos_weight = torch.as_tensor(pos_weight_of(y, class_names=class_names))
    return create_loss(cfg.loss.name, pos_weight=pos_weight,
                       class_weights=_class_weight_vector(class_weights, class_names, y), gamma=cfg.loss.gamma,
                       alpha=cfg.loss.alpha, outputs_per_class=outputs_per_class(cfg))


def check_training_config(cfg: Config, image_size: bool = True) -> None:
    """What `Trainer.fit` checks of a fresh run's config before it reads any data: backbone names and the
    image sizes they take, the head, `model.pretrained` (weights files; ImageNet weights in no cache while
    downloads are disabled) and the transforms preset. For scripts that do slow work before training."""
    _check_model_config(cfg, image_size=image_size)
    check_names_to_train(cfg)


def _check_model_config(cfg: Config, image_size: bool = True) -> None:
    """What the model section alone can get wrong: unknown backbones and (when the config's data are used)
    images smaller than a backbone accepts."""
    from radvision.backbones import get_spec, small_input_backbones

    names = [cfg.model.backbone] if isinstance(cfg.model.backbone, str) else cfg.model.backbone
    if cfg.model.head == "fpn" and len(names) > 1:
        raise RadvisionError(f"model.head 'fpn' works with one backbone, not {len(names)} ({', '.join(names)}); "
                             "use model.head linear or mlp for several.")
    for name in names:
        spec = get_spec(name)
        size = cfg.data.image_size
        if image_size and spec.fixed_size and size != spec.fixed_size:
            raise RadvisionError(f"Backbone {name} takes only {spec.fixed_size}x{spec.fixed_size} images (a fixed "
                                 f"input size), got data.image_size {size}; set data.image_size={spec.fixed_size} "
                                 "or pick another backbone.")
        if image_size and size < spec.min_size:
            others = small_input_backbones(size, exclude=name)
            pick = f", or pick a backbone that takes {size}x{size} images such as {' or '.join(others)}" if others else ""
            raise RadvisionError(f"Backbone {name} needs data.image_size of at least {spec.min_size}, got {size}; "
                                 f"raise data.image_size{pick}.")
    if cfg.model.head == "fpn" and image_size:  # a backbone without 2-D maps (a ViT's tokens) failed at the first batch
        _check_feature_maps(names[0], cfg)


def _check_feature_maps(name: str, cfg: Config) -> None:
    """The fpn head reads the backbone's multi-scale maps: one pass on the meta device (shapes only, no weights
    nor memory) says whether there are any, before data are read."""
    from radvision.backbones import create_backbone

    size, chans = cfg.data.image_size, cfg.model.in_chans or cfg.data.channels
    try:
        with torch.device("meta"):
            create_backbone(name, in_chans=chans).eval().feature_maps(torch.zeros(1, chans, size, size))
    except RadvisionError:
        raise
    except Exception as err:  # an operation without a meta kernel: the first batch will tell
        logger.debug("fpn maps of %s not checked ahead (%s)", name, first_line(err))


def build_train_loader(cfg: Config, train_ds: Dataset, y_train: np.ndarray, class_names: list[str] | None = None,
                       processes: int = 1, **loader_kw: Any) -> tuple[DataLoader, Any]:
    """The training DataLoader and its weighted sampler (None unless data.sampler is 'weighted').

    Shuffling draws from torch's RNG, which set_seed(seed + epoch) fixes, so a resumed epoch shuffles exactly
    as it would have without the interruption (with several processes accelerate shuffles with a generator of
    its own, which the Trainer seeds the same way every epoch). The weighted sampler
    (`radvision.data.weighted_sampler`, with replacement) has its own generator, which the Trainer re-seeds every epoch for the same reason; with several
    processes accelerate keeps a custom sampler, synchronises that generator from the main process and gives
    each process its share of the batches, so together they draw one epoch's sample.
    """
    # a last batch of one image cannot train BatchNorm ("expected more than 1 value per channel"): drop it then.
    # Several processes: accelerate pads the last batch instead, and drop_last there would drop whole batches.
    drop_last = processes == 1 and len(train_ds) % int(loader_kw.get("batch_size") or 1) == 1 and len(train_ds) > 1
    if drop_last:
        logger.info("%d training images in batches of %s leave one image over: each epoch leaves out one (a "
                    "different one each epoch), since BatchNorm cannot train on a batch of one", len(train_ds),
                    loader_kw.get("batch_size"))
    if cfg.data.sampler == "none":
        return DataLoader(train_ds, shuffle=True, drop_last=drop_last, **loader_kw), None
    from radvision.data import weighted_sampler

    sampler = weighted_sampler(y_train, seed=cfg.runtime.seed, class_names=class_names)
    logger.info("Weighted sampling: %d training images drawn with replacement per epoch, rare labels more often",
                len(y_train))
    return DataLoader(train_ds, sampler=sampler, drop_last=drop_last, **loader_kw), sampler


# ----------------------------------------------------------------------------------------------- trainer


def _ddp_kwargs(cfg: Config) -> list[Any]:
    """DDP options: the fpn head reads feature maps only, so a backbone's layers after its last map (e.g.
    mobilenet_v3's final conv) get no gradient; DDP must be told to expect that or it stops with an error."""
    from accelerate.utils import DistributedDataParallelKwargs

    return [DistributedDataParallelKwargs(find_unused_parameters=True)] if cfg.model.head == "fpn" else []


def _first_process() -> bool:
    """The main process, before an Accelerator exists (torchrun and accelerate launch set RANK)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def _mixed_precision(amp: str, use_cuda: bool) -> str:
    if not use_cuda:
        if amp in ("bf16", "fp16"):
            logger.warning("runtime.amp=%s needs a CUDA device; training in full precision on CPU", amp)
        return "no"
    if amp == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return amp


class Trainer:
    """Train an image classifier from a `Config`; `fit()` returns the run directory.

    `Trainer(cfg).fit()` builds datasets from `cfg.data`; `Trainer(cfg).fit(train_ds, valid_ds, test_ds)` trains
    on datasets you built (items are `(image, labels)` with NaN for unknown labels). `resume=RUN_DIR`
    continues an earlier run from its last finished epoch: the config may add epochs or cycles and change the
    keys in RESUME_FREE_KEYS; any other difference from RUN_DIR/config.yaml stops (check_resume_config).
    The trainer keeps its own copy of `config` (`trainer.config`): later changes to the caller's do not reach it.
    """

    def __init__(self, config: Config, *, resume: str | os.PathLike[str] | None = None):
        if not isinstance(config, Config):
            raise RadvisionError(f"Trainer needs a radvision Config, not a {type(config).__name__}; build one with "
                                 "radvision.config.load_config(path, overrides) or config_from_dict(mapping).")
        config = copy.deepcopy(config)  # the trainer's own snapshot: the caller may reuse or change theirs
        if config.model.in_chans is None:  # a Config built in Python: resolved as config_from_dict does
            config.model.in_chans = config.data.channels
        self.config = config
        self.resume = Path(resume) if resume is not None else None
        self.run = RunDir(self.resume if self.resume is not None else config.output.run_dir)
        self.mode = self._mode()
        self.history: list[dict[str, Any]] = []
        self.model: torch.nn.Module | None = None
        self.class_names: list[str] = []
        self.sampler: Any = None  # the weighted sampler of the train loader (data.sampler=weighted)
        self._saved_config: Config | None = None  # the resumed run's config.yaml
        self._saved_state: dict[str, Any] = {}  # the resumed run's trainer_state.json, read once
        self._overwrite_pending = False  # an old run in the directory waits to be replaced (output.overwrite)
        self._monitor_warned = False  # the "monitored value is undefined" warning is given once
        self._train_cardinality: float | None = None  # mean labels per training image (thresholds.cardinality)
        self._lock: RunLock | None = None  # held on the run folder while fit() runs (main process)

    # -- public -------------------------------------------------------------------------------------
    def fit(self, train_ds: Dataset | None = None, valid_ds: Dataset | None = None,
            test_ds: Dataset | None = None) -> Path:
        try:
            return self._fit(train_ds, valid_ds, test_ds)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _fit(self, train_ds: Dataset | None, valid_ds: Dataset | None, test_ds: Dataset | None) -> Path:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.config
        if (train_ds is None) != (valid_ds is None):
            raise RadvisionError("Pass both train and valid datasets to fit(), or neither to read them from the config.")
        # everything the config alone can tell fails here, before minutes of reading and caching images and
        # before an old run in the directory is touched
        _check_model_config(cfg, image_size=train_ds is None)
        if self.resume is None:  # a resumed run's own names were taken when it started
            check_names_to_train(cfg)
        if train_ds is None and cfg.data.cache_dir:
            from radvision.data.cache import check_cache_dir

            check_cache_dir(cfg.data.cache_dir)
        use_cuda = cfg.runtime.device != "cpu" and torch.cuda.is_available()
        if cfg.runtime.device == "cuda" and not torch.cuda.is_available():
            raise RadvisionError("runtime.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'.")
        self._claim_run_dir()
        short = self._check_resume()
        if self.resume is None and not any(c.epochs for c in cfg.resolved_cycles()):
            where = "every cycle has epochs: 0" if cfg.cycles else "optim.epochs is 0"
            raise RadvisionError(f"Nothing to train: {where}; set optim.epochs (or a cycle's epochs) to 1 or more.")
        if self.resume is None and self.run.has_run() and not cfg.output.overwrite:
            self.run.prepare(resume=False)  # raises: the directory already holds a run
        own_datasets = train_ds is not None
        if train_ds is None:
            train_ds, valid_ds, test_ds, class_names = build_datasets(cfg)
        else:
            class_names = _own_dataset_classes(cfg, train_ds, valid_ds, test_ds)
        self.class_names = list(class_names)
        self._check_classes()
        y_train = dataset_labels(train_ds)
        # a run saved before classes without training labels were refused may have trained one: let it go on
        check_training_labels(y_train, self.class_names,
                      resuming=self.resume is not None and not self._saved_state.get("labels_checked"),
                      uncertain=outputs_per_class(cfg) > 1)
        if own_datasets:  # the readers' valid / test tables went through the same policy as train
            for split, ds in (("valid", valid_ds), ("test", test_ds)):
                if ds is not None:
                    _check_split_labels(dataset_labels(ds, decode=False), split, self.class_names,
                                        outputs_per_class(cfg) > 1)
        for split, ds in (("train", train_ds), ("valid", valid_ds), ("test", test_ds)):
            y = y_train if ds is train_ds else dataset_labels(ds, decode=False) if ds is not None else None
            if y is not None:
                _warn_without_positives(split, y, self.class_names)
        # an old run that output.overwrite replaces is cleared only when the first epoch is saved, so an
        # unreadable image met in that epoch does not cost the old run
        self._overwrite_pending = self.resume is None and self.run.has_run()

        acc = Accelerator(cpu=not use_cuda, mixed_precision=_mixed_precision(cfg.runtime.amp, use_cuda),
                          kwargs_handlers=_ddp_kwargs(cfg))
        self.accelerator = acc
        set_seed(cfg.runtime.seed)

        progress = self._load_progress()
        # set again once this call has trained every epoch it was asked for (and written its outputs)
        progress.finished, progress.outputs_written = False, False
        cycles = cfg.resolved_cycles()
        start_cycle, start_epoch = self._start_point(progress, cycles)
        done = self.resume is not None and start_cycle >= len(cycles)
        raw = build_model_from_config(cfg, self.class_names, pretrained=cfg.model.pretrained
                                      if progress.epoch == 0 else None)
        if progress.epoch > 0:
            load_weights(raw, self.run.file(MODEL_FILE))
            logger.info("Resuming %s after epoch %d", self.run.path, progress.epoch)
        _check_batch_norm_batches(raw, cfg, cycles)
        if not self._overwrite_pending:  # only now: a model that cannot be built (a bad weight file) leaves no folder
            self.run.prepare(resume=self.resume is not None)
            self._write_config(keep_schedule=done)  # a resume that trains nothing keeps the recorded schedule
        if cfg.runtime.channels_last:
            raw = raw.to(memory_format=torch.channels_last)
        self.model = raw

        from radvision.data import label_cardinality

        self._train_cardinality = label_cardinality(y_train)
        loader_kw = {"batch_size": cfg.optim.batch_size, "num_workers": cfg.optim.num_workers, "pin_memory": use_cuda,
                     # workers start afresh each epoch: their seeds then come from set_seed(seed + epoch), so a
                     # resumed run draws the same augmentations (persistent workers carry their RNG along)
                     "persistent_workers": False}
        train_loader, self.sampler = build_train_loader(cfg, train_ds, y_train, self.class_names,
                                                        processes=acc.num_processes, **loader_kw)
        # validation draws nothing at random: its workers may live across epochs
        valid_loader = DataLoader(valid_ds, shuffle=False, **{**loader_kw, "persistent_workers": cfg.optim.num_workers > 0})
        train_loader, valid_loader = acc.prepare(train_loader, valid_loader)

        if progress.epoch > 0 and start_epoch == 0 and cfg.schedule.restore_best and self.run.file(BEST_FILE).is_file():
            load_weights(raw, self.run.file(BEST_FILE))  # a new cycle starts from the best weights so far
        for ci in range(start_cycle, len(cycles)):
            cycle = cycles[ci]
            first = start_epoch if ci == start_cycle else 0
            if first >= cycle.epochs:
                continue
            if ci != progress.cycle or first == 0:
                progress.cycle, progress.cycle_epoch, progress.stopped_early, progress.bad_epochs = ci, 0, False, 0
            self._run_cycle(ci, cycle, first, progress, train_loader, valid_loader, y_train)
        if done:
            self._log_nothing_to_train(progress, cycles, short)
        self._open_overwritten_run()  # no epoch trained: the old run is replaced now, before restore_best looks

        if cfg.schedule.restore_best and self.run.file(BEST_FILE).is_file():
            load_weights(raw, self.run.file(BEST_FILE))
            logger.info("Restored the best epoch (%s) by %s", progress.best_epoch, self._monitor_name())
        elif cfg.schedule.restore_best:
            logger.warning("No epoch had a defined %s on the valid split, so there is no best epoch to restore; "
                           "the run keeps the last epoch's weights.", self._monitor_name())
        if acc.is_main_process:
            # its own tag: the last epoch's staged files keep theirs until trainer_state.json is rewritten
            staged = [save_weights(raw, self.run.staged(MODEL_FILE, f"{progress.epoch}-final")).name]
            progress.finished, progress.outputs_written = True, False
            self._save_state(progress, staged)
            self.run.promote(staged)
        self._finish(valid_loader, test_ds)
        self._write_skipped_list({"train": train_ds, "valid": valid_ds, "test": test_ds})
        if acc.is_main_process:  # the state now says the folder is complete, and names no staged file
            progress.outputs_written = True
            self._save_state(progress)
        acc.wait_for_everyone()
        logger.info("Run finished: %s", self.run.path)
        return self.run.path

    # -- setup --------------------------------------------------------------------------------------
    def _mode(self) -> str:
        s = self.config.schedule
        if s.mode != "auto":
            return s.mode
        return "min" if s.monitor in LOWER_IS_BETTER else "max"

    def _claim_run_dir(self) -> None:
        """Before any data is read: the run folder can be made, is no folder of the user's files, and no other
        process trains into it (a lock held until fit() returns; only the main process of several takes it)."""
        key = "output.run_dir" if self.resume is None else "The --resume folder"
        self.run.check_target(key, fresh=self.resume is None)
        if self.resume is not None and not self.run.path.is_dir():
            return  # _check_resume says there is no run there
        if _first_process():
            self._lock = self.run.lock(key)

    def _check_resume(self) -> bool:
        """Before any data is read: the resume directory holds a run and the config fits it (see
        check_resume_config). True when the config's schedule ends before the trained epochs."""
        if self.resume is None:
            return False
        if not self.run.has_run():
            if self.run.is_run():  # stopped before its first epoch ended: nothing to resume, train it afresh
                self._restart_unfinished_run()
                return False
            raise RadvisionError(f"Cannot resume: {str(self.run.path)!r} holds no {STATE_FILE}; pass the directory "
                                 "of an earlier run.")
        self._saved_state = self.run.load_state()
        self.run.recover(self._saved_state)  # finish a confirmed epoch's checkpoint, drop an unconfirmed one
        path = self.run.file(CONFIG_FILE)
        if not path.is_file():
            logger.warning("%s has no %s; cannot check that the config matches the run", self.run.path, CONFIG_FILE)
            return False
        try:
            self._saved_config = load_run_config(path)
        except RadvisionError as err:
            raise RadvisionError(f"Cannot resume: the run's {path} does not load ({err})") from None
        self._adopt_run_settings(self._saved_config.model)
        progress = Progress.from_dict(self._saved_state)
        asked = Path(self.config.output.run_dir).expanduser()
        if asked.resolve() != self.run.path.resolve():  # e.g. the config file's default run_dir
            logger.info("Resuming in %s (the --resume folder); output.run_dir %s is not used", self.run.path, asked)
        return check_resume_config(self._saved_config, self.config, progress, self.run.path)

    def _restart_unfinished_run(self) -> None:
        """--resume of a run folder without a finished epoch (a scheduler that always passes --resume): the config
        must still fit the run's config.yaml, then the run trains from epoch 1 in that folder as a fresh one."""
        path = self.run.file(CONFIG_FILE)
        try:
            saved = load_run_config(path)
        except RadvisionError as err:
            raise RadvisionError(f"Cannot resume: the run's {path} does not load ({err})") from None
        self._adopt_run_settings(saved.model)
        check_resume_config(saved, self.config, Progress(), self.run.path)
        check_names_to_train(self.config)  # skipped for a resume, but this run starts afresh
        logger.warning("%s has no finished epoch (it stopped during its first one); training it from epoch 1",
                       self.run.path)
        if _first_process():
            self.run.restart()
        self.resume = None  # from here on a fresh run that writes into the --resume folder

    def _adopt_run_settings(self, saved: Any) -> None:
        """Settings a resumed run keeps from its own config.yaml where this config leaves the default: its input
        preprocessing (`model.input_norm`, false for runs written before the key existed) and, for `auto`, the
        backbone learning-rate multiplier it trained with (older runs recorded 0.1 whatever their weights).  A
        value the user changed from the default is left for `check_resume_config` to refuse by name."""
        model = self.config.model
        if saved.input_norm != model.input_norm and model.input_norm is True:  # True: the default
            logger.info("Resuming with the run's model.input_norm (%s)", saved.input_norm)
            model.input_norm = saved.input_norm
        if model.backbone_lr_mult == "auto" and saved.backbone_lr_mult != "auto":
            logger.info("Resuming with the run's model.backbone_lr_mult (%s)", saved.backbone_lr_mult)
            model.backbone_lr_mult = saved.backbone_lr_mult

    def _check_classes(self) -> None:
        """Once the class names are known, before the run directory is touched: class weights name real
        classes, and a resumed run gets the classes it was trained on."""
        own = self.config.cycles
        for i, cycle in enumerate(self.config.resolved_cycles()):
            if isinstance(cycle.class_weights, dict):  # name the key the mapping came from
                key = f"cycles[{i}].class_weights" if own and own[i].class_weights is not None else "loss.class_weights"
                _class_weight_vector(cycle.class_weights, self.class_names, np.zeros((0, len(self.class_names))), key)
        t, n = self.config.thresholds, len(self.class_names)
        card = t.cardinality if isinstance(t.cardinality, float) else 0.0
        if t.min_labels > n or card > n:
            key, value = ("min_labels", t.min_labels) if t.min_labels > n else ("cardinality", t.cardinality)
            raise RadvisionError(f"thresholds.{key} is {value} but there are only {n} classes; give at most {n}.")
        if self.resume is None:
            return
        saved_classes = self._saved_state.get("classes")
        if saved_classes and saved_classes != self.class_names:
            raise RadvisionError(
                f"Cannot resume: the run was trained on classes {saved_classes} but the data now gives "
                f"{self.class_names}; set data.classes to match."
            )

    def _load_progress(self) -> Progress:
        if self.resume is None:
            return Progress(labels_checked=True)
        state = self._saved_state
        self.history = self.run.read_metrics().to_dict("records")
        # metrics.csv may hold an epoch whose checkpoint never finished: keep only what the state confirms
        self.history = [r for r in self.history if int(r["epoch"]) <= int(state.get("epoch", 0))]
        return Progress.from_dict(state)

    @staticmethod
    def _start_point(progress: Progress, cycles: list[CycleConfig]) -> tuple[int, int]:
        ci, e = progress.cycle, progress.cycle_epoch
        if progress.stopped_early:
            ci, e = ci + 1, 0
        while ci < len(cycles) and e >= cycles[ci].epochs:
            ci, e = ci + 1, 0
        return ci, e

    def _log_nothing_to_train(self, progress: Progress, cycles: list[CycleConfig], short: bool) -> None:
        asked = sum(c.epochs for c in cycles)
        more = "add a cycle or raise the last cycle's epochs" if self.config.cycles else "raise optim.epochs"
        if short:
            where = f"already finished epoch {progress.epoch} and the config asks for {asked} epoch(s); {more}"
        elif progress.stopped_early:
            where = f"early stopping ended its last cycle at epoch {progress.epoch} of {asked}; add a cycle"
        else:
            where = f"already finished epoch {progress.epoch} of {asked}; {more}"
        logger.warning("Nothing left to train: %s %s to continue. %s keeps the run's schedule; only thresholds, "
                       "metrics and plots are rewritten.", self.run.path, where, CONFIG_FILE)

    def _write_config(self, keep_schedule: bool = False) -> None:
        """The resolved config; with `keep_schedule` the schedule keys stay as the resumed run recorded them
        (a resume that trains nothing, e.g. asking for fewer epochs than were trained, must not change the record)."""
        from radvision.config import config_from_dict

        values = config_to_dict(with_absolute_paths(self.config))
        values["data"]["classes"] = list(self.class_names)
        values["output"]["run_dir"] = str(self.run.path)
        if keep_schedule and self._saved_config is not None:
            saved = config_to_dict(self._saved_config)
            for key in SCHEDULE_KEYS:
                section, _, name = key.partition(".")
                if name:
                    values[section][name] = saved[section][name]
                else:
                    values[section] = saved[section]
        if self.accelerator.is_main_process:
            save_config(config_from_dict(values, warn=False), self.run.file(CONFIG_FILE))

    def _open_overwritten_run(self) -> None:
        """Clear the old run that output.overwrite replaces and write the new config.yaml (once, on the main
        process; every process waits so none reads the old run's files afterwards)."""
        if not self._overwrite_pending:
            return
        if self.accelerator.is_main_process:
            self.run.prepare(resume=False, overwrite=True)
            self._write_config()
        self._overwrite_pending = False
        self.accelerator.wait_for_everyone()

    def _save_state(self, progress: Progress, staged: list[str] = ()) -> None:
        """trainer_state.json, which confirms an epoch: `staged` names its checkpoint files still to promote."""
        state = progress.to_dict(self.config.schedule.monitor, self.mode, self.class_names)
        self.run.save_state({**state, "staged": list(staged)})

    # -- training -----------------------------------------------------------------------------------
    def _run_cycle(self, ci: int, cycle: CycleConfig, first: int, progress: Progress, train_loader: DataLoader,
                   valid_loader: DataLoader, y_train: np.ndarray) -> None:
        from radvision.finetune import apply_strategy, backbone_stages, unfreeze_next

        cfg, acc, raw = self.config, self.accelerator, self.model
        assert raw is not None
        apply_strategy(raw, cycle.strategy)
        optimizer = build_optimizer(cfg, raw, cycle.lr)
        scheduler = None
        if cfg.schedule.plateau_patience is not None:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=self.mode, factor=cfg.schedule.plateau_factor,
                patience=cfg.schedule.plateau_patience, threshold=cfg.schedule.min_delta, threshold_mode="abs")
        if first > 0:  # resuming inside this cycle: continue its optimizer and schedule
            saved = self.run.load_optimizer()
            if saved is not None and saved.get("cycle") == ci:
                optimizer.load_state_dict(saved["optimizer"])
                if scheduler is not None and saved.get("scheduler"):
                    scheduler.load_state_dict(saved["scheduler"])
        model = raw
        if cfg.runtime.compile:
            model = torch.compile(model)
        model, optimizer = acc.prepare(model, optimizer)
        loss_fn = build_loss(cfg, self.class_names, y_train, cycle.class_weights)
        # the valid loss always uses the run-wide loss.class_weights, so a cycle's own weights change what it
        # trains on but not the yardstick that best epoch, early stopping and the plateau compare across cycles
        valid_loss_fn = loss_fn if cycle.class_weights == cfg.loss.class_weights else build_loss(
            cfg, self.class_names, y_train, cfg.loss.class_weights)
        if isinstance(loss_fn, torch.nn.Module):
            loss_fn = loss_fn.to(acc.device)
        if isinstance(valid_loss_fn, torch.nn.Module):
            valid_loss_fn = valid_loss_fn.to(acc.device)
        logger.info("Cycle %d: %d epochs, lr %g, strategy %s", ci + 1, cycle.epochs, cycle.lr, cycle.strategy)

        for e in range(first, cycle.epochs):
            from accelerate.utils import set_seed

            set_seed(cfg.runtime.seed + progress.epoch)  # a resumed epoch sees the same shuffling
            if self.sampler is not None:
                self.sampler.generator.manual_seed(cfg.runtime.seed + progress.epoch)
            # with several processes accelerate shuffles with a generator of its own (seeded once per launch,
            # synchronised from the main process): seeded per epoch too, or a resumed run replays epoch 1's order
            shared = getattr(train_loader, "synchronized_generator", None)
            if shared is not None:
                shared.manual_seed(cfg.runtime.seed + progress.epoch)
            if cycle.strategy == "layerwise":
                # one more backbone stage per epoch after the first (also right when resuming mid-cycle)
                target = min(e, len(backbone_stages(raw)))
                opened = target - int(getattr(raw, "unfrozen_stages", 0))
                while int(getattr(raw, "unfrozen_stages", 0)) < target:
                    unfreeze_next(raw)
                if opened > 0 and acc.num_processes > 1:
                    # DDP syncs only the parameters that trained when it wrapped the model: wrap again so
                    # the stages just opened are averaged across processes instead of drifting apart
                    model = acc.prepare_model(torch.compile(raw) if cfg.runtime.compile else raw)
            t0 = time.perf_counter()
            train_loss = self._train_epoch(model, optimizer, loss_fn, train_loader, progress.epoch + 1)
            valid_loss, y_true, y_prob = self._evaluate(model, valid_loss_fn, valid_loader, "valid")
            if not (math.isfinite(train_loss) and np.isfinite(y_prob).all()):
                # not saved: the run folder keeps the last finite epoch
                raise RadvisionError(
                    f"Training diverged in epoch {progress.epoch + 1}: the training loss is {train_loss:g}"
                    f"{'' if np.isfinite(y_prob).all() else ' and the valid predictions hold NaN'}; lower "
                    f"the learning rate (optim.lr / the cycle's lr, now {cycle.lr:g}) and start a new run.")
            row = self._epoch_row(progress.epoch + 1, ci, optimizer, train_loss, valid_loss, y_true, y_prob)
            row["seconds"] = round(time.perf_counter() - t0, 3)
            value = self._monitored(row, y_true, y_prob)
            # the best weights follow any improvement; patience restarts on a gain of more than min_delta over
            # the last such gain (as ReduceLROnPlateau counts), so a run of small gains that add up still counts
            improved = self._improved(value, progress.best) or (
                cfg.schedule.monitor not in LOSS_MONITORS and value == progress.best and progress.best_loss is not None
                and valid_loss < progress.best_loss)  # a tie on the metric goes to the lower loss
            ref = progress.patience_ref if progress.patience_ref is not None else progress.best
            significant = self._improved(value, ref, self.config.schedule.min_delta)
            progress.epoch += 1
            progress.cycle_epoch = e + 1
            if improved:
                progress.best, progress.best_epoch, progress.best_loss = float(value), progress.epoch, valid_loss
            if significant:
                progress.bad_epochs, progress.patience_ref = 0, float(value)
            elif math.isnan(value):
                self._warn_undefined_monitor()  # not a worse epoch: the valid split cannot score it
            else:
                progress.bad_epochs += 1
            if scheduler is not None and not math.isnan(value):
                scheduler.step(value)
            patience = cfg.schedule.patience
            stop = patience is not None and progress.bad_epochs >= patience and e + 1 < cycle.epochs
            progress.stopped_early = stop
            self.history.append(row)
            self._checkpoint(progress, optimizer, scheduler, ci, improved)
            parts = [f"epoch {progress.epoch}", f"train_loss {train_loss:.4f}", f"valid_loss {valid_loss:.4f}",
                     self._monitor_text(row, value), "(best)" if improved else ""]
            logger.info("  ".join(p for p in parts if p))
            if stop:
                logger.info("Early stopping: %s did not improve for %d epochs", cfg.schedule.monitor, patience)
                break
        if cfg.schedule.restore_best and self.run.file(BEST_FILE).is_file():
            load_weights(raw, self.run.file(BEST_FILE))  # the next cycle starts from the best weights

    def _monitored(self, row: dict[str, Any], y_true: np.ndarray, y_prob: np.ndarray) -> float:
        """The number early stopping and the LR schedule follow; also stored in the row as `monitored`."""
        from radvision.metrics import monitored_mean

        s = self.config.schedule
        if s.monitor_min_positives or s.monitor_include_any:
            metric = {"mean_auroc": "auroc", "mean_average_precision": "average_precision"}.get(s.monitor, "f1")
            value = monitored_mean(y_true, y_prob, self.class_names, metric, min_positives=s.monitor_min_positives,
                                   include_any=s.monitor_include_any)
        else:
            value = monitored_value(row, s.monitor)
        row["monitored"] = float(value)
        return float(value)

    def _warn_undefined_monitor(self) -> None:
        if self._monitor_warned:
            return
        self._monitor_warned = True
        if self.config.schedule.monitor in LOSS_MONITORS:
            logger.warning("The valid loss is undefined: the valid split has no known label; such epochs count "
                           "neither as better nor as worse for early stopping and the best epoch.")
            return
        from radvision.metrics import EXAMPLE_BASED_METRICS

        monitor = self.config.schedule.monitor
        if _METRIC_ALIASES.get(monitor, monitor) in EXAMPLE_BASED_METRICS and not (
                self.config.schedule.monitor_min_positives or self.config.schedule.monitor_include_any):
            logger.warning("%s is undefined on the valid split: it scores images whose labels are all known, and "
                           "no valid image has every label known (blank labels are masked under data.unmentioned="
                           "masked; CheXpert and MIMIC-CXR leave most cells blank). data.unmentioned=negative reads "
                           "blanks as 0, or monitor a per-class figure (mean_auroc, macro_f1). Such epochs count "
                           "neither as better nor as worse for early stopping and the best epoch.",
                           self.config.schedule.monitor)
            return
        logger.warning("%s is undefined on the valid split (no class there has both positive and negative "
                       "labels, or none has enough positives); such epochs count neither as better nor as worse "
                       "for early stopping and the best epoch. A larger valid split (data.split), a lower "
                       "schedule.monitor_min_positives or schedule.monitor=loss gives a usable figure.",
                       self._monitor_name())

    def _monitor_text(self, row: dict[str, Any], value: float) -> str:
        """The monitored number for the epoch log, labelled as what it is: with monitor_min_positives /
        monitor_include_any it is not metrics.csv's all-class figure, so both are shown."""
        s = self.config.schedule
        if s.monitor in LOSS_MONITORS:  # the valid loss is on the line already
            return ""
        if not (s.monitor_min_positives or s.monitor_include_any):
            return f"{s.monitor} {value:.4f}"
        return f"{s.monitor} {monitored_value(row, s.monitor):.4f}  monitored {value:.4f} ({self._monitor_name()})"

    def _monitor_name(self) -> str:
        """What selects the best epoch: schedule.monitor, or its restricted form (monitor_min_positives /
        monitor_include_any), which is not metrics.csv's all-class figure."""
        s = self.config.schedule
        if not (s.monitor_min_positives or s.monitor_include_any):
            return s.monitor
        over = f"classes with >= {s.monitor_min_positives} valid positives" if s.monitor_min_positives else "classes"
        return f"{s.monitor} over {over}" + (" + any finding" if s.monitor_include_any else "")

    def _improved(self, value: float, best: float | None, delta: float = 0.0) -> bool:
        """Whether `value` beats `best` by more than `delta` in the monitor's direction."""
        if value is None or math.isnan(value):
            return False
        if best is None:
            return True
        return value < best - delta if self.mode == "min" else value > best + delta

    def _train_epoch(self, model: torch.nn.Module, optimizer: Any, loss_fn: Any, loader: DataLoader,
                     epoch: int) -> float:
        from tqdm.auto import tqdm

        acc = self.accelerator
        model.train()
        total, count = torch.zeros((), device=acc.device), torch.zeros((), device=acc.device)
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False,
                   disable=not self.config.runtime.progress or not acc.is_local_main_process)
        for images, targets in bar:
            if self.config.runtime.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            with acc.autocast():
                logits = model(images)
                loss = loss_fn(logits, targets)  # radvision losses compute in float32 themselves
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            optimizer.step()
            # a batch without one known label has loss 0 (nothing to learn), not a mean of 0: left out of it
            n = images.shape[0] * (~torch.isnan(targets)).any().float()
            total += loss.detach().float() * n
            count += n
            if not bar.disable:  # .item() waits for the device: only when the bar shows it
                bar.set_postfix(loss=f"{loss.item():.4f}")
        total, count = acc.reduce(total, "sum"), acc.reduce(count, "sum")
        return float(total / count.clamp(min=1))

    @torch.no_grad()
    def _evaluate(self, model: torch.nn.Module, loss_fn: Any, loader: DataLoader,
                  name: str) -> tuple[float, np.ndarray, np.ndarray]:
        from tqdm.auto import tqdm

        acc = self.accelerator
        model.eval()
        logits_all, targets_all = [], []
        for images, targets in tqdm(loader, desc=name, leave=False,
                                    disable=not self.config.runtime.progress or not acc.is_local_main_process):
            if self.config.runtime.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            with acc.autocast():
                logits = model(images)
            logits, targets = acc.gather_for_metrics((logits.float(), targets.float()))
            logits_all.append(logits.cpu())
            targets_all.append(targets.cpu())
        logits_t, targets_t = torch.cat(logits_all), torch.cat(targets_all)
        # no known label at all: the loss is undefined (the loss functions answer 0 there, for the gradient)
        known = bool((~torch.isnan(targets_t)).any())
        loss = float(loss_fn(logits_t.to(acc.device), targets_t.to(acc.device))) if loss_fn is not None and known \
            else math.nan
        # probabilities of "positive" (a 3-way U-MultiClass head: p_pos / (p_neg + p_pos)); uncertain (-1) gold
        # labels are not scored by the binary metrics and thresholds: NaN, as unknown ones
        probs = self.model.probabilities(logits_t)
        y_true = targets_t.numpy()
        return loss, np.where(y_true == -1, np.nan, y_true), probs.numpy()

    def _epoch_row(self, epoch: int, ci: int, optimizer: Any, train_loss: float, valid_loss: float,
                   y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, Any]:
        from radvision.metrics import evaluate_predictions

        metrics = evaluate_predictions(y_true, y_prob, self.class_names)
        row: dict[str, Any] = {"epoch": epoch, "cycle": ci + 1, "lr": optimizer.param_groups[0]["lr"],
                               "train_loss": train_loss, "valid_loss": valid_loss}
        row.update({k: float(v) for k, v in metrics.items() if _is_scalar(v)})
        return row

    def _checkpoint(self, progress: Progress, optimizer: Any, scheduler: Any, ci: int, improved: bool) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        self._open_overwritten_run()
        if acc.is_main_process:
            raw, epoch = self.model, progress.epoch
            # staged names: an interruption before the state is written leaves the last epoch's files as they were
            staged = [save_weights(raw, self.run.staged(MODEL_FILE, epoch))]
            if improved:
                staged.append(save_weights(raw, self.run.staged(BEST_FILE, epoch)))
            opt = acc.unwrap_model(optimizer) if hasattr(optimizer, "module") else optimizer
            opt_state = getattr(opt, "optimizer", opt).state_dict()
            staged.append(self.run.save_optimizer(
                {"cycle": ci, "optimizer": opt_state,
                 "scheduler": scheduler.state_dict() if scheduler is not None else None},
                self.run.staged(OPTIMIZER_FILE, epoch)))
            self.run.write_metrics(self.history)  # read back only up to the confirmed epoch
            self._save_state(progress, [p.name for p in staged])  # confirms the epoch
            self.run.promote([p.name for p in staged])
        acc.wait_for_everyone()

    # -- after training -----------------------------------------------------------------------------
    def _write_skipped_list(self, datasets: dict[str, Dataset | None]) -> None:
        """SKIPPED_FILE in the run folder: every image on_error=skip left out (split, path, reason "missing" or
        "unreadable", error), beside the run it shaped; no file when nothing was skipped."""
        if not self.accelerator.is_main_process:
            return
        rows = [(split, path, "missing" if is_missing(error) else "unreadable", error)
                for split, ds in datasets.items() for path, error in getattr(ds, "skipped", None) or []]
        target = self.run.file(SKIPPED_FILE)
        if rows:
            atomic_write_csv(pd.DataFrame(rows, columns=["split", "path", "reason", "error"]), target)
            logger.warning("%d image(s) were skipped (missing or unreadable); the list is in %s", len(rows), target)
        else:
            target.unlink(missing_ok=True)  # a resumed run whose images are all readable now

    def _finish(self, valid_loader: DataLoader, test_ds: Dataset | None) -> None:
        from radvision.plots import plot_confusion_matrices, plot_roc, plot_training_curves
        from radvision.thresholds import decide, f1_optimal_thresholds, rule_from_config, save_thresholds

        acc, cfg = self.accelerator, self.config
        model = acc.prepare(self.model)
        _, y_true, y_prob = self._evaluate(model, None, valid_loader, "valid")
        thr = np.asarray(f1_optimal_thresholds(y_true, y_prob, min_precision=cfg.thresholds.min_precision,
                                               class_names=self.class_names), dtype=float)
        results = {"valid": (y_true, y_prob)}
        if test_ds is not None:
            loader = acc.prepare(DataLoader(test_ds, batch_size=cfg.optim.batch_size, shuffle=False,
                                            num_workers=cfg.optim.num_workers))
            _, t_true, t_prob = self._evaluate(model, None, loader, "test")
            results["test"] = (t_true, t_prob)
        if not acc.is_main_process:
            return
        save_thresholds(self.run.file(THRESHOLDS_FILE), self.class_names, thr,
                        train_cardinality=self._train_cardinality)
        history = self.run.read_metrics()
        if len(history):
            plot_training_curves(history, self.run.plots / "curves.png")
        rule = rule_from_config(cfg.thresholds, self._train_cardinality)  # as `radvision predict --labels`
        for split, (yt, yp) in results.items():
            decided = decide(yp, thr, **rule)
            write_split_metrics(self.run.path, split, yt, yp, self.class_names, thr, y_pred=decided)
            title = f"{split}: {len(yt)} images"
            plot_roc(yt, yp, self.class_names, self.run.plots / f"roc_{split}.png", title=title)
            plot_confusion_matrices(yt, decided, self.class_names, self.run.plots / f"confusion_{split}.png",
                                    title=title)


_METRIC_ALIASES = {"loss": "valid_loss", "f1_macro": "macro_f1", "f1_micro": "micro_f1", "f1_samples": "samples_f1"}


def monitored_value(row: dict[str, Any], monitor: str) -> float:
    """The monitored number of an epoch row (NaN when the metric is undefined, e.g. AUROC of one class)."""
    key = monitor if monitor in row else _METRIC_ALIASES.get(monitor, monitor)
    value = row.get(key)
    if value is None:
        raise RadvisionError(f"Monitored metric {monitor!r} is not among the epoch metrics "
                             f"({', '.join(k for k in row if '/' not in k)}).")
    return float(value)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def write_split_metrics(run_dir: str | os.PathLike[str], split: str, y_true: np.ndarray, y_prob: np.ndarray,
                        class_names: list[str], thresholds: np.ndarray, y_pred: np.ndarray | None = None
                        ) -> tuple[Path, Path]:
    """`{split}_metrics.csv` (metric, value) and `{split}_per_class.csv` at the chosen thresholds (label
    metrics score `y_pred`, the run's whole decision rule, when given)."""
    from radvision.metrics import evaluate_predictions, per_class_metrics

    summary = evaluate_predictions(y_true, y_prob, class_names, thresholds=thresholds, y_pred=y_pred)
    flat = pd.DataFrame({"metric": [k for k, v in summary.items() if _is_scalar(v)],
                         "value": [float(v) for v in summary.values() if _is_scalar(v)]})
    per_class = per_class_metrics(y_true, y_prob, class_names, thresholds=thresholds, y_pred=y_pred)
    if not isinstance(per_class, pd.DataFrame):
        per_class = pd.DataFrame(per_class)
    run = Path(run_dir)
    a = atomic_write_csv(flat, run / f"{split}_metrics.csv")
    b = atomic_write_csv(per_class.reset_index() if per_class.index.name else per_class, run / f"{split}_per_class.csv")
    return a, b
