"""Robust image decoding: every file comes back as an 8-bit PIL image in mode "L" or "RGB".

Radiology exports mix 16-bit grayscale PNGs (DICOM conversions), RGBA and palette PNGs and JPEGs;
a corrupt or truncated file must fail loudly with its name instead of crashing a worker mid-epoch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from radvision.data.dicom import DICOM_EXTENSIONS, is_dicom, read_dicom
from radvision.data.table import check_choice
from radvision.errors import RadvisionError

__all__ = ["IMAGE_EXTENSIONS", "check_image", "image_files", "load_image", "to_8bit", "to_uint8"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", *DICOM_EXTENSIONS)
SCALINGS = ("minmax", "full")
_EXIF_FORMATS = ("JPEG", "MPO", "TIFF", "WEBP", "PNG")
_ORIENTATION = 0x0112  # the EXIF tag


def image_files(folder: str | os.PathLike) -> list[str]:
    """Every image file (`IMAGE_EXTENSIONS`, any case, and DICOM files named without an extension or by a UID)
    under ``folder`` and its sub-folders, in path order.

    Hidden files and folders are left out (macOS writes ``._name.png`` resource forks beside images). Links to
    folders are followed, after the real folders and only into folders not reached otherwise, so an image
    keeps its path under its real folder and no folder is read twice; a link to ``folder`` or one above it
    is not followed (with a warning). A broken link keeps its name, so the reader reports it instead of
    losing it. A sub-folder that cannot be listed is named in a warning.
    """
    top = os.fspath(folder)
    reached: set[tuple[int, int] | None] = set()
    found: list[str] = []
    failed: list[OSError] = []
    starts = [top]  # then the linked folders, appended as they are met: a list grows safely while it is looped
    for start in starts:
        if start != top and not _worth_following(start, top, reached):
            continue
        for dirpath, dirnames, filenames in os.walk(start, onerror=failed.append):
            reached.add(_folder_id(dirpath))
            visible = sorted(d for d in dirnames if not d.startswith("."))
            linked = {d for d in visible if os.path.islink(os.path.join(dirpath, d))}
            starts += [os.path.join(dirpath, d) for d in visible if d in linked]
            # inside a linked folder, a sub-folder walked already (a shortcut met first) is not walked twice
            dirnames[:] = [d for d in visible if d not in linked and _folder_id(os.path.join(dirpath, d)) not in reached]
            found += [os.path.join(dirpath, f) for f in filenames
                      if not f.startswith(".") and (f.lower().endswith(IMAGE_EXTENSIONS) or _bare_dicom(dirpath, f))]
    for err in failed:
        if os.path.normpath(err.filename or "") == os.path.normpath(top):
            raise RadvisionError(f"Cannot list the folder {top!r}: {err.strerror or err}.")
        log.warning("cannot list %s (%s): its images are left out", err.filename, err.strerror or err)
    return sorted(found)


def _bare_dicom(folder: str, name: str) -> bool:
    """A DICOM file named the PACS way, with no extension or a UID ("1.2.840.113619.2.55"); the DICOMDIR index
    holds no image. Only such names are opened to look for the marker, so other files cost nothing."""
    suffix = os.path.splitext(name)[1][1:]
    return (not suffix or suffix.isdigit()) and name.upper() != "DICOMDIR" and is_dicom(os.path.join(folder, name))


def _worth_following(link: str, top: str, reached: set) -> bool:
    """Whether a link to a folder leads somewhere new: not broken, not walked already, and not to ``top`` or a
    folder above it (that would walk ``top`` again, and the folders around it)."""
    ident = _folder_id(link)
    if ident is None or ident in reached:
        return False
    target, inside = os.path.realpath(link), os.path.realpath(top)
    if os.path.commonpath([target, inside]) == target:
        log.warning("%s links to a folder above %s: not followed", link, top)
        return False
    return True


def stat_or_none(path: str | os.PathLike) -> os.stat_result | None:
    """``os.stat`` of what a path leads to; None when it cannot be reached."""
    try:
        return os.stat(path)
    except OSError:
        return None


def _folder_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of the folder a path leads to; None when it cannot be reached."""
    st = stat_or_none(path)
    return None if st is None else (st.st_dev, st.st_ino)


def to_uint8(array: np.ndarray, scaling: str = "minmax") -> np.ndarray:
    """Scale a high-bit-depth array to uint8.

    "minmax" stretches the image's own range to 0..255 (robust to 10/12/16-bit data stored in 16-bit
    containers); "full" maps integer data from the 16-bit range 0..65535 (what PNG/DICOM exports hold,
    also when PIL widens them to 32-bit), keeping absolute intensities. Float data always use "minmax".
    """
    check_choice(scaling, SCALINGS, "16-bit scaling")
    a = np.asarray(array)
    if a.dtype == np.uint8:
        return a
    if scaling == "full" and np.issubdtype(a.dtype, np.integer):
        return np.clip(a.astype(np.float32) / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    a = a.astype(np.float32)
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, dtype=np.uint8)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    out = (np.where(finite, a, lo) - lo) * (255.0 / (hi - lo)) + 0.5
    return np.clip(out, 0, 255).astype(np.uint8)


