"""Backbone registry: named image encoders that give pooled features, multi-scale maps and a Grad-CAM layer.

Like timm, the registry is data: each entry names its builder, its ImageNet weights and the module
paths of its multi-scale feature maps.  Any timm model is also available as ``"timm/<name>"``.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from radvision import weights as W
from radvision.config import is_weight_file
from radvision.errors import RadvisionError

logger = logging.getLogger(__name__)

TIMM_PREFIX = "timm/"
TIMM_NOTE = "any timm model also works as 'timm/<name>' (e.g. timm/resnet34)"


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one registry entry; ``feature_modules`` are module paths inside the wrapped model."""

    name: str
    source: str  # "torchvision" | "timm" | "builtin"
    builder: str  # torchvision function, timm model name, or builtin class
    weights: str | None = None  # torchvision weights enum, e.g. "ResNet50_Weights.IMAGENET1K_V2"
    family: str = ""  # how to strip the ImageNet classifier (torchvision only)
    feature_modules: tuple[str, ...] = ()
    feature_channels: tuple[int, ...] = ()
    cam_layer: str = ""
    num_features: int = 0
    default_size: int = 224
    min_size: int = 32
    extra: dict = field(default_factory=dict)
    # The input normalisation the architecture's weights expect, when it is not ImageNet's (Inception: 0.5);
    # images always arrive ImageNet-normalised and the Backbone converts them (see InputNorm).
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    fixed_size: int = 0  # a model that takes only this input size (e.g. timm ViTs); 0: any size >= min_size


def _tv(name, weights, family, modules, channels, cam, nfeat, size=224, min_size=32, mean=None, std=None):
    return BackboneSpec(name, "torchvision", name, weights, family, tuple(modules), tuple(channels), cam, nfeat,
                        size, min_size, mean=mean, std=std)


INCEPTION_NORM = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}  # the TF-ported Inception weights' input


def _vgg_pools(cfg: list) -> list[str]:
    """Module paths of the max-pool layers in torchvision's VGG ``features`` (each conv adds conv+relu)."""
    paths, i = [], 0
    for c in cfg:
        if c == "M":
            paths.append(f"features.{i}")
            i += 1
        else:
            i += 2
    return paths


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
_CONVNEXT = [f"features.{i}" for i in (1, 3, 5, 7)]

