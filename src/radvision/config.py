"""Experiment configuration: YAML (safe_load) mapped onto nested dataclasses, with dotted overrides.

Every key is known in advance, so a typo ("optim.lerning_rate") fails loudly with a suggestion instead of
being silently ignored; every value is checked against the field's type and, where the set is closed,
against its choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from radvision.atomic import atomic_write_text
from radvision.errors import RadvisionError, did_you_mean

__all__ = [
    "Config",
    "CycleConfig",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "OutputConfig",
    "RuntimeConfig",
    "ScheduleConfig",
    "ThresholdConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "flatten_config",
    "load_config",
    "save_config",
]


def _choices(*values: Any) -> dict[str, tuple[Any, ...]]:
    return {"choices": values}


DATASETS = ("nih", "nih_sample", "chexpert", "mimic", "openi", "imageclef", "csv", "folder")
# uncertainty policies of data.policy (the readers' radvision.data.table.POLICIES, in the order the docs list them)
POLICIES = ("U-Ones", "U-Zeros", "U-Ignore", "U-MultiClass")
MULTICLASS = "U-MultiClass"


def outputs_per_class(cfg: Config) -> int:
    """Model outputs per class: 3 (negative, positive, uncertain logits) under U-MultiClass, else 1."""
    return 3 if cfg.data.policy == MULTICLASS else 1


@dataclass
class DataConfig:
    """Where images and labels come from and how they are prepared."""

    dataset: str = field(default="nih_sample", metadata=_choices(*DATASETS))
    root: str | None = None  # image root (None with nih_sample: the bundled sample)
    csv: str | None = None  # label table; readers have a default file name inside root
    # dataset csv only: the image path column, and the patient column (None: "patient_id" when present, else
    # every image is its own patient and splits are image-level)
    path_column: str = "path"
    patient_column: str | None = None
    classes: list[str] | None = None  # None: every class the reader knows
    # dataset imageclef only: drop concepts in fewer images than this, then keep the k most frequent (null: all)
    concept_min_frequency: int = 1
    concept_top_k: int | None = None
    concept_sep: str | None = None  # the concept file's separator: "\t" / "tab", ","; null detects it
    # uncertain (-1) labels: U-Ones -> 1, U-Zeros -> 0, U-Ignore -> masked, U-MultiClass -> a third state: the
    # head gives 3 outputs (negative, positive, uncertain) per class, trained with a softmax cross-entropy
    policy: str = field(default="U-Ones", metadata=_choices(*POLICIES))
    # blank ("not mentioned") labels of CheXpert / MIMIC / csv tables: masked in the loss, or negatives
    unmentioned: str = field(default="masked", metadata=_choices("masked", "negative"))
    frontal_only: bool = False
    split: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "valid": 0.1, "test": 0.1})
    image_size: int = 224
    channels: int = field(default=3, metadata=_choices(1, 3))
    cache_dir: str | None = None  # pre-resized uint8 cache; None: decode images every epoch
    transforms: str = "default"
    downsample: dict[str, float] | None = None  # class -> fraction of training rows with only that label dropped
    on_error: str = field(default="raise", metadata=_choices("raise", "skip"))
    # weighted: draw training images with replacement, rare-label images more often (data.weighted_sampler)
    sampler: str = field(default="none", metadata=_choices("none", "weighted"))


@dataclass
class ModelConfig:
    backbone: str | list[str] = "resnet18"  # a list concatenates backbones (MultiBackbone)
    head: str = field(default="linear", metadata=_choices("linear", "mlp", "fpn"))
    hidden: int | list[int] | None = None  # MLP hidden sizes, e.g. [4096, 4096]
    dropout: float | None = None
    # "imagenet", a local weights file, or None; a list gives one of these per backbone of a list backbone
    pretrained: str | list[str | None] | None = None
    in_chans: int | None = None  # None: data.channels (the two must agree)
    strategy: str = field(default="full", metadata=_choices("frozen", "full", "layerwise"))
    # convert ImageNet-normalised images to the normalisation the architecture's weights expect (Inception,
    # timm models with other mean / std); run folders written before this key existed load with false
    input_norm: bool = True
    # backbone lr = lr x this; "auto": 0.1 when some backbone starts from pretrained weights (keep them
    # close), 1.0 when all train from scratch (a slower backbone would only learn slower)
    backbone_lr_mult: float | str = field(
        default="auto", metadata={"expected": "'auto' or a number zero or more"})

    def resolved_backbone_lr_mult(self) -> float:
        if self.backbone_lr_mult != "auto":
            return float(self.backbone_lr_mult)
        values = self.pretrained if isinstance(self.pretrained, list) else [self.pretrained]
        return 0.1 if any(v is not None for v in values) else 1.0


@dataclass
class LossConfig:
    name: str = field(
        default="bce", metadata=_choices("bce", "weighted_bce", "soft_f1", "f1_bce", "f1_plus_bce", "focal")
    )
    pos_weight: str = field(default="none", metadata=_choices("auto", "none"))
    class_weights: str | dict[str, float] | None = None  # "auto", {class: weight}, or None
    gamma: float = 2.0
    alpha: float | None = 0.25  # focal: weight of positive terms (negatives 1 - alpha); null: none


@dataclass
class OptimConfig:
    name: str = field(default="adamw", metadata=_choices("adam", "adamw", "sgd"))
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd only
    batch_size: int = 32
    epochs: int = 10
    num_workers: int = 0


# "loss" (metrics.csv: valid_loss) is the validation loss; the others are the scalar metrics that
# radvision.metrics.evaluate_predictions reports each epoch (f1_macro / f1_micro / f1_samples are aliases of
# macro_f1, micro_f1, samples_f1). LOWER_IS_BETTER sets schedule.mode 'auto' to min.
MONITORS = ("loss", "valid_loss", "mean_auroc", "micro_auroc", "auroc_any_finding", "mean_average_precision",
            "macro_f1", "micro_f1", "samples_f1", "macro_precision", "macro_recall", "micro_precision", "micro_recall",
            "samples_precision", "samples_recall", "exact_match", "jaccard_samples", "jaccard_macro", "lrap",
            "hamming_loss", "label_ranking_loss", "coverage_error", "f1_macro", "f1_micro", "f1_samples")
LOSS_MONITORS = ("loss", "valid_loss")
LOWER_IS_BETTER = (*LOSS_MONITORS, "hamming_loss", "label_ranking_loss", "coverage_error")

# monitors that average a per-class metric (so schedule.monitor_min_positives can choose the classes)
CLASS_MEAN_MONITORS = ("mean_auroc", "mean_average_precision", "macro_f1", "f1_macro")


@dataclass
class ScheduleConfig:
    monitor: str = field(default="mean_auroc", metadata=_choices(*MONITORS))
    mode: str = field(default="auto", metadata=_choices("auto", "min", "max"))  # auto: min for loss
    patience: int | None = 5  # early stopping; None disables it
    min_delta: float = 0.0
    restore_best: bool = True
    plateau_factor: float = 0.1
    plateau_patience: int | None = 2  # ReduceLROnPlateau; None disables it
    # The monitored mean_auroc / mean_average_precision / macro_f1 is taken over the classes with at least this
    # many positives in the valid split (metrics.csv keeps the all-class figures): on a small valid split a
    # class with one or two positives turns epoch selection into noise.
    monitor_min_positives: int = 0
    # mean_auroc only: add "any finding vs none" AUROC as one more term (and leave "No Finding" out of the mean)
    monitor_include_any: bool = False


@dataclass
class CycleConfig:
    """One training cycle; unset fields fall back to optim / model / loss settings."""

    epochs: int | None = None  # None: optim.epochs
    lr: float | None = None
    class_weights: str | dict[str, float] | None = None
    strategy: str | None = field(default=None, metadata=_choices("frozen", "full", "layerwise"))


@dataclass
class RuntimeConfig:
    seed: int = 42
    amp: str = field(default="auto", metadata=_choices("auto", "no", "bf16", "fp16"))  # auto: bf16 on CUDA
    channels_last: bool = False
    compile: bool = False
    device: str = field(default="auto", metadata=_choices("auto", "cpu", "cuda"))
    progress: bool = True


@dataclass
class OutputConfig:
    run_dir: str = "runs/run"
    overwrite: bool = False  # allow training into a run dir that already holds a run


@dataclass
class ThresholdConfig:
    min_precision: float | None = None
    top_k: int | None = None  # at most k labels per image
    min_labels: int = 0  # at least this many labels per image (the most probable ones)
    # "train" or a number: shift the thresholds to this mean number of labels per image
    cardinality: float | str | None = field(
        default=None, metadata={"expected": "'train', a number of labels per image, or null"})


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    cycles: list[CycleConfig] = field(default_factory=list)  # empty: one cycle of optim.epochs
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)

    def resolved_cycles(self) -> list[CycleConfig]:
        """The cycles to run, with every unset field filled from optim / model / loss."""
        cycles = self.cycles or [CycleConfig(epochs=self.optim.epochs)]
        return [
            CycleConfig(
                epochs=self.optim.epochs if c.epochs is None else c.epochs,
                lr=self.optim.lr if c.lr is None else c.lr,
                class_weights=self.loss.class_weights if c.class_weights is None else c.class_weights,
                strategy=self.model.strategy if c.strategy is None else c.strategy,
            )
            for c in cycles
        ]


# ----------------------------------------------------------------------------------------------- typing


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a mapping of {_type_name(k)} to {_type_name(v)}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    """Internal: the value does not fit the type (turned into one RadvisionError by the caller)."""


class _Written:
    """A plain YAML scalar that YAML typed (a number, boolean or date) and the text it was written as: a text key
    takes the text (`root: 2024.10` is the folder "2024.10", `amp: no` is "no"), any other key the value."""

    __slots__ = ("value", "text")

    def __init__(self, value: Any, text: str):
        self.value, self.text = value, text

    def __repr__(self) -> str:
        return repr(self.value)

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Written) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, first: int, again: int):
        super().__init__(f"key {key!r} appears twice in one mapping (lines {first} and {again})")
        self.key, self.first, self.again = key, first, again


class _ConfigLoader(yaml.SafeLoader):
    """yaml.safe_load, except that typed plain scalars keep their text (`_Written`) and a key given twice in one
    mapping is an error: PyYAML keeps the last one silently, so `model:` written twice lost the first's keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":  # merge keys may repeat
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise _DuplicateKey(key_node.value, seen[key_node.value], line)
                seen[key_node.value] = line
        return super().construct_mapping(node, deep)


