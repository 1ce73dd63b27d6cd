"""Multi-label losses on logits; every loss ignores NaN targets (unknown / U-Ignore labels).

Names: ``bce``, ``weighted_bce``, ``soft_f1``, ``f1_bce`` (soft-F1 loss x BCE), ``f1_plus_bce``
(soft-F1 loss + BCE) and ``focal``.  ``class_weights`` weight classes, ``pos_weight`` weights the
positive term per class (as in ``BCEWithLogitsLoss``).  Under the U-MultiClass policy ``bce`` becomes
`MultiClassCELoss`, a 3-way softmax cross-entropy per class (``create_loss(..., outputs_per_class=3)``).
"""

from __future__ import annotations

import difflib

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

from radvision.errors import RadvisionError

LOSSES = ("bce", "weighted_bce", "soft_f1", "f1_bce", "f1_plus_bce", "focal")
EPS = 1e-7


def _as_tensor(w, name: str) -> Tensor | None:
    if w is None:
        return None
    if isinstance(w, Tensor):
        w = w.detach().cpu().numpy()  # the module is moved to the device with .to() later
    t = torch.as_tensor(np.asarray(w, dtype=np.float32))
    if t.ndim != 1 or not torch.isfinite(t).all() or (t < 0).any():
        raise RadvisionError(f"{name} must be a 1-D array of finite non-negative numbers, one per class.")
    return t


def _check(logits: Tensor, targets: Tensor, weights: list[Tensor | None]) -> tuple[Tensor, Tensor, Tensor]:
    """(float32 logits, targets with NaN -> 0, mask of known targets).  Losses compute in float32: in half
    precision the 1 / EPS of an all-unknown batch and large logits overflow to inf / NaN gradients."""
    if logits.shape != targets.shape or logits.ndim != 2:
        raise RadvisionError(
            f"Logits and targets must both be (batch, classes); got {tuple(logits.shape)} and {tuple(targets.shape)}."
        )
    for w in weights:
        if w is not None and w.numel() != logits.shape[1]:
            raise RadvisionError(f"Got {w.numel()} class weights for {logits.shape[1]} classes.")
    logits, targets = logits.float(), targets.float()
    if ((targets < 0) | (targets > 1)).any():  # NaN compares False: unknown targets pass
        raise RadvisionError(
            f"Targets must be 1 / 0 (or soft values in between), or NaN for unknown; got values from "
            f"{targets.nan_to_num(0.5).min().item():g} to {targets.nan_to_num(0.5).max().item():g}. Map uncertain "
            "(-1) labels with an uncertainty policy first (U-Ignore / U-Zeros / U-Ones), or keep them as a third "
            "state with U-MultiClass (create_loss(..., outputs_per_class=3))."
        )
    mask = ~torch.isnan(targets)
    # masked logits become 0 so that an inf there cannot make 0 * inf = NaN in the sums (or gradients)
    logits = torch.where(mask, logits, torch.zeros_like(logits))
    return logits, torch.where(mask, targets, torch.zeros_like(targets)), mask.float()


