"""Fine-tuning strategies: which backbone parameters train, and with which learning rate.

``frozen`` trains the head only (feature extraction), ``full`` trains everything, ``layerwise`` starts
frozen and ``unfreeze_next`` opens the backbone one stage at a time from the top (output end) down.
Stages follow the backbone's multi-scale feature modules, so they mean the same thing for every model.
"""

from __future__ import annotations

import logging

from torch import nn

from radvision.backbones import Backbone, MultiBackbone
from radvision.errors import RadvisionError, did_you_mean
from radvision.heads import ImageClassifier

logger = logging.getLogger(__name__)

STRATEGIES = ("frozen", "full", "layerwise")


def _single_stages(bb: Backbone) -> list[list[nn.Parameter]]:
    """Split one backbone's parameters at its feature modules: stage i ends with feature module i; the
    stem joins stage 0 and anything after the last feature module (final norm, pre-logits) the last stage."""
    names = [n for n, _ in bb.model.named_modules()]
    index = {n: i for i, n in enumerate(names)}
    ends = []
    for f in bb.feature_module_names:
        inside = [i for n, i in index.items() if n == f or n.startswith(f + ".")]
        ends.append(max(inside))
    stages: list[list[nn.Parameter]] = [[] for _ in ends]
    for pname, p in bb.model.named_parameters():
        owner = pname.rpartition(".")[0]
        pos = index.get(owner, 0)
        stage = min(sum(e < pos for e in ends), len(ends) - 1)
        stages[stage].append(p)
    return stages


def backbone_stages(model: ImageClassifier) -> list[list[nn.Parameter]]:
    """Backbone parameters grouped into stages, input end first.  With several backbones, stages are
    aligned from the top (stage -1 of every backbone together)."""
    bb = model.backbone
    if isinstance(bb, Backbone):
        return _single_stages(bb)
    if isinstance(bb, MultiBackbone):
        per = [_single_stages(b) for b in bb.backbones]
        depth = max(len(s) for s in per)
        merged: list[list[nn.Parameter]] = [[] for _ in range(depth)]
        for stages in per:
            offset = depth - len(stages)
            for i, s in enumerate(stages):
                merged[offset + i].extend(s)
        return merged
    raise RadvisionError(f"Cannot split a {type(bb).__name__} into stages; expected a radvision Backbone.")


def _set_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def apply_strategy(model: ImageClassifier, strategy: str) -> None:
    """Set ``requires_grad`` for ``frozen`` | ``full`` | ``layerwise`` (head always trains)."""
    if strategy not in STRATEGIES:
        raise RadvisionError(f"Unknown fine-tuning strategy '{strategy}'{did_you_mean(strategy, STRATEGIES)}; "
                             f"valid: {', '.join(STRATEGIES)}.")
    _set_grad(model.head.parameters(), True)
    _set_grad(model.backbone.parameters(), strategy == "full")
    model.finetune_strategy = strategy
    model.unfrozen_stages = len(backbone_stages(model)) if strategy == "full" else 0
    model.train(model.training)  # re-evaluate which backbone parts are frozen (kept in eval mode)
    logger.info("fine-tuning strategy %s: %d trainable parameters", strategy,
                sum(p.numel() for p in model.parameters() if p.requires_grad))


def unfreeze_next(model: ImageClassifier) -> int:
    """Unfreeze the highest still-frozen backbone stage; returns how many stages are now trainable
    (equal to ``len(backbone_stages(model))`` once everything is open)."""
    stages = backbone_stages(model)
    done = int(getattr(model, "unfrozen_stages", 0))
    if done >= len(stages):
        return len(stages)
    _set_grad(stages[len(stages) - 1 - done], True)
    model.unfrozen_stages = done + 1
    model.train(model.training)
    logger.info("unfroze backbone stage %d of %d (from the top)", done + 1, len(stages))
    return done + 1


def param_groups(model: ImageClassifier, lr: float, backbone_lr_mult: float = 0.1,
                 weight_decay: float = 0.0) -> list[dict]:
    """Optimizer parameter groups: head at ``lr``, backbone at ``lr * backbone_lr_mult``; biases and
    norm weights (1-D tensors) get no weight decay.  Frozen parameters are included on purpose: they have
    no gradient so optimizers skip them, and ``unfreeze_next`` needs no new optimizer."""
    if lr <= 0 or backbone_lr_mult < 0 or weight_decay < 0:
        raise RadvisionError(
            f"lr must be > 0 and backbone_lr_mult, weight_decay >= 0 (got {lr}, {backbone_lr_mult}, {weight_decay})."
        )
    groups = []
    for part, module, part_lr in (("head", model.head, lr), ("backbone", model.backbone, lr * backbone_lr_mult)):
        params = list(module.parameters())
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        if decay:
            groups.append({"params": decay, "lr": part_lr, "weight_decay": weight_decay, "name": part})
        if no_decay:
            groups.append({"params": no_decay, "lr": part_lr, "weight_decay": 0.0, "name": f"{part}_no_decay"})
    return groups