REGISTRY: dict[str, BackboneSpec] = {
    s.name: s
    for s in [
        _tv("vgg16", "VGG16_Weights.IMAGENET1K_V1", "vgg", _vgg_pools(_VGG16), [64, 128, 256, 512, 512],
            _vgg_pools(_VGG16)[-1], 512),
        _tv("vgg19", "VGG19_Weights.IMAGENET1K_V1", "vgg", _vgg_pools(_VGG19), [64, 128, 256, 512, 512],
            _vgg_pools(_VGG19)[-1], 512),
        _tv("resnet18", "ResNet18_Weights.IMAGENET1K_V1", "resnet", ["layer1", "layer2", "layer3", "layer4"],
            [64, 128, 256, 512], "layer4", 512),
        _tv("resnet50", "ResNet50_Weights.IMAGENET1K_V2", "resnet", ["layer1", "layer2", "layer3", "layer4"],
            [256, 512, 1024, 2048], "layer4", 2048),
        _tv("densenet121", "DenseNet121_Weights.IMAGENET1K_V1", "densenet",
            ["features.denseblock1", "features.denseblock2", "features.denseblock3", "features.norm5"],
            [256, 512, 1024, 1024], "features.norm5", 1024),
        _tv("densenet169", "DenseNet169_Weights.IMAGENET1K_V1", "densenet",
            ["features.denseblock1", "features.denseblock2", "features.denseblock3", "features.norm5"],
            [256, 512, 1280, 1664], "features.norm5", 1664),
        _tv("inception_v3", "Inception_V3_Weights.IMAGENET1K_V1", "inception",
            ["Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"],
            [64, 192, 288, 768, 2048], "Mixed_7c", 2048, size=299, min_size=75, **INCEPTION_NORM),
        _tv("mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V2", "mobilenet_v2",
            ["features.3", "features.6", "features.13", "features.18"], [24, 32, 96, 1280], "features.18", 1280),
        _tv("mobilenet_v3_large", "MobileNet_V3_Large_Weights.IMAGENET1K_V2", "mobilenet_v3",
            ["features.3", "features.6", "features.12", "features.16"], [24, 40, 112, 960], "features.16", 1280),
        _tv("efficientnet_b0", "EfficientNet_B0_Weights.IMAGENET1K_V1", "efficientnet",
            ["features.2", "features.3", "features.5", "features.8"], [24, 40, 112, 1280], "features.8", 1280),
        _tv("convnext_tiny", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1", "convnext", _CONVNEXT,
            [96, 192, 384, 768], "features.7", 768),
        _tv("convnext_small", "ConvNeXt_Small_Weights.IMAGENET1K_V1", "convnext", _CONVNEXT,
            [96, 192, 384, 768], "features.7", 768),
        _tv("convnext_base", "ConvNeXt_Base_Weights.IMAGENET1K_V1", "convnext", _CONVNEXT,
            [128, 256, 512, 1024], "features.7", 1024),
        _tv("convnext_large", "ConvNeXt_Large_Weights.IMAGENET1K_V1", "convnext", _CONVNEXT,
            [192, 384, 768, 1536], "features.7", 1536),
        # Feature maps, channels and width come from timm's own feature_info at build time.
        BackboneSpec("inception_resnet_v2", "timm", "inception_resnet_v2", num_features=1536, default_size=299,
                     min_size=75),  # num_features for listings; the build reads the width from timm
        BackboneSpec("simple_cnn", "builtin", "SimpleCNN", None, "", ("blocks.0", "blocks.1", "blocks.2", "blocks.3"),
                     (16, 32, 64, 128), "blocks.3", 128, default_size=64, min_size=16),
    ]
}