class MaskedLoss(nn.Module):
    """Base: element losses are averaged over known targets, classes weighted by ``class_weights``.
    Targets are 1 / 0 (or soft values in between) with NaN for unknown; map uncertain -1 labels first."""

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        with torch.autocast(logits.device.type, enabled=False):  # float32 even inside an autocast region
            return super().__call__(logits, targets)

    def __init__(self, pos_weight=None, class_weights=None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", _as_tensor(pos_weight, "pos_weight"), persistent=False)
        self.register_buffer("class_weights", _as_tensor(class_weights, "class_weights"), persistent=False)
        if self.class_weights is not None and not self.class_weights.any():
            raise RadvisionError("class_weights are all 0, so the loss would be 0 and nothing would be learned; "
                                 "give at least one class a weight above 0.")

    def _mean(self, elem: Tensor, mask: Tensor) -> Tensor:
        w = mask if self.class_weights is None else mask * self.class_weights.to(elem)
        denom = w.sum()
        # An all-NaN batch contributes a zero loss that still carries a graph (backward stays valid).
        return (elem * w).sum() / denom.clamp_min(EPS)

    def _bce(self, logits: Tensor, y: Tensor, mask: Tensor) -> Tensor:
        pw = None if self.pos_weight is None else self.pos_weight.to(logits)
        return self._mean(F.binary_cross_entropy_with_logits(logits, y, pos_weight=pw, reduction="none"), mask)


class BCELoss(MaskedLoss):
    """Binary cross-entropy averaged over known targets."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits, y, mask = _check(logits, targets, [self.pos_weight, self.class_weights])
        return self._bce(logits, y, mask)


class WeightedBCELoss(MaskedLoss):
    """Weighted BCE.  With ``pos_weight``/``class_weights`` given it uses them; without, it balances each
    batch as in ChestX-ray8 (Wang et al. 2017): positives weigh (|P|+|N|)/|P|, negatives (|P|+|N|)/|N|."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits, y, mask = _check(logits, targets, [self.pos_weight, self.class_weights])
        if self.pos_weight is not None or self.class_weights is not None:
            return self._bce(logits, y, mask)
        n_pos = (y * mask).sum()
        n_neg = ((1 - y) * mask).sum()
        total = n_pos + n_neg
        beta_p = total / n_pos.clamp_min(1.0)
        beta_n = total / n_neg.clamp_min(1.0)
        elem = -(beta_p * y * F.logsigmoid(logits) + beta_n * (1 - y) * F.logsigmoid(-logits))
        return self._mean(elem, mask)


def soft_f1_per_class(logits: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Differentiable F1 per class from probabilities (tp, fp, fn as sums of p), and which classes had
    any known target."""
    p = torch.sigmoid(logits) * mask
    tp = (p * y).sum(0)
    fp = (p * (1 - y)).sum(0)
    fn = ((1 - p) * y * mask).sum(0)
    f1 = 2 * tp / (2 * tp + fp + fn + EPS)
    return f1, mask.sum(0) > 0


class SoftF1Loss(MaskedLoss):
    """1 - mean soft-F1 over classes (classes with no known target in the batch are skipped)."""

    def soft_f1_loss(self, logits: Tensor, y: Tensor, mask: Tensor) -> Tensor:
        f1, present = soft_f1_per_class(logits, y, mask)
        w = present.to(f1)
        if self.class_weights is not None:
            w = w * self.class_weights.to(f1)
        return 1 - (f1 * w).sum() / w.sum().clamp_min(EPS)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits, y, mask = _check(logits, targets, [self.class_weights])
        return self.soft_f1_loss(logits, y, mask)


class F1BCEProductLoss(SoftF1Loss):
    """(1 - soft-F1) x BCE: BCE drives calibration while the F1 factor emphasises batches with poor F1."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits, y, mask = _check(logits, targets, [self.pos_weight, self.class_weights])
        return self.soft_f1_loss(logits, y, mask) * self._bce(logits, y, mask)


class F1PlusBCELoss(SoftF1Loss):
    """(1 - soft-F1) + BCE."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits, y, mask = _check(logits, targets, [self.pos_weight, self.class_weights])
        return self.soft_f1_loss(logits, y, mask) + self._bce(logits, y, mask)


class FocalLoss(MaskedLoss):
    """Sigmoid focal loss (Lin et al. 2017, torchvision's implementation): positive terms weigh ``alpha`` and
    negative ones ``1 - alpha`` (None or negative: no such weighting; Lin et al.'s 0.25 favours negatives), ``gamma``
    down-weights easy examples; ``pos_weight`` scales positive terms."""

    def __init__(self, pos_weight=None, class_weights=None, gamma: float = 2.0, alpha: float | None = 0.25) -> None:
        super().__init__(pos_weight, class_weights)
        if gamma < 0:
            raise RadvisionError(f"Focal gamma must be >= 0, got {gamma}.")
        if alpha is not None and not alpha <= 1:
            raise RadvisionError(f"Focal alpha must be between 0 and 1, or None (or negative, as in torchvision) "
                                 f"for no weighting, got {alpha}.")
        self.gamma, self.alpha = float(gamma), (-1.0 if alpha is None else float(alpha))  # torchvision: < 0 is off

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits, y, mask = _check(logits, targets, [self.pos_weight, self.class_weights])
        elem = sigmoid_focal_loss(logits, y, alpha=self.alpha, gamma=self.gamma, reduction="none")
        if self.pos_weight is not None:
            elem = elem * (1 + (self.pos_weight.to(elem) - 1) * y)
        return self._mean(elem, mask)


class MultiClassCELoss(MaskedLoss):
    """U-MultiClass (Irvin et al. 2019): each class is a 3-way classification, negative / positive / uncertain.

    ``logits`` are (B, C * 3), class-major in that order (`radvision.heads.MULTICLASS_STATES`); ``targets``
    (B, C) hold 0, 1, -1 (uncertain) or NaN (unknown, masked).  The loss is the softmax cross-entropy of each
    known target, averaged over them with classes weighted by ``class_weights``; ``pos_weight`` scales the terms
    of positive targets per class, as it scales BCE's positive term."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        if targets.ndim != 2 or logits.shape != (targets.shape[0], targets.shape[1] * 3):
            raise RadvisionError(f"U-MultiClass logits must be (batch, classes x 3) for targets (batch, classes); got "
                                 f"{tuple(logits.shape)} and {tuple(targets.shape)}.")
        for w in (self.pos_weight, self.class_weights):
            if w is not None and w.numel() != targets.shape[1]:
                raise RadvisionError(f"Got {w.numel()} class weights for {targets.shape[1]} classes.")
        logits, targets = logits.float(), targets.float()
        mask = ~torch.isnan(targets)
        if (mask & (targets != 0) & (targets != 1) & (targets != -1)).any():
            raise RadvisionError("U-MultiClass targets must be 1, 0, -1 (uncertain) or NaN (unknown); got "
                                 f"{sorted(set(targets[mask].unique().tolist()) - {0.0, 1.0, -1.0})[:3]}.")
        index = torch.where(targets == -1, 2.0, targets).nan_to_num(0.0).long()  # 0 negative, 1 positive, 2 uncertain
        z = logits.reshape(*targets.shape, 3)
        z = torch.where(mask.unsqueeze(-1), z, torch.zeros_like(z))  # an inf at a masked place cannot reach the sum
        elem = F.cross_entropy(z.permute(0, 2, 1), index, reduction="none")
        if self.pos_weight is not None:
            elem = elem * torch.where(targets == 1, self.pos_weight.to(elem), torch.ones_like(elem))
        return self._mean(elem, mask.float())


_CLASSES = {
    "bce": BCELoss,
    "weighted_bce": WeightedBCELoss,
    "soft_f1": SoftF1Loss,
    "f1_bce": F1BCEProductLoss,
    "f1_plus_bce": F1PlusBCELoss,
    "focal": FocalLoss,
}


def create_loss(name: str, *, pos_weight=None, class_weights=None, gamma: float = 2.0,
                alpha: float | None = 0.25, outputs_per_class: int = 1) -> nn.Module:
    """A loss module by name (see ``LOSSES``); call it as ``loss(logits, targets)`` with NaN = unknown.
    ``outputs_per_class=3`` (U-MultiClass) takes only ``bce``, which is then `MultiClassCELoss`."""
    if name not in _CLASSES:
        close = difflib.get_close_matches(str(name), LOSSES, n=2)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise RadvisionError(f"Unknown loss '{name}'; {hint}valid losses: {', '.join(LOSSES)}.")
    if outputs_per_class != 1:
        if name != "bce":
            raise RadvisionError(f"U-MultiClass (3 outputs per class) trains a softmax cross-entropy, so loss {name!r} "
                                 "does not apply; use loss 'bce' (that cross-entropy; pos_weight and class_weights "
                                 "still work).")
        return MultiClassCELoss(pos_weight, class_weights)
    if name == "soft_f1" and pos_weight is not None:
        raise RadvisionError("soft_f1 has no positive term for pos_weight; use class_weights, or f1_bce / f1_plus_bce.")
    if name == "focal":
        return FocalLoss(pos_weight, class_weights, gamma=gamma, alpha=alpha)
    return _CLASSES[name](pos_weight, class_weights)
