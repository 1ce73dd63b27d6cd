"""Grad-CAM explanations per label (the ``grad-cam`` package) and PNG overlays."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from radvision.atomic import atomic_write
from radvision.errors import RadvisionError, did_you_mean
from radvision.heads import ImageClassifier

logger = logging.getLogger(__name__)

#: CAM methods of the grad-cam package by their command-line name. Grad-CAM weighs each map by its mean
#: gradient, so a class the model finds by the absence of features gets an empty map; Grad-CAM++ and LayerCAM
#: keep the positive gradients and still show where the class's evidence lies; EigenCAM ignores the class.
CAM_METHODS = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "layercam": "LayerCAM", "hirescam": "HiResCAM",
               "xgradcam": "XGradCAM", "eigencam": "EigenCAM"}


def _class_indices(model: ImageClassifier, class_names: Sequence[str] | None) -> list[int]:
    if class_names is None:
        return list(range(model.num_classes))
    if isinstance(class_names, str):
        class_names = [class_names]
    idx = []
    for c in class_names:
        if c not in model.class_names:
            raise RadvisionError(f"Unknown class '{c}'{did_you_mean(c, model.class_names)}; the model predicts: "
                                 f"{', '.join(model.class_names)}.")
        idx.append(model.class_names.index(c))
    return idx


class _PositiveTarget:
    """Grad-CAM target: the logit of class ``index`` being positive (`ImageClassifier.class_logits`: the output
    itself for a one-output head, ``z_pos - z_neg`` for a 3-way U-MultiClass head)."""

    def __init__(self, model: ImageClassifier, index: int) -> None:
        self.model, self.index = model, index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        batch = output if output.ndim == 2 else output.unsqueeze(0)  # grad-cam passes one image's output
        value = self.model.class_logits(batch)[:, self.index]
        return value if output.ndim == 2 else value[0]


def gradcam(model: ImageClassifier, image_tensor: torch.Tensor,
            class_names: Sequence[str] | None = None, method: str = "gradcam") -> dict[str, np.ndarray]:
    """Grad-CAM heatmap per label for one image: ``{class: (H, W) float32 in [0, 1]}`` at input size.

    ``image_tensor`` is the preprocessed input, ``(C, H, W)`` or ``(1, C, H, W)``.  All requested
    labels are explained in one batched forward/backward pass (the image repeated once per label), each by the
    logit of its positive output (for a U-MultiClass head, positive against negative).
    Works on frozen backbones too (the input is made to require gradients).  ``method``: one of
    ``CAM_METHODS`` (default Grad-CAM).
    """
    import pytorch_grad_cam

    if method not in CAM_METHODS:
        raise RadvisionError(f"Unknown CAM method {method!r}{did_you_mean(str(method), CAM_METHODS)}; choose one of "
                             f"{', '.join(CAM_METHODS)}.")

    x = torch.as_tensor(image_tensor)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] != 1:
        raise RadvisionError(f"gradcam explains one image: pass a (C, H, W) tensor, got shape {tuple(x.shape)}.")
    idx = _class_indices(model, class_names)
    if not idx:
        return {}
    param = next(model.parameters())
    x = x.to(device=param.device, dtype=param.dtype)
    was_training = model.training
    cam = getattr(pytorch_grad_cam, CAM_METHODS[method])(model=model, target_layers=model.cam_layers(),  # eval mode
                                                         reshape_transform=_channels_first(model))
    cam.compute_input_gradient = True  # activations need gradients even when the backbone is frozen
    grid = None  # the cam layer's map size, to explain an empty map
    try:
        with torch.enable_grad():
            maps = cam(input_tensor=x.repeat(len(idx), 1, 1, 1),
                       targets=[_PositiveTarget(model, i) for i in idx])
        acts = cam.activations_and_grads.activations
        if any(a.ndim != 4 for a in acts):  # token sequences (ViT): some methods would draw stripes without a word
            raise ValueError(f"its output has shape {tuple(acts[0].shape)}")
        grid = tuple(acts[0].shape[-2:]) if acts else None
    except (ValueError, IndexError) as err:  # grad-cam's way of saying the layer gives no 2-D maps
        raise RadvisionError(
            f"Grad-CAM needs 2-D feature maps at the backbone's cam layer, which {model.backbone.name} does not "
            f"give ({err}); use a convolutional backbone."
        ) from err
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    out = {model.class_names[i]: np.asarray(m, dtype=np.float32) for i, m in zip(idx, maps, strict=True)}
    empty = [name for name, m in out.items() if not np.any(m > 0)]
    if empty:  # no positive evidence at the cam layer: the overlay is the plain image, which looks like a bug
        layer = getattr(model.backbone, "cam_layer_name", "the cam layers")
        why = (f"the map at {layer} is {grid[0]}x{grid[1]} for {tuple(x.shape[-2:])} input; a larger "
               "data.image_size gives it room" if grid is not None and grid[0] * grid[1] <= 1 else
               f"no positive gradient x activation at {layer}; common with tiny inputs or an untrained model, "
               "or a class found by the absence of features: --method layercam or gradcam++ may still show it")
        logger.warning("%s is empty for %s (%s): there is no heat to show", CAM_METHODS[method], ", ".join(empty), why)
    return out


def _channels_first(model: torch.nn.Module):
    """grad-cam's reshape_transform for backbones whose cam layers give (B, H, W, C) maps (timm's Swin), else None."""
    backbone = model.backbone
    members = getattr(backbone, "backbones", [backbone])
    layouts = {bool(getattr(b, "maps_channels_last", False)) for b in members}
    if layouts == {False}:
        return None
    if len(layouts) > 1:
        raise RadvisionError(f"Grad-CAM over {backbone.name} would mix (B, C, H, W) and (B, H, W, C) maps; explain a "
                             "run of one backbone.")
    return lambda t: t.permute(0, 3, 1, 2) if t.ndim == 4 else t


def _rgb_float(image) -> np.ndarray:
    """Any PIL image or (H, W) / (H, W, 1|3|4) array (uint8 or float) -> (H, W, 3) float32 in [0, 1]."""
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    else:
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # channels-first tensor layout
        if arr.ndim == 3 and arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise RadvisionError(f"Overlay images must be (H, W) or (H, W, 3), got shape {arr.shape}.")
        arr = arr.astype(np.float32)
        if np.issubdtype(np.asarray(image).dtype, np.integer):
            arr /= 255.0
        else:  # float images (maybe normalised): rescale to [0, 1]
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return np.clip(arr, 0.0, 1.0)


def _resized(heatmap: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(heatmap).resize((width, height), Image.BILINEAR), dtype=np.float32)


def place_cam(cam: np.ndarray, width: int, height: int, fit: str) -> np.ndarray:
    """A heatmap of the network's square input mapped back onto the original ``width x height`` image.

    ``fit`` is the transforms' first step (`radvision.data.transforms.PRESET_FIT`): "squash" resized the
    whole image, so the map is stretched back over all of it; "crop" kept the centre square (shorter side),
    so the map covers that square and the edges the network never saw get no heat."""
    m = np.asarray(cam, dtype=np.float32)
    if fit != "crop" or width == height:
        return _resized(m, width, height)
    side = min(width, height)
    square = _resized(m, side, side)
    out = np.zeros((height, width), dtype=np.float32)
    top, left = int(round((height - side) / 2)), int(round((width - side) / 2))  # as CenterCrop places it
    out[top:top + side, left:left + side] = square
    return out


def _safe_name(text: str, empty: str) -> str:
    """`text` as part of a file name: letters and digits of any script, `.`, `-`; other runs become one `_`."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or empty


