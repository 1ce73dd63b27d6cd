"""Classification heads (linear, MLP, FPN) and the ``ImageClassifier`` that joins a backbone to a head."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork

from radvision.backbones import Backbone, MultiBackbone, create_backbone
from radvision.errors import RadvisionError, did_you_mean

logger = logging.getLogger(__name__)

HEADS = ("linear", "mlp", "fpn")
HEAD_OPTIONS = {"hidden", "dropout", "fpn_channels"}
# Dropout when the caller gives none: the MLP follows the 2 x 4096 + 0.5 recipe; linear/FPN heads none.
DEFAULT_DROPOUT = {"linear": 0.0, "mlp": 0.5, "fpn": 0.0}
#: The outputs of a class in a 3-way (U-MultiClass) head, in this order: logits (B, C * 3), class-major.
MULTICLASS_STATES = ("negative", "positive", "uncertain")


def class_logits(logits: Tensor, outputs_per_class: int = 1) -> Tensor:
    """(B, C) logits whose sigmoid is each class's probability of being positive.

    With one output per class these are the logits themselves.  A 3-way head (``MULTICLASS_STATES``) gives
    ``z_pos - z_neg``, whose sigmoid is p_pos / (p_neg + p_pos): the softmax restricted to negative and positive,
    as the CheXpert paper reports U-MultiClass models (Irvin et al. 2019)."""
    if outputs_per_class == 1:
        return logits
    z = logits.reshape(logits.shape[0], -1, outputs_per_class)
    return z[..., 1] - z[..., 0]


class FPNHead(nn.Module):
    """Feature pyramid over the backbone's multi-scale maps (lateral 1x1 convs, top-down upsampling, 3x3
    smoothing: torchvision's ``FeaturePyramidNetwork``), then each level average-pooled, concatenated and
    classified by one linear layer, as in the NIH DenseNet121+FPN study."""

    uses_feature_maps = True

    def __init__(self, feature_channels: Sequence[int], num_classes: int, fpn_channels: int = 256,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.fpn = FeaturePyramidNetwork(list(feature_channels), fpn_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(fpn_channels * len(feature_channels), num_classes)
        self.num_levels = len(feature_channels)

    def forward(self, maps: list[Tensor]) -> Tensor:
        if len(maps) != self.num_levels:
            raise RadvisionError(f"The fpn head expects {self.num_levels} feature maps, got {len(maps)}.")
        levels = self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps)))
        pooled = torch.cat([torch.flatten(self.pool(v), 1) for v in levels.values()], dim=1)
        return self.fc(self.dropout(pooled))


def create_head(
    kind: str,
    in_features: int,
    num_classes: int,
    *,
    hidden: Sequence[int] = (4096, 4096),
    dropout: float | None = None,
    feature_channels: list[int] | None = None,
    fpn_channels: int = 256,
) -> nn.Module:
    """A head producing ``num_classes`` logits.

    ``linear``: [dropout] + Linear on pooled features.  ``mlp``: Linear-ReLU-Dropout per ``hidden`` width,
    then Linear.  ``fpn``: ``FPNHead`` over ``feature_channels`` maps.  ``dropout=None`` uses the
    per-kind default (``DEFAULT_DROPOUT``: 0.5 for mlp, 0 otherwise).
    """
    if kind not in HEADS:
        raise RadvisionError(f"Unknown head '{kind}'{did_you_mean(kind, HEADS)}; valid heads: {', '.join(HEADS)}.")
    if num_classes < 1:
        raise RadvisionError(f"num_classes must be at least 1, got {num_classes}.")
    p = DEFAULT_DROPOUT[kind] if dropout is None else float(dropout)
    if not 0.0 <= p < 1.0:
        raise RadvisionError(f"dropout must be in [0, 1), got {dropout}.")
    if kind == "fpn":
        if isinstance(fpn_channels, bool) or not isinstance(fpn_channels, int) or fpn_channels < 1:
            raise RadvisionError(f"fpn_channels must be a positive whole number, got {fpn_channels!r}.")
        if not feature_channels:
            raise RadvisionError("The fpn head needs feature_channels (the backbone's multi-scale map widths).")
        return FPNHead(feature_channels, num_classes, fpn_channels=fpn_channels, dropout=p)
    layers: list[nn.Module] = []
    width = in_features
    if kind == "mlp":
        if not hidden or any(int(h) < 1 for h in hidden):
            raise RadvisionError(f"The mlp head needs positive hidden widths, got {hidden!r}.")
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(inplace=True), nn.Dropout(p)]
            width = int(h)
    elif p > 0:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class ImageClassifier(nn.Module):
    """Backbone + head + class names.  ``forward`` returns logits ``(B, C)``; the fpn head reads the
    backbone's feature maps, the others its pooled features.

    BatchNorm layers whose parameters are all frozen stay in eval mode during training, so a frozen
    (feature-extractor) backbone keeps its running statistics.
    """

    def __init__(self, backbone: Backbone | MultiBackbone, head: nn.Module, class_names: list[str],
                 outputs_per_class: int = 1) -> None:
        super().__init__()
        class_names = [str(c) for c in class_names]
        if len(set(class_names)) != len(class_names):
            raise RadvisionError("class_names contains duplicates; every class needs a unique name.")
        if outputs_per_class not in (1, len(MULTICLASS_STATES)):
            raise RadvisionError(f"outputs_per_class must be 1 or {len(MULTICLASS_STATES)}, got {outputs_per_class!r}.")
        out = _head_out_features(head)
        if out is not None and out != len(class_names) * outputs_per_class:
            per = "" if outputs_per_class == 1 else f" ({outputs_per_class} outputs per class)"
            raise RadvisionError(f"The head predicts {out / outputs_per_class:g} classes{per} but {len(class_names)} "
                                 "class_names were given.")
        self.backbone = backbone
        self.head = head
        self.class_names = class_names
        self.outputs_per_class = outputs_per_class  # 3: negative / positive / uncertain logits (U-MultiClass)
        self.uses_feature_maps = bool(getattr(head, "uses_feature_maps", False))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def cam_layers(self) -> list[nn.Module]:
        """The layers Grad-CAM should explain (one per backbone)."""
        return list(self.backbone.cam_layers)

    def features(self, x: Tensor) -> Tensor:
        """Pooled backbone features ``(B, num_features)`` (for caching / fusion)."""
        return self.backbone(x)

    def class_logits(self, logits: Tensor) -> Tensor:
        """`forward`'s logits as (B, C) positive-class logits (see the module's `class_logits`)."""
        return class_logits(logits, self.outputs_per_class)

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, C) probability of each class being positive, from `forward`'s logits."""
        return torch.sigmoid(self.class_logits(logits).float())

    def forward(self, x: Tensor) -> Tensor:
        """Logits: (B, C), or (B, C * 3) for a 3-way head (class-major, `MULTICLASS_STATES` order)."""
        if self.uses_feature_maps:
            return self.head(self.backbone.feature_maps(x))
        return self.head(self.backbone(x))

    def train(self, mode: bool = True) -> ImageClassifier:
        super().train(mode)
        if mode:  # frozen parts of the backbone are a fixed feature extractor: no BatchNorm statistics
            for m in self.backbone.modules():  # updates, no dropout or stochastic depth (convnext, efficientnet)
                params = list(m.parameters())
                if params and not any(p.requires_grad for p in params):
                    m.eval()
        return self


