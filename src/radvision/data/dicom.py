"""DICOM radiographs as 8-bit images, displayed the way a viewer shows them.

The stored values pass through the file's modality LUT (rescale slope / intercept) and VOI LUT (window
centre / width, or a VOI LUT table), the result is stretched to 0..255, and MONOCHROME1 images (or a
Presentation LUT Shape of INVERSE: white = low values) are inverted so that bone is bright as in every other
format. Colour images are kept as stored. pydicom is imported only when a
DICOM file is met, so installs that never read one do not need it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence

import numpy as np

from radvision.errors import RadvisionError

__all__ = ["DICOM_EXTENSIONS", "is_dicom", "read_dicom"]

log = logging.getLogger(__name__)

DICOM_EXTENSIONS = (".dcm", ".dicom")
_MAGIC_OFFSET, _MAGIC = 128, b"DICM"  # the Part 10 file preamble, then "DICM"


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM file: a DICOM extension, or the "DICM" marker of a Part 10 file
    (PACS exports often have no extension at all). Only regular files are opened (a named pipe would block)."""
    return os.fspath(path).lower().endswith(DICOM_EXTENSIONS) or _head(path)[_MAGIC_OFFSET:] == _MAGIC


def _head(path: str | os.PathLike) -> bytes:
    """The first bytes of a regular file (b"" for anything else)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b""
        with open(path, "rb") as f:
            return f.read(_MAGIC_OFFSET + len(_MAGIC))
    except OSError:
        return b""


def _looks_like_dicom(path: str | os.PathLike) -> bool:
    """The "DICM" marker, or (files without the Part 10 preamble) a first element in the identifying (0008) or
    file meta (0002) group, either byte order: anything else is no DICOM, and reading it anyway would be slow."""
    head = _head(path)
    return head[_MAGIC_OFFSET:] == _MAGIC or head[:2] in (b"\x08\x00", b"\x02\x00", b"\x00\x08", b"\x00\x02")


def read_dicom(path: str | os.PathLike) -> np.ndarray:
    """The first frame of a DICOM file as an image: (H, W) uint8 for grayscale, after the modality and VOI LUTs,
    stretched to 0..255 and shown as a viewer shows it (MONOCHROME1 or a Presentation LUT Shape of INVERSE
    inverted); (H, W, 3) RGB for colour, as stored (`to_uint8` makes 16-bit colour 8-bit).

    Raises RadvisionError naming the file when pydicom is missing, the file is not readable DICOM, holds no
    image, or is compressed with a codec no installed decoder handles.
    """
    try:
        import pydicom
        from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
    except ImportError as exc:
        raise RadvisionError(
            f"Reading the DICOM file {path} needs pydicom: pip install 'radlabel[vision]' (or pip install pydicom)."
        ) from exc
    if not _looks_like_dicom(path):
        raise RadvisionError(f"{path} is not a DICOM file (no DICM marker and no DICOM header at its start).")
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise RadvisionError(f"Cannot read DICOM file {path}: {exc}.") from exc
    if "PixelData" not in ds:
        raise RadvisionError(f"DICOM file {path} holds no image (no Pixel Data element; a report, an index such "
                             "as DICOMDIR, or a file cut short).")
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        hint = (f" Its transfer syntax is {syntax.name}; compressed pixel data need a decoder: "
                "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg (or python-gdcm)."
                ) if syntax is not None and syntax.is_compressed else ""
        reason = " ".join(str(exc).split()).rstrip(".")  # pydicom lists its plugins one per line
        raise RadvisionError(f"Cannot decode the pixel data of DICOM file {path}: {reason}.{hint}") from exc
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    colour = getattr(ds, "SamplesPerPixel", 1) == 3
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else 1
    if frames > 1:
        log.warning("%s has %d frames: only the first is used", path, frames)
        pixels = pixels[0]
    if colour:  # pydicom has converted YBR to RGB already
        return pixels
    if photometric == "PALETTE COLOR":
        return apply_color_lut(pixels, ds)
    modality = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
    values = np.asarray(apply_voi_lut(modality, ds), dtype=np.float64)
    # DX / CR exporters mark inverted grayscale either way; both mean "low values display white" (not twice)
    inverse = photometric == "MONOCHROME1" or str(ds.get("PresentationLUTShape", "")).upper() == "INVERSE"
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if hi > lo:
        image = np.clip((np.nan_to_num(values, nan=lo) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
    else:  # one level: white when a window saw it all above its centre (a viewer shows it so), else black
        centre = _window_centre(ds)
        bright = centre is not None and finite.size and float(np.nanmean(modality)) > centre
        image = np.full(values.shape, 255 if bright else 0, dtype=np.uint8)
    return 255 - image if inverse else image


def _window_centre(ds) -> float | None:
    """The first Window Center of the file (it may list several), None without one."""
    centre = ds.get("WindowCenter")
    if isinstance(centre, Sequence) and not isinstance(centre, str):  # pydicom's MultiValue
        centre = centre[0] if len(centre) else None
    try:
        return None if centre is None else float(centre)
    except (TypeError, ValueError):
        return None
