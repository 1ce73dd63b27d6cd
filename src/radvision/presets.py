"""The names `data.transforms` takes ("default", "nih_study+equalize", ...), light (no torch, pandas or PIL):
a config to train is checked when it is read, and `radvision.data.transforms` builds the pipelines."""

from __future__ import annotations

from radvision.errors import RadvisionError, did_you_mean

__all__ = ["MODIFIERS", "PRESETS", "PRESET_FIT", "parse_preset"]

#: Options appended to a preset with "+", e.g. "default+equalize"; kept in the preset string so every
#: consumer of ``data.transforms`` (training, predict, examples) builds the same pipeline.
MODIFIERS = ("equalize",)

#: How each preset brings an image to ``size x size`` before any augmentation, and so how the uint8 cache
#: (`build_cache`) must store it: "crop" (shorter side to size, centre square) or "squash" (whole image).
PRESET_FIT = {"default": "crop", "chexpert_study": "crop", "nih_study": "squash", "none": "squash"}
PRESETS = tuple(PRESET_FIT)


def parse_preset(preset: str) -> tuple[str, list[str]]:
    """(preset, options) of a preset string such as "default+equalize", checked against PRESETS / MODIFIERS."""
    valid = (f"valid choices: {', '.join(PRESETS)}, each optionally with +{' +'.join(MODIFIERS)} "
             f"(e.g. 'default+{MODIFIERS[0]}')")
    if not isinstance(preset, str):
        raise RadvisionError(f"Transform preset (data.transforms) must be a string such as 'default', got {preset!r}.")
    name, *modifiers = preset.split("+")
    if name in MODIFIERS:  # "equalize" alone: an option, not a preset
        raise RadvisionError(f"Transform preset {name!r} (data.transforms) is an option to append to a preset, e.g. "
                             f"'default+{name}'; presets: {', '.join(PRESETS)}.")
    if name not in PRESETS:
        raise RadvisionError(f"Unknown transform preset {name!r} (data.transforms){did_you_mean(name, PRESETS)}; "
                             f"{valid}.")
    for m in modifiers:
        if m not in MODIFIERS:
            raise RadvisionError(f"Unknown transform option {m!r} in {preset!r} (data.transforms)"
                                 f"{did_you_mean(m, MODIFIERS)}; {valid}.")
    return name, modifiers