def to_8bit(img: Image.Image, scaling: str = "minmax") -> Image.Image:
    """A decoded PIL image of any mode as 8-bit "L" or "RGB" (16/32-bit and float stretched by `to_uint8`,
    alpha composited on black, palettes expanded)."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode.startswith("I") or mode == "F":  # I;16, I;16B, I;16L, I (32-bit), F (float)
        return Image.fromarray(to_uint8(np.asarray(img), scaling), mode="L")
    if mode == "1":
        return img.convert("L")
    if mode in ("LA", "La"):  # like RGBA: transparent pixels are background, composited on black
        return Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), img.convert("RGBA")).convert("L")
    if mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    if mode in ("RGBA", "RGBa"):
        # Composite on black: transparent pixels in an exported radiograph are background.
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX ...


def _wide_colour(img: Image.Image) -> bool:
    """A 16-bit-per-channel colour file (48/64-bit PNG or TIFF), which Pillow decodes to its high bytes."""
    return img.mode in ("RGB", "RGBA") and any(";16" in str(tile.args) for tile in img.tile)


def _read_wide_colour(path: Path, scaling: str, orientation: int) -> Image.Image | None:
    """Decode a 16-bit colour file at full depth with OpenCV (grad-cam's dependency), turned by the file's
    EXIF ``orientation`` as Pillow turns other images; None if it cannot."""
    try:
        import cv2
    except ImportError:
        return None
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None or a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint16:
        return None
    rgb = a[:, :, 2::-1].astype(np.float32)  # OpenCV's BGR(A) -> RGB
    if a.shape[2] == 4:  # composite on black, as 8-bit RGBA files are
        rgb *= a[:, :, 3:4] / 65535.0
        if scaling == "full":
            rgb = np.rint(rgb).astype(np.uint16)
    elif scaling == "full":
        rgb = a[:, :, 2::-1]
    out = Image.fromarray(to_uint8(rgb, scaling), mode="RGB")
    out.getexif()[_ORIENTATION] = orientation  # OpenCV's unchanged read ignores the tag: let Pillow apply it
    return ImageOps.exif_transpose(out)


def load_image(
    path: str | os.PathLike,
    mode: str | None = None,
    scaling: str = "minmax",
    draft: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode ``path`` fully and return an 8-bit PIL image in mode "L" (grayscale) or "RGB".

    ``mode`` forces "L" or "RGB" output. ``scaling`` is how 16-bit / 32-bit data become 8-bit (see
    `to_uint8`). ``draft`` = (w, h) lets JPEG decode at a reduced scale no smaller than that size
    (much faster when the result is resized down anyway). DICOM files (by extension or by their "DICM"
    marker) are read with pydicom through their modality and VOI LUTs, MONOCHROME1 inverted, and always
    stretched "minmax" (see `radvision.data.dicom`). Missing, truncated or corrupt files raise
    RadvisionError naming the file.
    """
    if mode is not None:
        check_choice(mode, ("L", "RGB"), "image mode")
    if not os.fspath(path).strip():  # Path("") would read as the working directory
        raise RadvisionError("Empty image path (a blank path cell in the table).")
    path = Path(path)
    if path.is_dir():
        raise RadvisionError(f"Image path {path} is a folder, not an image file.")
    if not path.is_file():
        raise RadvisionError(f"Image file not found: {path}.")
    suffix = path.suffix.lower()
    if suffix in DICOM_EXTENSIONS or (suffix not in IMAGE_EXTENSIONS and is_dicom(path)):  # no marker read per PNG
        return _dicom_image(path, mode)
    try:
        with Image.open(path) as img:
            wide = _wide_colour(img)  # read before load(), which empties the tile list
            orientation = img.getexif().get(_ORIENTATION, 1) if wide else 1
            if draft is not None and img.format == "JPEG":
                img.draft(img.mode, draft)
            if img.format in _EXIF_FORMATS:
                img = ImageOps.exif_transpose(img)  # camera/phone exports carry an orientation tag
            img.load()  # force full decode so truncation surfaces here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if is_dicom(path):  # a DICOM file saved under an image extension ("x.png")
            return _dicom_image(path, mode)
        raise RadvisionError(f"Cannot read image file {path}: {str(exc).rstrip('.')}.") from exc
    # Pillow keeps only the high byte of 16-bit colour, so such a file is stretched like 16-bit grayscale
    img = (_read_wide_colour(path, scaling, orientation) if wide else None) or to_8bit(img, scaling)
    if mode is not None and img.mode != mode:
        img = img.convert(mode)
    return img


def _dicom_image(path: Path, mode: str | None) -> Image.Image:
    img = Image.fromarray(to_uint8(read_dicom(path), "minmax"))  # (H, W) -> "L", (H, W, 3) -> "RGB"
    return img if mode is None or img.mode == mode else img.convert(mode)


def check_image(path: str | os.PathLike) -> str | None:
    """Return None if ``path`` decodes, else the one-sentence reason it does not."""
    try:
        load_image(path)
    except RadvisionError as exc:
        return str(exc)
    return None
