"""Image transform presets (torchvision.transforms.v2).

Every preset takes a PIL image or a uint8 tensor (C, H, W) and returns a float32 tensor
(channels, size, size), ImageNet-normalised: pretrained backbones expect that, and a grayscale
radiograph is repeated onto 3 channels (``channels=1`` keeps one channel, normalised with the
mean of ImageNet's statistics).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from radvision.data.images import to_8bit
from radvision.data.table import check_choice
from radvision.errors import RadvisionError
from radvision.presets import MODIFIERS, PRESET_FIT, PRESETS, parse_preset

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MODIFIERS", "PRESETS", "PRESET_FIT", "build_transforms",
           "fit_geometry", "gray_uint8", "parse_preset", "preset_fit"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
def gray_uint8(image: torch.Tensor) -> torch.Tensor:
    """A (..., 3, H, W) colour image as (..., 1, H, W) gray.  uint8 goes by Pillow's "L" (ITU-R 601 weights in its
    fixed point, rounded), so a gray picture stored as RGB keeps its levels: torchvision's Grayscale truncates,
    and each level came out one darker.  Other dtypes (float in 0..1) go through torchvision's."""
    if image.shape[-3] == 1:
        return image
    if image.dtype != torch.uint8:
        return v2.functional.rgb_to_grayscale(image)
    r, g, b = image.to(torch.int32).unbind(-3)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(-3)


def _gray(image: torch.Tensor) -> torch.Tensor:
    return tv_tensors.wrap(gray_uint8(image), like=image)


def preset_fit(preset: str) -> str:
    """The fit ("crop" or "squash") of a preset string such as "default+equalize"; see `PRESET_FIT`.  A bad
    preset fails here, before a cache is built for it."""
    return PRESET_FIT[parse_preset(preset)[0]]


def fit_geometry(fit: str, size: int) -> list:
    """The deterministic steps that bring any image to size x size: the evaluation geometry, and what the
    cache stores, so a cached image and a decoded one reach the model as the same pixels."""
    if fit == "crop":
        return [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return [v2.Resize((size, size), antialias=True)]


def _augmentation(preset: str, size: int) -> list:
    """Random training steps, applied to the size x size image of `fit_geometry` (a square, so the random
    crop really varies on portrait and landscape radiographs too)."""
    if preset == "default":
        return [
            v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),  # ~90 % side
            v2.RandomAffine(degrees=7, translate=(0.04, 0.04), scale=(0.95, 1.05)),
            v2.RandomHorizontalFlip(p=0.5),
        ]
    if preset == "chexpert_study":
        # Random ~90 % crop, resize, small affine, Gaussian blur with p=0.4.
        return [
            v2.Resize(round(size / 0.9), antialias=True),
            v2.RandomCrop(size),
            v2.RandomAffine(degrees=5, translate=(0.03, 0.03), scale=(0.95, 1.05)),
            v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 1.5))], p=0.4),
        ]
    if preset == "nih_study":  # CheXNet (Rajpurkar et al. 2017): random horizontal flip
        return [v2.RandomHorizontalFlip(p=0.5)]
    return []


def build_transforms(
    preset: str = "default",
    size: int = 224,
    train: bool = True,
    channels: int = 3,
    normalize: bool = True,
) -> Callable:
    """Transform for training (``train=True``, random augmentation) or evaluation (deterministic).

    Every preset first brings the image to size x size (`fit_geometry`: shorter side to size and the centre
    square for "default" / "chexpert_study", the whole image resized for "nih_study" / "none"); that is the
    evaluation transform, and what the uint8 cache stores.  Training then augments: "default" (random
    resized crop of ~90 %, small affine, horizontal flip), "chexpert_study" (random ~90 % crop, resize,
    small affine, Gaussian blur p=0.4), "nih_study" (CheXNet: horizontal flip), "none" (nothing).
    "+equalize" (e.g. "default+equalize") histogram-equalises the size x size image, in training and
    evaluation alike: radiographs differ widely in exposure and windowing.
    """
    preset, modifiers = parse_preset(preset)
    if not isinstance(size, int) or size < 8:
        raise RadvisionError(f"Transform size must be an integer of at least 8 pixels, got {size!r}.")
    check_choice(channels, (1, 3), "channel count")
    # a PIL image in another mode (16-bit, RGBA, palette) becomes L / RGB as `load_image` makes it: ToImage
    # would keep 4 channels, palette indices or 16-bit levels scaled as if they were 0..65535
    steps: list = [v2.Lambda(to_8bit, Image.Image), v2.ToImage(), *fit_geometry(PRESET_FIT[preset], size)]
    if channels == 1:  # to one channel first: the uint8 cache stores this, and the rest works on one channel
        steps.append(v2.Lambda(_gray, tv_tensors.Image))
    if "equalize" in modifiers:  # on the uint8 size x size image (as cached), before augmentation pads or blurs it
        steps += [v2.ToDtype(torch.uint8, scale=True), v2.RandomEqualize(p=1.0)]
    if train:
        steps += _augmentation(preset, size)
    if channels == 3:  # gray sources become RGB last: augmenting one channel is 3x cheaper (and the same)
        steps.append(v2.RGB())
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if normalize:
        if channels == 3:
            steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
        else:
            steps.append(v2.Normalize([sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3]))
    steps.append(v2.ToPureTensor())
    composed = v2.Compose(steps)
    # what an image cache read through this transform must hold (checked by ImageDataset): its first steps
    # are a no-op on a cached image only when the cache has the same size and fit
    composed.radvision_geometry = (size, PRESET_FIT[preset])  # type: ignore[attr-defined]
    return composed