def _keeping_text(construct: Any) -> Any:
    def construct_written(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        return _Written(construct(loader, node), node.value) if node.style is None else construct(loader, node)

    return construct_written


for _tag in ("int", "float", "bool", "timestamp"):
    _ConfigLoader.add_constructor(f"tag:yaml.org,2002:{_tag}",
                                  _keeping_text(yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]))


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def _text_only(tp: Any) -> bool:
    """A key that takes text and no number or boolean (data.root, runtime.amp, model.pretrained ...)."""
    if tp is str:
        return True
    args = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else ()
    return str in args and not any(a in (int, float, bool) for a in args)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    if isinstance(value, _Written):
        # yes / true given for a path or a name is a mistake, not a folder "true" (keys with choices: `_build`)
        text = _text_only(tp) and not isinstance(value.value, bool)
        return value.text if text else _coerce(value.value, tp, key)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except _Mismatch:
                continue
        raise _Mismatch
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Mismatch
        return _build(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise _Mismatch
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        k_tp, v_tp = typing.get_args(tp)
        return {_coerce(k, k_tp, key): _coerce(v, v_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise _Mismatch  # pragma: no cover - every field type is handled above


# names other tools use for radvision's keys, so that e.g. "optim.learning_rate" suggests "lr"
_SYNONYMS = {"learning_rate": "lr", "num_epochs": "epochs", "n_epochs": "epochs", "max_epochs": "epochs",
             "bs": "batch_size", "workers": "num_workers", "wd": "weight_decay", "img_size": "image_size",
             "size": "image_size", "resolution": "image_size", "arch": "backbone", "model": "backbone",
             "early_stopping_patience": "patience", "labels": "classes", "data_dir": "root", "output_dir": "run_dir"}


def _unknown_key(key: str, valid: list[str]) -> RadvisionError:
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, valid, n=3)
    synonyms = {k: v for k, v in _SYNONYMS.items() if v in valid}
    close += [synonyms[s] for s in difflib.get_close_matches(name, list(synonyms), n=1, cutoff=0.75)
              if synonyms[s] not in close]
    close += [v for v in valid if v.endswith(f"_{name}") and v not in close]  # "top_k" -> "concept_top_k"
    sections = typing.get_type_hints(Config)
    close += [f"{section}.{name}" for section, tp in sections.items()  # the same key of another section
              if dataclasses.is_dataclass(tp) and name in {f.name for f in dataclasses.fields(tp)}
              and f"{section}.{name}" != key and "." in key]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return RadvisionError(f"Unknown config key {key!r}: {hint}valid keys are {', '.join(valid)}.")


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            raise _unknown_key(key, list(fields))
        choices = fields[name].metadata.get("choices")
        if isinstance(value, _Written) and isinstance(value.value, bool) and choices:
            value = value.text  # runtime.amp: no -- checked against the choices below
        try:
            coerced = _coerce(value, hints[name], key)
        except _Mismatch:
            raise RadvisionError(
                f"Config key {key!r} must be {fields[name].metadata.get('expected') or _type_name(hints[name])}, "
                f"got {value!r}."
            ) from None
        if choices and coerced is not None and coerced not in choices:
            raise RadvisionError(
                f"Config key {key!r} is {coerced!r}{did_you_mean(coerced, choices)}; choose one of "
                f"{', '.join(map(str, choices))}."
            )
        kwargs[name] = coerced
    return cls(**kwargs)


# ------------------------------------------------------------------------------------------- public API


def config_from_dict(values: dict[str, Any] | None, *, warn: bool = True) -> Config:
    """Build a validated Config from a plain (YAML-like) mapping; missing keys keep their defaults.
    ``warn=False`` skips the warnings about keys that have no effect (for a config already checked once)."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise RadvisionError(f"A config must be a mapping of sections, got {type(values).__name__}.")
    cfg = _build(Config, values, "")
    _check_consistency(cfg, warn)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict (YAML-serialisable) of a Config."""
    return dataclasses.asdict(cfg)


def flatten_config(cfg: Config) -> dict[str, Any]:
    """`{"section.key": value}` of a Config (`cycles` stays one list-valued key), for comparing configs."""
    flat: dict[str, Any] = {}
    for section, values in config_to_dict(cfg).items():
        if isinstance(values, dict):
            flat.update({f"{section}.{k}": v for k, v in values.items()})
        else:
            flat[section] = values
    return flat


def _check_ranges(checks: list[tuple[str, Any, bool, str]]) -> None:
    for key, value, ok, expected in checks:
        if not ok:
            raise RadvisionError(f"Config key {key!r} must be {expected}, got {value!r}.")


def _check_decision_rule(t: ThresholdConfig) -> None:
    if t.min_labels < 0:
        raise RadvisionError(f"Config key 'thresholds.min_labels' must be zero or more, got {t.min_labels!r}.")
    if t.top_k is not None and t.min_labels > t.top_k:
        raise RadvisionError(f"thresholds.min_labels ({t.min_labels}) is more than thresholds.top_k ({t.top_k}).")
    c = t.cardinality  # a number is already a float (the type tries float before str)
    if isinstance(c, str) and c != "train":
        expected = ThresholdConfig.__dataclass_fields__["cardinality"].metadata["expected"]
        raise RadvisionError(f"Config key 'thresholds.cardinality' must be {expected}, got {c!r}.")
    if isinstance(c, float) and not 0 <= c < math.inf:
        raise RadvisionError(f"Config key 'thresholds.cardinality' must be a finite number, zero or more, got {c!r}.")


def _check_consistency(cfg: Config, warn: bool = True) -> None:
    for name, value in (("optim.lr", cfg.optim.lr), ("optim.batch_size", cfg.optim.batch_size)):
        if not (value > 0 and math.isfinite(value)):
            raise RadvisionError(f"Config key {name!r} must be a positive number, got {value!r}.")
    if cfg.optim.epochs < 0:
        raise RadvisionError(f"Config key 'optim.epochs' must be zero or more, got {cfg.optim.epochs!r}.")
    # each epoch seeds torch / numpy / random with seed + its number, and numpy takes 0 ... 2**32 - 1
    last = sum(max(int(c.epochs or 0), 0) for c in cfg.resolved_cycles())
    if not 0 <= cfg.runtime.seed <= 2**32 - 1 - last:
        raise RadvisionError(f"Config key 'runtime.seed' must be from 0 to {2**32 - 1 - last} (each epoch seeds with "
                             f"seed + epoch, below 2**32, for {last} epochs), got {cfg.runtime.seed!r}.")
    mp = cfg.thresholds.min_precision
    if mp is not None and not 0.0 <= mp <= 1.0:
        raise RadvisionError(f"Config key 'thresholds.min_precision' must be between 0 and 1 (or null), got {mp!r}.")
    if cfg.thresholds.top_k is not None and cfg.thresholds.top_k < 1:
        raise RadvisionError(f"Config key 'thresholds.top_k' must be 1 or more (or null for no limit), "
                             f"got {cfg.thresholds.top_k!r}.")
    _check_decision_rule(cfg.thresholds)
    if not cfg.model.backbone:
        raise RadvisionError("Config key 'model.backbone' must name a backbone (or a list of several); see "
                             "`radvision models`.")
    hidden = [cfg.model.hidden] if isinstance(cfg.model.hidden, int) else cfg.model.hidden or []
    if any(h < 1 for h in hidden):
        raise RadvisionError(f"Config key 'model.hidden' must list layer sizes of 1 or more, got {cfg.model.hidden!r}.")
    if cfg.model.head == "mlp" and cfg.model.hidden is not None and not hidden:
        raise RadvisionError("Config key 'model.hidden' must list the mlp head's layer sizes (e.g. [512, 512]), or "
                             f"be null for the default [4096, 4096]; got {cfg.model.hidden!r}.")
    if warn and hidden and cfg.model.head != "mlp":
        logging.getLogger(__name__).warning("model.hidden is used by model.head mlp only; head %r ignores it",
                                            cfg.model.head)
    if warn and cfg.data.dataset != "imageclef" and (cfg.data.concept_min_frequency != 1 or cfg.data.concept_top_k
                                                     or cfg.data.concept_sep):
        logging.getLogger(__name__).warning("data.concept_min_frequency / data.concept_top_k / data.concept_sep are read "
                                            "by data.dataset imageclef only; dataset %r ignores them", cfg.data.dataset)
    if warn and cfg.data.dataset != "csv" and (cfg.data.path_column != "path" or cfg.data.patient_column):
        logging.getLogger(__name__).warning("data.path_column / data.patient_column are read by data.dataset csv "
                                            "only; dataset %r ignores them", cfg.data.dataset)
    if warn and cfg.data.dataset == "folder" and cfg.data.csv is not None:
        logging.getLogger(__name__).warning("data.csv is not used by data.dataset 'folder' (the class of an image is "
                                            "its folder); use data.dataset=csv to read a label table")
    unused = [k for k in ("root", "csv") if getattr(cfg.data, k) is not None]
    if warn and cfg.data.dataset == "nih_sample" and unused:
        logging.getLogger(__name__).warning(
            "data.%s is not used by data.dataset 'nih_sample' (the bundled sample); set data.dataset=nih "
            "to read an NIH folder", " / data.".join(unused))
    for i, c in enumerate(cfg.cycles):
        if c.epochs is not None and c.epochs < 0:
            raise RadvisionError(f"Config key 'cycles[{i}].epochs' must be zero or more, got {c.epochs!r}.")
    if cfg.model.in_chans is None:
        cfg.model.in_chans = cfg.data.channels
    if cfg.data.channels != cfg.model.in_chans:
        raise RadvisionError(
            f"data.channels ({cfg.data.channels}) and model.in_chans ({cfg.model.in_chans}) differ; "
            "set both to 1 or both to 3 (or leave model.in_chans out: it follows data.channels)."
        )
    s = cfg.schedule
    weights = [("loss.class_weights", cfg.loss.class_weights)]
    weights += [(f"cycles[{i}].class_weights", c.class_weights) for i, c in enumerate(cfg.cycles)]
    for key, spec in weights:
        bad = [k for k, v in (spec.items() if isinstance(spec, dict) else []) if not 0 <= v < math.inf]
        if bad:
            raise RadvisionError(f"Config key {key!r} gives {bad[0]!r} the weight {spec[bad[0]]!r}; class weights "
                                 "must be zero or more (and finite).")
        if isinstance(spec, str) and spec != "auto":
            raise RadvisionError(f"Config key {key!r} must be 'auto', a mapping of class: weight, or null, "
                                 f"got {spec!r}.")
    _check_ranges([
        *((f"cycles[{i}].lr", c.lr, c.lr is None or 0 < c.lr < math.inf, "a positive number (or left out: optim.lr)")
          for i, c in enumerate(cfg.cycles)),
        ("model.backbone_lr_mult", cfg.model.backbone_lr_mult, cfg.model.backbone_lr_mult == "auto" or (
            isinstance(cfg.model.backbone_lr_mult, float) and 0 <= cfg.model.backbone_lr_mult < math.inf),
         "'auto' or a finite number, zero or more"),
        ("model.dropout", cfg.model.dropout, cfg.model.dropout is None or 0 <= cfg.model.dropout < 1,
         "at least 0 and below 1 (or null: 0.5 for the mlp head, 0 for the others)"),
        ("loss.gamma", cfg.loss.gamma, cfg.loss.gamma >= 0 and math.isfinite(cfg.loss.gamma), "a number >= 0"),
        ("loss.alpha", cfg.loss.alpha, cfg.loss.alpha is None or 0 <= cfg.loss.alpha <= 1,
         "between 0 and 1 (or null: no weighting)"),
        ("schedule.patience", s.patience, s.patience is None or s.patience >= 1, "1 or more (or null: off)"),
        ("schedule.plateau_patience", s.plateau_patience, s.plateau_patience is None or s.plateau_patience >= 0,
         "zero or more (or null: off)"),
        ("schedule.plateau_factor", s.plateau_factor, 0 < s.plateau_factor < 1, "between 0 and 1 (exclusive)"),
        ("schedule.min_delta", s.min_delta, 0 <= s.min_delta < math.inf, "a finite number, zero or more"),
        ("optim.momentum", cfg.optim.momentum, 0 <= cfg.optim.momentum < 1, "at least 0 and below 1"),
        ("optim.weight_decay", cfg.optim.weight_decay, 0 <= cfg.optim.weight_decay < math.inf,
         "a finite number, zero or more"),
        ("optim.num_workers", cfg.optim.num_workers, cfg.optim.num_workers >= 0, "zero or more"),
        ("data.concept_min_frequency", cfg.data.concept_min_frequency, cfg.data.concept_min_frequency >= 1,
         "1 or more (images a concept must occur in)"),
        ("data.concept_top_k", cfg.data.concept_top_k, cfg.data.concept_top_k is None or cfg.data.concept_top_k >= 1,
         "1 or more (or null to keep every concept)"),
    ])
    if s.monitor_min_positives < 0:
        raise RadvisionError(f"Config key 'schedule.monitor_min_positives' must be zero or more, "
                             f"got {s.monitor_min_positives!r}.")
    if s.monitor_min_positives and s.monitor not in CLASS_MEAN_MONITORS:
        raise RadvisionError(f"schedule.monitor_min_positives needs a per-class mean monitor "
                             f"({', '.join(CLASS_MEAN_MONITORS)}), not {s.monitor!r}.")
    if s.monitor_include_any and s.monitor != "mean_auroc":
        raise RadvisionError(f"schedule.monitor_include_any needs schedule.monitor 'mean_auroc', not {s.monitor!r}.")
    _check_pretrained(cfg.model)
    if cfg.data.policy == MULTICLASS and cfg.loss.name != "bce":
        raise RadvisionError(f"data.policy U-MultiClass trains a 3-way softmax cross-entropy per class, so loss.name "
                             f"{cfg.loss.name!r} does not apply; use loss.name=bce (that cross-entropy; loss.pos_weight "
                             "and loss.class_weights still apply), or another policy (U-Ones, U-Zeros, U-Ignore).")
    if cfg.loss.name == "soft_f1" and cfg.loss.pos_weight == "auto":
        raise RadvisionError("loss.name 'soft_f1' has no positive term for loss.pos_weight 'auto'; set "
                             "loss.pos_weight=none (class_weights still work) or use f1_bce / f1_plus_bce.")
    fractions = cfg.data.split
    unknown = sorted(set(fractions) - {"train", "valid", "test"})
    if unknown:
        raise RadvisionError(
            f"Config key 'data.split' has unknown split {unknown[0]!r}; use train, valid and test."
        )
    if "train" not in fractions or "valid" not in fractions:
        raise RadvisionError("Config key 'data.split' needs both a 'train' and a 'valid' fraction.")
    total = sum(fractions.values())
    if not all(0 <= v < math.inf for v in fractions.values()) or not abs(total - 1.0) <= 1e-6:
        raise RadvisionError(f"Config key 'data.split' fractions must be non-negative and sum to 1, got {total:g}.")


def is_weight_file(spec: str | Path) -> bool:
    """Whether a ``pretrained=`` value names a file rather than a keyword such as 'imagenet'."""
    s = str(spec)
    if isinstance(spec, Path) or os.sep in s or Path(s).expanduser().is_file():
        return True
    return s.endswith((".pth", ".pt", ".bin", ".ckpt", ".tar", ".safetensors"))


def check_weight_file(path: str | os.PathLike[str]) -> Path:
    """The absolute path of an existing weight file; a folder or a missing file is an error saying so."""
    path = Path(path).expanduser().absolute()  # messages show where a relative path was looked for
    if path.is_dir():
        raise RadvisionError(f"Weight file {path} is a folder; pass the .pth/.pt/.bin/.safetensors file inside it.")
    if not path.is_file():
        raise RadvisionError(f"Weight file {path} does not exist; pass an existing .pth/.pt/.bin/.safetensors file.")
    return path


def check_names_to_train(cfg: Config) -> None:
    """Names that only training resolves: a misspelt `model.pretrained` keyword ('imagnet'), a weight file that is
    not there, ImageNet weights for a backbone without them or (downloads disabled) in no local cache, and the
    `data.transforms` preset.  `Trainer.fit`
    checks them for a fresh run before any image is read; a resumed run and a run's own
    config.yaml read by predict are not held to them: it may name a bare weight file that existed where it
    trained, or (a `fit()` on your own datasets written before presets were checked) a transforms name of its own."""
    from radvision.presets import parse_preset

    parse_preset(cfg.data.transforms)
    m = cfg.model
    names = [m.backbone] if isinstance(m.backbone, str) else list(m.backbone)
    values = m.pretrained if isinstance(m.pretrained, list) else [m.pretrained] * len(names)
    for name, value in zip(names, values, strict=True):  # what building the model would refuse, before data
        if value is None:
            continue
        if value == "imagenet":
            from radvision.backbones import check_imagenet_offline, get_spec  # torch, only here

            if get_spec(name).source == "builtin":
                raise RadvisionError(f"Config key 'model.pretrained' is 'imagenet', but {name} has no ImageNet "
                                     "weights; use model.pretrained=null or a local weight file.")
            check_imagenet_offline(name)
        elif not is_weight_file(value):
            raise RadvisionError(f"Config key 'model.pretrained' value {value!r} is not 'imagenet', null or a weight "
                                 "file (a path, or a name ending .pth, .pt, .bin, .ckpt, .tar or .safetensors)"
                                 f"{did_you_mean(str(value), ['imagenet'])}.")
        else:
            check_weight_file(value)


def _check_pretrained(m: ModelConfig) -> None:
    if not isinstance(m.pretrained, list):
        return
    names = [m.backbone] if isinstance(m.backbone, str) else m.backbone
    if len(m.pretrained) != len(names):
        raise RadvisionError(
            f"Config key 'model.pretrained' lists {len(m.pretrained)} values for {len(names)} backbone(s) "
            f"({', '.join(names)}); give one value per backbone, or a single value for all."
        )


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        hint = ""
        if item.rstrip().endswith(("]", "}", ",")) or item.lstrip().startswith(("[", "{")):
            hint = (" It looks like part of a list or mapping that the shell split at a space: quote the whole "
                    "override (\"data.classes=[A, B]\") or leave the spaces out.")
        raise RadvisionError(f"Override {item!r} is not of the form dotted.key=value (e.g. optim.lr=3e-4).{hint}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise RadvisionError(f"Override {item!r} has an empty key; write dotted.key=value (e.g. optim.lr=3e-4).")
    try:
        value = _load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # e.g. a Windows path; string fields accept it as is
    return key.split("."), value


def apply_overrides(values: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides (value parsed by yaml.safe_load) to a plain config mapping, in order:
    a later override of a key wins, so code can extend a list of base overrides (the command line, where a
    key typed twice is more likely a slip, refuses it)."""
    out = dict(values)
    for item in overrides:
        parts, value = _parse_override(item)
        _check_path(parts)
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                # a mapping field (e.g. data.split) starts from its default, so one entry can change alone
                default = _default_at(parts[: depth + 1])
                child = default if isinstance(default, dict) else {}
            child = dict(child)
            node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def _field_type(parts: list[str]) -> Any:
    """The declared type at a dotted path (validates every key on the way)."""
    cls: Any = Config
    tp: Any = Config
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            # e.g. data.split.train: inside a mapping field, any key is allowed
            return Any
        names = [f.name for f in dataclasses.fields(cls)]
        if part not in names:
            raise _unknown_key(".".join(parts[: depth + 1]), names)
        tp = typing.get_type_hints(cls)[part]
        cls = tp if dataclasses.is_dataclass(tp) else None
        if any(typing.get_origin(o) is dict or o is dict for o in _union_options(tp)):
            cls = dict  # a mapping field, also in a union (data.downsample, loss.class_weights): one entry may change
        if depth < len(parts) - 1 and cls is None:
            raise _no_sub_keys(parts, depth, tp)
    return tp


def _union_options(tp: Any) -> tuple[Any, ...]:
    """The types a declared type allows: the members of a union (`list[str] | None`), else the type itself."""
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)


def _no_sub_keys(parts: list[str], depth: int, tp: Any) -> RadvisionError:
    """A dotted key that goes on past a value or a list (e.g. cycles.0.epochs): overrides replace those whole."""
    key = ".".join(parts[: depth + 1])
    if not any(typing.get_origin(o) in (list, tuple) or o in (list, tuple) for o in _union_options(tp)):
        return RadvisionError(f"Override key {'.'.join(parts)!r} goes past {key!r}, which holds one value "
                              f"({_type_name(tp)}) and has no keys of its own; write {key}=VALUE.")
    example = "cycles=[{epochs: 3}, {epochs: 5, class_weights: {Effusion: 0.5}}]" if key == "cycles" else f"{key}=[...]"
    return RadvisionError(f"Override key {'.'.join(parts)!r} reaches inside {key!r}, which is a list: an override "
                          f"replaces a list whole, so give all of it (quoted for the shell), e.g. \"{example}\".")


def _default_at(parts: list[str]) -> Any:
    value: Any = Config()
    for part in parts:
        if not dataclasses.is_dataclass(value):
            return None
        value = getattr(value, part)
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _check_path(parts: list[str]) -> None:
    _field_type(parts)


def merge_sections(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Section-wise update of a config mapping: `extra`'s keys replace `base`'s inside each section
    (one level deep, as a config is a mapping of sections); neither input is changed."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in extra.items():
        if isinstance(values, dict) and isinstance(out.get(section), dict):
            out[section].update(values)
        else:
            out[section] = dict(values) if isinstance(values, dict) else values
    return out


def with_absolute_paths(cfg: Config) -> Config:
    """A copy whose data.root and data.csv are absolute when they name something that exists from the working
    directory, and data.cache_dir always: a run's config.yaml then means the same from anywhere, and a resume
    compares folders rather than spellings (`data.root=nih` and `data.root=/work/nih` are one folder).  A name
    that exists only inside data.root (e.g. CheXpert's `data.csv=relabelled.csv`) stays as written."""
    d = cfg.data

    def absolute(value: str | None, always: bool = False) -> str | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return str(p.resolve()) if always or p.exists() else value

    data = dataclasses.replace(d, root=absolute(d.root), csv=absolute(d.csv), cache_dir=absolute(d.cache_dir, True))
    return dataclasses.replace(cfg, data=data)


def load_run_config(path: str | os.PathLike[str]) -> Config:
    """A run folder's config.yaml, read as the run was trained: keys added to radvision after the run was
    written take the value that reproduces it (`model.input_norm` false), not today's default."""
    raw = _read_config_file(path)
    try:
        cfg = config_from_dict(raw)
    except RadvisionError as exc:  # name the file: the run's config.yaml, not the command line, holds the key
        raise RadvisionError(f"{path}: {exc}") from None
    if "input_norm" not in (raw.get("model") or {}):
        cfg.model.input_norm = False
    return cfg


def _read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping a YAML config file holds (empty for an empty file), or one clear error about the file."""
    p = Path(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise RadvisionError(f"Config file {str(p)!r} {what}; pass the path of a YAML file.")
    try:
        loaded = _load_yaml(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RadvisionError(f"Config file {str(p)!r} is not text (is it an image?); pass a YAML file.") from None
    except _DuplicateKey as exc:
        raise RadvisionError(f"Config file {str(p)!r} gives the key {exc.key!r} twice (lines "
                             f"{exc.first} and {exc.again}); keep one and merge their settings.") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        problem = getattr(exc, "problem", None) or ""
        why = " (a tab character: indent with spaces)" if "'\\t'" in problem else (
            f" ({problem})" if problem else "")
        raise RadvisionError(f"Config file {str(p)!r} is not valid YAML{where}{why}.") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise RadvisionError(f"Config file {str(p)!r} must hold a mapping of sections (data, model, ...).")
    return loaded or {}


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    updates: dict[str, Any] | None = None,
) -> Config:
    """Read a YAML config (or start from defaults when `path` is None), merge section-wise `updates`
    (e.g. a smoke-test preset, see `merge_sections`) and then apply dotted overrides."""
    if isinstance(overrides, str):
        raise RadvisionError(f"overrides must be a list of 'key=value' strings, e.g. [{overrides!r}], "
                             "not one string.")
    if path is not None and not isinstance(path, str | os.PathLike):
        raise RadvisionError(f"load_config() takes the path of a YAML file, not a {type(path).__name__}; pass a "
                             "mapping of sections as updates= (or to config_from_dict).")
    values = _read_config_file(path) if path is not None else {}
    if updates:
        values = merge_sections(values, updates)
    return config_from_dict(apply_overrides(values, list(overrides)))


def save_config(cfg: Config, path: str | os.PathLike[str]) -> Path:
    """Write the resolved config as YAML, atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    atomic_write_text(p, text)
    return p


