"""DICOM radiographs as 8-bit images, displayed the way a viewer shows them.

The stored values pass through the file's modality LUT (rescale slope / intercept) and VOI LUT (window
centre / width, or a VOI LUT table), and MONOCHROME1 images (white = low values) are inverted so that bone
is bright as in every other format; `radvision.data.images` then stretches the result to 0..255. pydicom is imported only when a
DICOM file is met, so installs that never read one do not need it.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from radvision.errors import RadvisionError

__all__ = ["DICOM_EXTENSIONS", "is_dicom", "read_dicom"]

log = logging.getLogger(__name__)

DICOM_EXTENSIONS = (".dcm", ".dicom")
_MAGIC_OFFSET, _MAGIC = 128, b"DICM"  # the Part 10 file preamble, then "DICM"


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM file: a DICOM extension, or the "DICM" marker of a Part 10 file
    (PACS exports often have no extension at all)."""
    if os.fspath(path).lower().endswith(DICOM_EXTENSIONS):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC_OFFSET + len(_MAGIC))
    except OSError:
        return False
    return head[_MAGIC_OFFSET:] == _MAGIC


def read_dicom(path: str | os.PathLike) -> np.ndarray:
    """The first frame of a DICOM file as display values: (H, W) for grayscale, after the modality and VOI LUTs
    and with MONOCHROME1 inverted (higher = brighter), or (H, W, 3) RGB for colour. `to_uint8` makes it 8-bit.

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
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise RadvisionError(f"Cannot read DICOM file {path}: {exc}.") from exc
    if "PixelData" not in ds:
        raise RadvisionError(f"DICOM file {path} holds no image (no Pixel Data element).")
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
    values = np.asarray(apply_voi_lut(apply_modality_lut(pixels, ds), ds), dtype=np.float32)
    if photometric == "MONOCHROME1":  # mirror within the image's own range: low stored values display white
        values = np.nanmax(values) + np.nanmin(values) - values
    return values