def _head_out_features(head: nn.Module) -> int | None:
    last = [m for m in head.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else None


def build_model(
    backbone: str | list[str],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    head: str = "linear",
    pretrained: str | Path | None | list = None,
    in_chans: int = 3,
    input_norm: bool = True,
    outputs_per_class: int = 1,
    **head_kwargs,
) -> ImageClassifier:
    """Backbone(s) by name + a head.  Several names build a ``MultiBackbone`` (features concatenated);
    ``pretrained`` may then be one value for all or a list with one value per backbone; ``input_norm`` as in
    `create_backbone`; ``outputs_per_class=3`` makes a 3-way (negative / positive / uncertain) head for
    U-MultiClass."""
    names = [backbone] if isinstance(backbone, str) else list(backbone)
    if not names:
        raise RadvisionError("build_model needs at least one backbone name.")
    class_names = [f"class_{i}" for i in range(num_classes)] if class_names is None else list(class_names)
    if len(class_names) != num_classes:
        raise RadvisionError(f"num_classes is {num_classes} but {len(class_names)} class_names were given.")
    pre = list(pretrained) if isinstance(pretrained, list | tuple) else [pretrained] * len(names)
    if len(pre) != len(names):
        raise RadvisionError(f"pretrained lists {len(pre)} values for {len(names)} backbones; give one per backbone.")
    if head == "fpn" and len(names) > 1:
        raise RadvisionError("The fpn head works with one backbone; use head='linear' or 'mlp' for several.")
    unknown = sorted(set(head_kwargs) - HEAD_OPTIONS)
    if unknown:
        raise RadvisionError(f"Unknown head option(s) {unknown}; valid options: {', '.join(sorted(HEAD_OPTIONS))}.")
    for option, owner in (("hidden", "mlp"), ("fpn_channels", "fpn")):  # else ignored without a word
        if head_kwargs.get(option) is not None and head != owner:
            raise RadvisionError(f"Head option {option!r} belongs to head='{owner}'; the {head!r} head has no use "
                                 f"for it: leave it out or use head='{owner}'.")
    several = len(names) > 1
    bbs = [create_backbone(n, pretrained=p, in_chans=in_chans, input_norm=input_norm, position=i if several else None)
           for i, (n, p) in enumerate(zip(names, pre, strict=True))]
    bb: Backbone | MultiBackbone = bbs[0] if len(bbs) == 1 else MultiBackbone(bbs)
    h = create_head(head, bb.num_features, num_classes * outputs_per_class, feature_channels=list(bb.feature_channels),
                    **head_kwargs)
    logger.info("built %s + %s head for %d classes%s", bb.name, head, num_classes,
                "" if outputs_per_class == 1 else f" x {outputs_per_class} outputs")
    return ImageClassifier(bb, h, class_names, outputs_per_class=outputs_per_class)
