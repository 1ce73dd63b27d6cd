"""Pretrained-weight resolution: ImageNet weights from the local caches, or a user's weight file.

Nothing here downloads when the environment says to stay offline (``HF_HUB_OFFLINE``,
``TORCH_HUB_OFFLINE`` or ``RADVISION_OFFLINE`` set to a true value); every failure becomes a
``RadvisionError`` that says how to supply a local file instead.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from radvision.config import check_weight_file
from radvision.errors import RadvisionError, first_line

logger = logging.getLogger(__name__)

OFFLINE_ENV_VARS = ("RADVISION_OFFLINE", "HF_HUB_OFFLINE", "TORCH_HUB_OFFLINE")
CAM_LAYER_ALIAS = "cam_layer"  # where runs saved by earlier versions hold each backbone's Grad-CAM layer a second time
# Below this share of its weight tensors found in a file, a backbone refuses it: a file for another
# architecture (efficientnet into mobilenet) shares only a few generic names and would load "successfully".
MIN_LOADED_FRACTION = 0.5
# More unplaceable tensors than this share of the loaded ones, inside the backbone's own modules, mean a deeper model.
DEEPER_FRACTION = 0.1

# Wrappers that training frameworks put around a state dict or in front of its keys.
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_DROP_PREFIXES = ("module.", "_orig_mod.")
# Old torchvision DenseNet checkpoints (e.g. CheXNet) spell "norm1" as "norm.1".
_OLD_DENSENET = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def offline() -> bool:
    """True when an environment variable forbids downloads (read at call time, not import time)."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"} for v in OFFLINE_ENV_VARS)


def torch_hub_dir() -> Path:
    """Where torchvision keeps downloaded checkpoints (``$TORCH_HOME/hub``)."""
    return Path(torch.hub.get_dir())


def how_to_supply(name: str) -> str:
    """The part of every weight error that says what the user can do instead."""
    return (
        f"give a local file as model.pretrained=/path/to/{name}.pth or .safetensors (pretrained='/path/to/{name}.pth' "
        f"in Python), put the official file in {torch_hub_dir() / 'checkpoints'} (torchvision) or the Hugging Face "
        "cache (timm), or train from scratch with model.pretrained=null (pretrained=None)"
    )


def without_cam_alias(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the copies of the Grad-CAM layer that runs saved by earlier versions hold under the alias
    "cam_layer" (besides its own place under "model."): no part of a model to load, nor to report as ignored."""
    return {k: v for k, v in state.items() if CAM_LAYER_ALIAS not in k.split(".")}


def not_cached_error(name: str, where: str = "in the local caches") -> RadvisionError:
    """The error for ImageNet weights of ``name`` that no cache holds while downloads are disabled."""
    return RadvisionError(f"ImageNet weights for {name} are not {where} and downloads are disabled; "
                          f"{how_to_supply(name.replace('/', '_'))}.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read tensors from a ``.safetensors`` file or a torch pickle (``weights_only=True``, never code)."""
    path = check_weight_file(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any reader failure means a bad user file
        raise RadvisionError(f"Could not read weight file {path} ({_unreadable_reason(err)}); it must be a "
                             "safetensors file or a torch state dict saved with torch.save (loaded with "
                             "weights_only=True).") from err
    for _ in range(3):  # unwrap {"state_dict": {...}, "epoch": ..., "best_acc1": tensor} checkpoints, nested too
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj, Mapping) and isinstance(obj.get(k), Mapping)
                      and _holds_tensors(obj[k])), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise RadvisionError(f"Weight file {path} holds a {type(obj).__name__}, not a state dict of tensors.")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise RadvisionError(f"Weight file {path} contains no tensors; keys found: {sorted(obj)[:5]}.")
    return tensors


def _holds_tensors(obj: Mapping, depth: int = 3) -> bool:
    """Whether a mapping has tensors, directly or in nested containers (e.g. {"model": {"state_dict": ...}})."""
    return any(isinstance(v, torch.Tensor) or (depth > 0 and isinstance(v, Mapping) and _holds_tensors(v, depth - 1))
               for v in obj.values())