def overlay_name(prefix: str, name: str) -> str:
    """The file name `save_overlays` gives the heatmap of class `name` for an image called `prefix`."""
    return f"{_safe_name(prefix, 'image')}_{_safe_name(str(name), 'label')}.png"



def _free_name(name: str, taken: set[str]) -> str:
    """`name`, or `<stem>_2.png`, `<stem>_3.png` ... : the first not in `taken` (lower-cased names, so that a
    case-insensitive file system cannot merge two either); the choice is added to `taken`."""
    stem, candidate, n = name[: -len(".png")], name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}_{n}.png"
    taken.add(candidate.lower())
    return candidate


def save_overlays(image, cams: Mapping[str, np.ndarray], out_dir: str | Path, prefix: str,
                  image_weight: float = 0.5, taken: set[str] | None = None) -> list[Path]:
    """Write one ``<prefix>_<class>.png`` per heatmap (jet colour map over the image), atomically.

    Heatmaps of another size than the image are resized to it.  ``taken``: file names (lower case) that
    earlier calls wrote and that must not be overwritten; a clash (also between class names that sanitise
    alike) gets ``_2``, ``_3`` ... and the set is updated.  Returns the written paths.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = _rgb_float(image)
    h, w = rgb.shape[:2]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    taken = set() if taken is None else taken
    for name, cam in cams.items():
        m = np.asarray(cam, dtype=np.float32)
        if m.ndim != 2:
            raise RadvisionError(f"The heatmap for '{name}' must be 2-D, got shape {m.shape}.")
        if m.shape != (h, w):
            m = _resized(m, w, h)
        m = np.clip(np.nan_to_num(m), 0.0, 1.0)
        overlay = show_cam_on_image(rgb, m, use_rgb=True, image_weight=image_weight)
        path = out / _free_name(overlay_name(prefix, name), taken)
        atomic_write(path, lambda tmp, overlay=overlay: Image.fromarray(overlay).save(tmp, format="PNG"))
        paths.append(path)
    logger.info("wrote %d Grad-CAM overlays for %s to %s", len(paths), prefix, out)
    return paths