class SimpleCNN(nn.Module):
    """Four conv-BN-ReLU-pool blocks: a few thousand parameters, good for 64x64 images and fast tests."""

    def __init__(self, in_chans: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        blocks, prev = [], in_chans
        for w in widths:
            blocks.append(nn.Sequential(nn.Conv2d(prev, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                                        nn.ReLU(inplace=True), nn.MaxPool2d(2)))
            prev = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.pool(self.blocks(x)), 1)


class InputNorm(nn.Module):
    """Turns ImageNet-normalised images into the normalisation a model's weights expect (e.g. Inception's
    (x - 0.5) / 0.5).  It depends on the architecture only, never on whether weights were loaded, so a run
    predicts with exactly the preprocessing it trained with.  One or four channels use the channel means."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], in_chans: int) -> None:
        super().__init__()
        from radvision.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        def per_channel(values: tuple[float, ...]) -> list[float]:  # plain floats: also works on the meta device
            return list(values) if in_chans == len(values) else [sum(values) / len(values)] * in_chans

        src_mean, src_std = per_channel(IMAGENET_MEAN), per_channel(IMAGENET_STD)
        dst_mean, dst_std = per_channel(tuple(mean)), per_channel(tuple(std))
        scale = [a / b for a, b in zip(src_std, dst_std, strict=True)]
        shift = [(a - b) / c for a, b, c in zip(src_mean, dst_mean, dst_std, strict=True)]
        # not saved in the weights: the registry recreates them
        self.register_buffer("scale", torch.tensor(scale).view(1, in_chans, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, in_chans, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


def _needs_input_norm(mean, std) -> bool:
    from radvision.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    if mean is None or std is None:
        return False
    return not (_close(tuple(mean), IMAGENET_MEAN) and _close(tuple(std), IMAGENET_STD))


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


class Backbone(nn.Module):
    """A wrapped image model: ``forward`` gives pooled features ``(B, num_features)``; ``feature_maps``
    gives the multi-scale maps (low -> high level) captured with forward hooks, so both paths share
    the same modules and Grad-CAM sees the layers the classifier really uses."""

    def __init__(self, name: str, model: nn.Module, feature_modules: list[str], feature_channels: list[int],
                 cam_layer: str, num_features: int, min_size: int = 0, input_norm: nn.Module | None = None,
                 fixed_size: int = 0, maps_channels_last: bool = False) -> None:
        super().__init__()
        self.min_size = int(min_size)
        self.fixed_size = int(fixed_size)
        # timm's Swin and kin give (B, H, W, C) maps at their stages; feature_maps and Grad-CAM turn them to (B, C, H, W)
        self.maps_channels_last = bool(maps_channels_last)
        self.input_norm = input_norm if input_norm is not None else nn.Identity()
        self.name = name
        self.model = model
        self.feature_module_names = list(feature_modules)
        self.feature_channels = list(feature_channels)
        self.num_features = int(num_features)
        self.cam_layer_name = cam_layer
        _ = self.cam_layer  # a wrong name fails here (a RadvisionError), not at the first Grad-CAM

    @property
    def cam_layer(self) -> nn.Module:
        # looked up, not stored: a module attribute would register the layer a second time, so the state dict
        # would hold its tensors twice (and plain safetensors save_file refuses shared tensors)
        try:
            return self.model.get_submodule(self.cam_layer_name)
        except AttributeError:  # else nn.Module.__getattr__ would say the Backbone has no attribute cam_layer
            raise RadvisionError(f"cam_layer_name {self.cam_layer_name!r} names no layer of backbone {self.name}'s "
                                 "model; give a path from model.named_modules() (e.g. 'layer4').") from None

    @cam_layer.setter
    def cam_layer(self, layer: nn.Module) -> None:
        name = next((n for n, m in self.model.named_modules() if m is layer and n), None)
        if name is None:
            raise RadvisionError(f"cam_layer must be a layer inside backbone {self.name}'s model; set cam_layer_name "
                                 "to its path instead (e.g. 'layer4' for a ResNet).")
        self.cam_layer_name = name

    def __setattr__(self, name: str, value: object) -> None:
        if name == "cam_layer":  # nn.Module would register the layer as a second submodule, past the property
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def cam_layers(self) -> list[nn.Module]:
        return [self.cam_layer]

    def _check_size(self, x: Tensor) -> None:
        if x.ndim == 4 and self.fixed_size and tuple(x.shape[-2:]) != (self.fixed_size, self.fixed_size):
            raise RadvisionError(
                f"{self.name} takes only {self.fixed_size}x{self.fixed_size} images (a fixed input size), got "
                f"{x.shape[-2]}x{x.shape[-1]}; set data.image_size={self.fixed_size} or pick another backbone."
            )
        if x.ndim == 4 and min(x.shape[-2:]) < self.min_size:
            others = small_input_backbones(min(x.shape[-2:]), exclude=self.name)
            pick = f" or pick a backbone such as {' or '.join(others)}" if others else ""
            raise RadvisionError(
                f"{self.name} needs images of at least {self.min_size}x{self.min_size} pixels, got "
                f"{x.shape[-2]}x{x.shape[-1]}; resize the images{pick}."
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_size(x)
        return self.model(self.input_norm(x))

    def forward_with_maps(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Pooled features and the multi-scale maps from one pass."""
        self._check_size(x)
        captured: dict[str, Tensor] = {}
        handles = []
        for path in self.feature_module_names:
            def hook(_m, _inp, out, path=path):
                captured[path] = out
            handles.append(self.model.get_submodule(path).register_forward_hook(hook))
        try:
            pooled = self.model(self.input_norm(x))
        finally:
            for h in handles:
                h.remove()
        maps = [captured[p] for p in self.feature_module_names]
        if self.maps_channels_last:
            maps = [m.permute(0, 3, 1, 2) if isinstance(m, Tensor) and m.ndim == 4 else m for m in maps]
        if any(not isinstance(m, Tensor) or m.ndim != 4 for m in maps):
            raise RadvisionError(
                f"Backbone {self.name} does not produce 2-D feature maps at {self.feature_module_names}; "
                "the fpn head needs a convolutional backbone, use head='linear' or 'mlp'."
            )
        return pooled, maps

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        return self.forward_with_maps(x)[1]


class MultiBackbone(nn.Module):
    """Several backbones run on the same image; pooled features are concatenated (feature fusion)."""

    def __init__(self, backbones: list[Backbone]) -> None:
        super().__init__()
        if not backbones:
            raise RadvisionError("MultiBackbone needs at least one backbone; pass a non-empty list of names.")
        self.backbones = nn.ModuleList(backbones)
        self.name = "+".join(b.name for b in backbones)
        self.num_features = sum(b.num_features for b in backbones)
        self.feature_channels = [c for b in backbones for c in b.feature_channels]

    @property
    def cam_layer(self) -> nn.Module:
        return self.backbones[0].cam_layer

    def __setattr__(self, name: str, value: object) -> None:
        if name == "cam_layer":
            raise RadvisionError("A MultiBackbone's Grad-CAM layers are its backbones'; set cam_layer on one of "
                                 "its backbones (multi.backbones[i].cam_layer = layer).")
        super().__setattr__(name, value)

    @property
    def cam_layers(self) -> list[nn.Module]:
        return [b.cam_layer for b in self.backbones]

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([b(x) for b in self.backbones], dim=1)

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        raise RadvisionError(
            f"Concatenated backbones ({self.name}) have no single feature pyramid; use one backbone with the "
            "fpn head, or head='linear' or 'mlp' with several."
        )


def small_input_backbones(size: int, exclude: str = "") -> list[str]:
    """Common small backbones, other than ``exclude``, that accept ``size x size`` images (for error hints)."""
    return [n for n in ("simple_cnn", "resnet18") if n != exclude and REGISTRY[n].min_size <= size]


def list_backbones() -> list[str]:
    """Registry names, sorted; besides these, any timm model works as ``"timm/<name>"`` (see TIMM_NOTE)."""
    return sorted(REGISTRY)


def describe_backbones() -> list[dict]:
    """One row per registry entry (name, source, pooled width, ImageNet weights, usual and smallest input
    size) for listings."""
    return [
        {"name": s.name, "source": s.source, "num_features": s.num_features or None,
         "weights": s.weights or ("timm default" if s.source == "timm" else None), "input_size": s.default_size,
         "min_size": s.min_size}
        for s in (REGISTRY[n] for n in list_backbones())
    ]


def get_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name`` (``timm/<name>`` gives an ad-hoc timm entry)."""
    if not isinstance(name, str):
        raise RadvisionError(f"A backbone name must be a string, got {name!r}; valid names: "
                             f"{', '.join(list_backbones())}, or {TIMM_NOTE}.")
    if name in REGISTRY:
        return REGISTRY[name]
    if name.startswith(TIMM_PREFIX):
        import timm

        model_name = name[len(TIMM_PREFIX) :]
        if not timm.is_model(model_name):
            close = difflib.get_close_matches(model_name.lower(), timm.list_models(), n=3)
            hint = f"did you mean {', '.join(TIMM_PREFIX + c for c in close)}?" if close else "see timm.list_models()."
            raise RadvisionError(f"timm has no model named '{model_name}'; {hint}")
        pretrained_cfg = timm.models.get_pretrained_cfg(model_name)  # metadata only, nothing is downloaded
        # timm models vary: no minimum size, but some take one size only
        return BackboneSpec(name, "timm", model_name, min_size=0,
                            fixed_size=_fixed_size(pretrained_cfg.to_dict() if pretrained_cfg else None))
    close = difflib.get_close_matches(str(name).lower(), list_backbones(), n=3, cutoff=0.5)  # names are lower case
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise RadvisionError(
        f"Unknown backbone '{name}'; {hint}valid names: {', '.join(list_backbones())}, or {TIMM_NOTE}."
    )


def check_imagenet_offline(name: str) -> None:
    """Raise the error building ``name`` with pretrained='imagenet' would raise when downloads are disabled and
    no cache holds its weights: a cheap look at the caches, so a run can say so before reading any data."""
    spec = get_spec(name)
    if not W.offline() or spec.source not in ("torchvision", "timm"):
        return
    if spec.source == "torchvision":
        cached = W.torchvision_cached_file(spec.weights)
        if not cached.is_file():
            raise W.not_cached_error(name, f"cached at {cached}")
    elif W.timm_pretrained_file(spec.builder) is None:
        raise W.not_cached_error(name)


def _strip_classifier(family: str, model: nn.Module) -> None:
    """Make the torchvision model return pooled pre-logit features instead of ImageNet logits."""
    if family == "vgg":
        model.avgpool = nn.AdaptiveAvgPool2d(1)  # 512 pooled features instead of the 25088-wide flatten
        model.classifier = nn.Identity()
    elif family in ("resnet", "inception"):
        model.fc = nn.Identity()
        if family == "inception":
            model.dropout = nn.Identity()  # heads own their dropout
    elif family in ("densenet", "mobilenet_v2", "efficientnet"):
        model.classifier = nn.Identity()
    elif family == "mobilenet_v3":
        model.classifier = nn.Sequential(model.classifier[0], model.classifier[1])  # 960 -> 1280 + hardswish
    elif family == "convnext":
        model.classifier = nn.Sequential(model.classifier[0], model.classifier[1])  # LayerNorm2d + flatten
    else:  # pragma: no cover - registry data error
        raise ValueError(f"unknown family {family}")


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for path, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            return path, mod
    raise RadvisionError("This backbone has no 2-D convolution to adapt to in_chans; use in_chans=3.")


def _set_in_chans(model: nn.Module, in_chans: int) -> None:
    """Replace the first convolution so the model takes ``in_chans`` channels (RGB kernels are adapted)."""
    path, conv = _first_conv(model)
    if conv.in_channels == in_chans:
        return
    new = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(W.adapt_first_conv(conv.weight.detach(), in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach())
    parent_path, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, attr, new)


def _build_torchvision(spec: BackboneSpec, pretrained: str | Path | None, in_chans: int) -> nn.Module:
    import torchvision.models as tvm

    kwargs = {"weights": None}
    if spec.family == "inception":
        # the Inception input normalisation is the Backbone's InputNorm, the same with and without weights
        kwargs.update(aux_logits=False, init_weights=pretrained is None, transform_input=False)
    model = getattr(tvm, spec.builder)(**kwargs)
    if pretrained == "imagenet":
        state = W.torchvision_imagenet_state(spec.name, spec.weights)
        W.load_into(model, state, source=f"torchvision {spec.weights}", first_conv=_first_conv(model)[0] + ".weight")
    _strip_classifier(spec.family, model)
    _set_in_chans(model, in_chans)
    return model


def _build_timm(spec: BackboneSpec, pretrained: str | Path | None, in_chans: int) -> tuple[nn.Module, BackboneSpec]:
    import timm

    kwargs: dict = {"num_classes": 0, "in_chans": in_chans}
    if pretrained == "imagenet":
        cached = W.timm_pretrained_file(spec.builder)
        if cached is None and W.offline():
            raise W.not_cached_error(spec.name)
        kwargs["pretrained"] = True
        if cached is not None:  # load the cached file directly rather than asking the hub
            kwargs["pretrained_cfg_overlay"] = {"file": cached}
    try:
        model = timm.create_model(spec.builder, **kwargs)
    except RadvisionError:
        raise
    except Exception as err:  # download / hub failures surface as many exception types
        if pretrained != "imagenet":
            raise
        raise RadvisionError(
            f"Could not get ImageNet weights for {spec.name} ({type(err).__name__}); "
            + W.how_to_supply(spec.name.replace("/", "_")) + "."
        ) from err
    info = [f for f in getattr(model, "feature_info", []) if isinstance(f, dict) and "module" in f]
    if not info:
        raise RadvisionError(f"timm model {spec.builder} exposes no feature_info, so it cannot be used as a backbone.")
    width = getattr(model, "head_hidden_size", None) or model.num_features
    cfg = getattr(model, "pretrained_cfg", None) or {}
    full = BackboneSpec(spec.name, "timm", spec.builder, None, "", tuple(f["module"] for f in info),
                        tuple(int(f["num_chs"]) for f in info), spec.cam_layer or info[-1]["module"], int(width),
                        spec.default_size, spec.min_size, mean=_tuple(cfg.get("mean")), std=_tuple(cfg.get("std")),
                        fixed_size=_fixed_size(cfg))
    return model, full


def _tuple(values) -> tuple[float, ...] | None:
    return tuple(float(v) for v in values) if values is not None else None


def _fixed_size(pretrained_cfg) -> int:
    """The one input size a timm model takes (its pretrained_cfg says fixed_input_size), else 0."""
    cfg = pretrained_cfg or {}
    size = cfg.get("input_size")
    return int(size[-1]) if cfg.get("fixed_input_size") and size else 0


def create_backbone(name: str, pretrained: str | Path | None = None, in_chans: int = 3,
                    input_norm: bool = True, position: int | None = None) -> Backbone:
    """Build a registry backbone (or ``timm/<name>``).

    ``pretrained``: None (random init), ``"imagenet"`` (torchvision/timm weights from the local cache,
    downloaded only when allowed), or a path to a ``.pth``/``.safetensors`` state dict (keys are aligned,
    wrapper prefixes such as ``module.`` stripped; missing/unexpected keys are logged).  ``input_norm``: convert
    ImageNet-normalised input to the normalisation the architecture's weights expect (`InputNorm`).
    ``position``: this backbone's index among several (`build_model`): from a weight file saved by a run
    of several backbones it takes the entry that fits it (name and shape), and of equal fits the one saved
    for that place.
    """
    if not isinstance(in_chans, int) or isinstance(in_chans, bool) or in_chans < 1:
        raise RadvisionError(f"in_chans must be a positive integer, got {in_chans!r}.")
    spec = get_spec(name)
    file = None
    if pretrained is not None and pretrained != "imagenet":
        if not is_weight_file(pretrained):
            raise RadvisionError(
                f"pretrained={pretrained!r} is not understood; use None, 'imagenet' or a path to a weight file."
            )
        file, pretrained = Path(pretrained), None
    if spec.source == "torchvision":
        model = _build_torchvision(spec, pretrained, in_chans)
    elif spec.source == "timm":
        model, spec = _build_timm(spec, pretrained, in_chans)
    else:
        if pretrained == "imagenet":
            raise RadvisionError(f"{name} has no ImageNet weights; use model.pretrained=null (pretrained=None) or a local weight file.")
        model = _BUILTINS[spec.builder](in_chans=in_chans)
    if file is not None:
        W.load_into(model, W.read_state_dict(file), source=str(file), first_conv=_first_conv(model)[0] + ".weight",
                    prefer=None if position is None else f"backbones.{position}.")
    logger.debug("built backbone %s (%s, pretrained=%s, in_chans=%d)", name, spec.source, pretrained or file,
                 in_chans)
    norm = InputNorm(spec.mean, spec.std, in_chans) if input_norm and _needs_input_norm(spec.mean, spec.std) else None
    return Backbone(name, model, list(spec.feature_modules), list(spec.feature_channels), spec.cam_layer,
                    spec.num_features, min_size=spec.min_size, input_norm=norm, fixed_size=spec.fixed_size,
                    maps_channels_last=getattr(model, "output_fmt", "NCHW") == "NHWC")


_BUILTINS: dict[str, Callable[..., nn.Module]] = {"SimpleCNN": SimpleCNN}