def _unreadable_reason(err: Exception) -> str:
    """Why torch / safetensors could not read a file, without torch's advice to unpickle it anyway (unsafe)."""
    text = str(err)
    if "weights only load failed" not in text.lower():
        return f"{type(err).__name__}: {first_line(err)}"
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if "Unsupported global" in text and found:
        return (f"it holds Python objects besides tensors ({found.group(1)}), which are not loaded because that "
                "could run code; if you trust the file, allow that type first with "
                f"torch.serialization.add_safe_globals([{found.group(1)}]), or save the state dict alone")
    if found:  # a reference into a module torch blocks outright (os, subprocess, ...): never loadable
        return (f"it refers to {found.group(1)}, which weights-only loading refuses because it could run code; "
                "save the state dict alone")
    return "it is not a torch or safetensors file, or it is damaged"


def _clean_key(key: str) -> str:
    for prefix in _DROP_PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return _OLD_DENSENET.sub(r"\1\2", key)


def align_keys(
    state: Mapping[str, torch.Tensor],
    target: Mapping[str, torch.Tensor],
    prefer: str | None = None,
    source: str = "the weight file",
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Rename a foreign state dict's keys to the model's: drop wrapper prefixes (``module.``, a
    ``backbone.model.`` from a full classifier checkpoint, ``densenet121.`` ...) choosing the prefix under
    which the most of the model's tensors (``target``) fit by name and shape, then by name alone; of
    prefixes that fit equally (a run of the same backbone twice), the one holding ``prefer``
    (``backbones.1.`` for the second backbone), then the one with the fewest tensors left over; a tie
    beyond that is logged.
    Also returns the keys outside the chosen prefix (the rest of a full model, such as a run's head)."""
    cleaned = {_clean_key(k): v for k, v in state.items()}

    def score(prefix: str) -> tuple[int, int, bool, int]:
        inside = {k[len(prefix):]: v for k, v in cleaned.items() if k.startswith(prefix)} if prefix else cleaned
        hits = [k for k in inside if k in target]
        fits = sum(inside[k].shape == target[k].shape for k in hits)
        preferred = bool(prefer) and prefer in prefix
        return fits, len(hits), preferred, -(len(inside) - len(hits))

    candidates = {""}
    for k in cleaned:
        parts = k.split(".")
        candidates.update(".".join(parts[:i]) + "." for i in range(1, min(len(parts), 6)))  # backbone.backbones.0.model.
    scores = {p: score(p) for p in sorted(candidates)}  # sorted: ties go to the first in order, every run
    best_prefix = max(scores, key=lambda p: scores[p])  # max() keeps the first of equals
    rivals = [p for p in scores if p != best_prefix and scores[p] == scores[best_prefix] and scores[p][0]]
    if rivals:
        logger.warning("%s holds this backbone's weights under several prefixes (%s); loading %r. Save the one "
                       "backbone's tensors alone to choose another.", source, ", ".join([best_prefix, *rivals]),
                       best_prefix)
    renamed = {(k[len(best_prefix):] if k.startswith(best_prefix) else k): v for k, v in cleaned.items()}
    outside = {k for k in cleaned if best_prefix and not k.startswith(best_prefix)}
    return renamed, outside


def adapt_first_conv(weight: torch.Tensor, in_chans: int, source: str = "the weight file") -> torch.Tensor:
    """Fit an RGB first-conv kernel to ``in_chans`` inputs (sum for 1 channel, tile otherwise) using timm's rule."""
    from timm.models import adapt_input_conv

    if weight.shape[1] == in_chans:
        return weight
    if weight.shape[1] != 3:
        n = weight.shape[1]
        fix = ("start a one-channel model from it (data.channels=1)" if n == 1 else
               "use a file with 3-channel (RGB) or one-channel kernels")
        raise RadvisionError(
            f"The first convolution in {source} takes {n} input channel{'s' if n != 1 else ''} and cannot be adapted "
            f"to {in_chans} (only 3-channel RGB kernels can); {fix}."
        )
    return adapt_input_conv(in_chans, weight)


def load_into(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    first_conv: str | None = None,
    prefer: str | None = None,
) -> tuple[list[str], list[str]]:
    """Load ``state`` into ``module`` non-strictly; returns (missing, unexpected) keys after alignment.

    Shape mismatches are errors (they mean a different architecture), except the first convolution
    named by ``first_conv``, which is adapted to the model's input channels, and so is a file holding
    fewer than half (``MIN_LOADED_FRACTION``) of the module's weight tensors.  Heads that the backbone
    does not have (e.g. a 1000-class ``fc``) simply count as unexpected keys.  ``prefer`` picks among
    several places in the file that fit equally (see `align_keys`).
    """
    own = module.state_dict()
    state = without_cam_alias(state)
    aligned, outside = align_keys(state, own, prefer=prefer, source=source)
    matched = [k for k in aligned if k in own]
    if not matched:
        raise RadvisionError(
            f"None of the {len(aligned)} tensors in {source} match this backbone (file keys look like "
            f"{sorted(aligned)[:3]}, the backbone expects keys like {sorted(own)[:3]}); check the backbone name."
        )
    # coverage before the first convolution: another family's file can match little more than a "conv1.weight"
    learned = [k for k in own if not k.endswith("num_batches_tracked")]  # counters, not weights
    found = sum(k in aligned for k in learned)
    if found < MIN_LOADED_FRACTION * len(learned):
        absent = [k for k in learned if k not in aligned]
        raise RadvisionError(
            f"Only {found} of the backbone's {len(learned)} weight tensors are in {source} (missing, e.g. "
            f"{', '.join(absent[:3])}); the file was made for another architecture, so the model would train mostly "
            "from random weights. Pick the backbone the file was made for (model.backbone), or train from scratch "
            "with model.pretrained=null."
        )
    unexpected = sorted(k for k in aligned if k not in own)
    # tensors inside the backbone's own modules that it has no place for (layer1.2.* of a resnet34 file in a
    # resnet18): a deeper model of the same family.  A classifier (fc, head.fc) is a few tensors, not this many;
    # the rest of a full model (a radvision run's head beside "backbone.model.") is not the backbone's at all.
    own_modules = {k.split(".", 1)[0] for k in own}
    deeper = [k for k in unexpected if k.split(".", 1)[0] in own_modules and k not in outside]
    if len(deeper) > max(4, DEEPER_FRACTION * len(matched)):
        raise RadvisionError(
            f"{source} holds {len(deeper)} tensors inside this backbone's modules that it has no place for (first: "
            f"{', '.join(deeper[:3])}): the file was made for a deeper model of the same family (e.g. resnet34 "
            "weights for a resnet18). Pick the backbone the file was made for (model.backbone)."
        )
    if first_conv and first_conv in aligned and first_conv in own:
        want = own[first_conv].shape[1]
        if aligned[first_conv].ndim == 4 and aligned[first_conv].shape[1] != want:
            aligned[first_conv] = adapt_first_conv(aligned[first_conv], want, source)
    bad = [f"{k} {tuple(aligned[k].shape)} vs {tuple(own[k].shape)}" for k in matched if aligned[k].shape != own[k].shape]
    if bad:
        raise RadvisionError(
            f"{len(bad)} tensors in {source} have the wrong shape for this backbone (first: {bad[0]}); "
            "the file was made for a different architecture."
        )
    result = module.load_state_dict({k: aligned[k] for k in matched}, strict=False)
    missing = sorted(result.missing_keys)
    if missing:
        logger.warning(
            "%d backbone tensors were not in %s and keep their random init (first: %s)",
            len(missing), source, ", ".join(missing[:5]),
        )
    if unexpected:
        logger.info("ignored %d tensors from %s that the backbone lacks (first: %s)",
                    len(unexpected), source, ", ".join(unexpected[:5]))
    logger.info("loaded %d/%d backbone tensors from %s", len(matched), len(own), source)
    return missing, unexpected


def torchvision_imagenet_state(name: str, weights_enum: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of a torchvision model from the hub cache, downloading only when allowed."""
    from torchvision.models import get_weight

    weights = get_weight(weights_enum)
    cached = torchvision_cached_file(weights_enum)
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    if offline():
        raise not_cached_error(name, f"cached at {cached}")
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as err:  # network errors come in many types
        raise RadvisionError(
            f"Could not download ImageNet weights for {name} ({type(err).__name__}); " + how_to_supply(name) + "."
        ) from err


def torchvision_cached_file(weights_enum: str) -> Path:
    """Where torchvision's hub cache keeps the file of a weights enum such as 'ResNet50_Weights.IMAGENET1K_V2'."""
    from torchvision.models import get_weight

    return torch_hub_dir() / "checkpoints" / os.path.basename(get_weight(weights_enum).url)


def timm_pretrained_file(model_name: str) -> str | None:
    """A cached file holding timm's default pretrained weights for ``model_name``, or None."""
    import timm

    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        return None
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub ships with timm
            return None
        hub_id, _, revision = hub_id.partition("@")
        for filename in ("model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin"):
            found = try_to_load_from_cache(hub_id, filename, revision=revision or None)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = getattr(cfg, "url", None)
    if url:
        cached = torch_hub_dir() / "checkpoints" / os.path.basename(url)
        if cached.is_file():
            return str(cached)
    return None
