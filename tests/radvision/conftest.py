"""Fixtures shared by the radvision tests."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture
def offline_caches(tmp_path, monkeypatch):
    """Empty torch / Hugging Face caches and downloads forbidden: nothing may reach the network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


def _make_images(root, n=32, size=32, seed=0, fractions=(0.5, 0.25, 0.25)):
    """Tiny PNGs whose labels are visible (brightness, a vertical stripe) + `labels.csv` with a split
    column cut by `fractions` (train, valid, test). Returns the CSV path."""
    rng = np.random.default_rng(seed)
    n_train, n_valid = int(n * fractions[0]), int(n * fractions[1])
    rows = []
    (root / "img").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        bright, stripe = int(i % 2), int((i // 2) % 2)
        a = rng.integers(0, 60, size=(size, size)).astype(np.uint8) + (120 if bright else 0)
        if stripe:
            a[:, size // 2 - 2 : size // 2 + 2] = 255
        Image.fromarray(a.astype(np.uint8), mode="L").save(root / "img" / f"{i:03d}.png")
        split = "train" if i < n_train else "valid" if i < n_train + n_valid else "test"
        rows.append({"path": f"img/{i:03d}.png", "Bright": bright, "Stripe": stripe, "patient_id": f"p{i}",
                     "split": split})
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def _write_dicom(path, pixels, photometric="MONOCHROME2", preamble=True, **elements):
    """An uncompressed Part 10 file holding ``pixels`` (uint16 grayscale or uint8 RGB); pydicom is imported here so
    that only the tests writing DICOM need it."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR image storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = elements.pop("syntax", ExplicitVRLittleEndian)
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.PhotometricInterpretation = photometric
    if pixels.ndim == 3:
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.BitsAllocated = ds.BitsStored = 8
    else:
        ds.SamplesPerPixel = 1
        ds.BitsAllocated, ds.BitsStored = 16, elements.pop("bits_stored", 16)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    for name, value in elements.items():
        setattr(ds, name, value)
    ds.save_as(path, enforce_file_format=preamble)
    return path


@pytest.fixture(scope="session")
def make_images():
    """The factory above, as a fixture: `make_images(root, n=..., fractions=...)`."""
    return _make_images


@pytest.fixture(scope="session")
def write_dicom():
    """`write_dicom(path, pixels, photometric=..., **elements)`: an uncompressed DICOM file (see above)."""
    return _write_dicom
