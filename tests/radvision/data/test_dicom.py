import builtins

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.uid import JPEG2000Lossless  # noqa: E402

from radvision.data.dicom import is_dicom, read_dicom  # noqa: E402
from radvision.data.images import image_files, load_image  # noqa: E402
from radvision.errors import RadvisionError  # noqa: E402


def ramp(h=4, w=8):
    return np.tile(np.linspace(0, 4000, w).astype(np.uint16), (h, 1))


def test_grayscale_dicom_is_stretched_to_8_bit(tmp_path, write_dicom):
    img = load_image(write_dicom(tmp_path / "a.dcm", ramp()))
    a = np.asarray(img)
    assert img.mode == "L" and a.shape == (4, 8)
    assert a[0, 0] == 0 and a[0, -1] == 255 and (np.diff(a[0].astype(int)) > 0).all()


def test_monochrome1_is_inverted(tmp_path, write_dicom):
    a = np.asarray(load_image(write_dicom(tmp_path / "m1.dcm", ramp(), photometric="MONOCHROME1")))
    assert a[0, 0] == 255 and a[0, -1] == 0


def test_window_centre_and_width_are_applied(tmp_path, write_dicom):
    # a window over the lower half of the values: everything above it is white
    path = write_dicom(tmp_path / "w.dcm", ramp(), WindowCenter=1000, WindowWidth=2000)
    a = np.asarray(load_image(path))[0]
    values = np.linspace(0, 4000, 8)
    assert (a[values >= 2000] == 255).all()
    assert 0 < a[values == values[1]][0] < 255  # 571 lies inside the window


def test_rescale_slope_and_intercept_keep_the_order(tmp_path, write_dicom):
    # a negative slope reverses the stored values: the modality LUT must apply before stretching
    path = write_dicom(tmp_path / "r.dcm", ramp(), RescaleSlope=-1, RescaleIntercept=0)
    a = np.asarray(load_image(path))[0]
    assert a[0] == 255 and a[-1] == 0


def test_rgb_dicom_and_forced_modes(tmp_path, write_dicom):
    rgb = np.zeros((3, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    path = write_dicom(tmp_path / "c.dcm", rgb, photometric="RGB")
    img = load_image(path)
    assert img.mode == "RGB" and np.asarray(img)[0, 0].tolist() == [200, 0, 0]
    assert load_image(path, mode="L").mode == "L"
    assert load_image(write_dicom(tmp_path / "g.dcm", ramp()), mode="RGB").mode == "RGB"


def test_dicom_without_extension_is_recognised_by_its_marker(tmp_path, write_dicom):
    path = write_dicom(tmp_path / "1.2.840.113619", ramp())
    assert is_dicom(path)
    assert np.asarray(load_image(path)).shape == (4, 8)


def test_folders_list_dicom_files(tmp_path, write_dicom):
    write_dicom(tmp_path / "a.DCM", ramp())
    write_dicom(tmp_path / "b.dicom", ramp())
    write_dicom(tmp_path / "1.2.840.113619.2.55", ramp())  # PACS exports: no extension, or a UID as the name
    write_dicom(tmp_path / "IM0001", ramp())
    write_dicom(tmp_path / "DICOMDIR", ramp())  # the index of a DICOM folder holds no image
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "README").write_text("not an image")
    assert [p.rsplit("/", 1)[1] for p in image_files(tmp_path)] == ["1.2.840.113619.2.55", "IM0001", "a.DCM",
                                                                      "b.dicom"]


def test_multi_frame_uses_the_first_frame(tmp_path, caplog, write_dicom):
    frames = np.stack([ramp(), ramp()[:, ::-1]])
    ds_path = write_dicom(tmp_path / "mf.dcm", ramp())
    ds = pydicom.dcmread(ds_path)
    ds.NumberOfFrames = 2
    ds.PixelData = frames.tobytes()
    ds.save_as(ds_path)
    with caplog.at_level("WARNING"):
        a = np.asarray(load_image(ds_path))
    assert a[0, 0] == 0 and a[0, -1] == 255
    assert "2 frames" in caplog.text


def test_damaged_and_imageless_dicom_name_the_file(tmp_path, write_dicom):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 10)
    with pytest.raises(RadvisionError, match="bad.dcm"):
        load_image(bad)
    path = write_dicom(tmp_path / "nopix.dcm", ramp())
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(RadvisionError, match="nopix.dcm holds no image"):
        load_image(path)


def test_truncated_pixel_data_is_an_error(tmp_path, write_dicom):
    path = write_dicom(tmp_path / "t.dcm", ramp(8, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 300])
    with pytest.raises(RadvisionError, match="t.dcm"):
        load_image(path)


def test_compressed_without_decoder_says_what_to_install(tmp_path, monkeypatch, write_dicom):
    path = write_dicom(tmp_path / "j2k.dcm", ramp())
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 20])
    ds.save_as(path)
    try:
        read_dicom(path)
    except RadvisionError as exc:
        assert "JPEG 2000" in str(exc) and "pylibjpeg" in str(exc)
    else:  # a JPEG 2000 decoder is installed and read the stub: nothing to check
        pytest.skip("a JPEG 2000 decoder is installed")


def test_missing_pydicom_says_how_to_install(tmp_path, monkeypatch, write_dicom):
    path = write_dicom(tmp_path / "a.dcm", ramp())
    real_import = builtins.__import__

    def no_pydicom(name, *args, **kwargs):
        if name == "pydicom" or name.startswith("pydicom."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    with pytest.raises(RadvisionError, match="needs pydicom: pip install"):
        load_image(path)


def test_presentation_lut_shape_inverse_is_inverted_like_monochrome1(tmp_path, write_dicom):
    a = np.asarray(load_image(write_dicom(tmp_path / "inv.dcm", ramp(), PresentationLUTShape="INVERSE")))
    assert a[0, 0] == 255 and a[0, -1] == 0
    # DX files mark MONOCHROME1 with INVERSE as well: one inversion, not two
    both = write_dicom(tmp_path / "m1inv.dcm", ramp(), photometric="MONOCHROME1", PresentationLUTShape="INVERSE")
    assert np.asarray(load_image(both))[0, 0] == 255


def test_an_image_all_beyond_its_window_is_white_or_black_as_a_viewer_shows_it(tmp_path, write_dicom):
    flat = np.full((4, 8), 3000, dtype=np.uint16)
    above = write_dicom(tmp_path / "above.dcm", flat, WindowCenter=100, WindowWidth=200)
    assert (np.asarray(load_image(above)) == 255).all()
    below = write_dicom(tmp_path / "below.dcm", flat, WindowCenter=4000, WindowWidth=200)
    assert (np.asarray(load_image(below)) == 0).all()
    mono1 = write_dicom(tmp_path / "m1.dcm", flat, photometric="MONOCHROME1", WindowCenter=4000, WindowWidth=200)
    assert (np.asarray(load_image(mono1)) == 255).all()


def test_files_named_dcm_that_are_no_dicom_say_so(tmp_path):
    for name, data in (("text.dcm", b"hello, not an image\n" * 10), ("empty.dcm", b""),
                       ("zeros.dcm", bytes(5_000_000))):  # an interrupted download: fast, and named as such
        (tmp_path / name).write_bytes(data)
        with pytest.raises(RadvisionError, match=f"{name} is not a DICOM file"):
            load_image(tmp_path / name)


def test_a_dicom_file_under_an_image_extension_is_read(tmp_path, write_dicom):
    path = write_dicom(tmp_path / "x.png", ramp())
    assert np.asarray(load_image(path)).shape == (4, 8)


def test_folder_listing_does_not_open_named_pipes(tmp_path, write_dicom):
    import os
    import threading

    write_dicom(tmp_path / "x.dcm", ramp())
    os.mkfifo(tmp_path / "PIPE")  # opening it for reading would wait for a writer for ever
    found = []
    t = threading.Thread(target=lambda: found.extend(image_files(tmp_path)), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive() and [p.rsplit("/", 1)[1] for p in found] == ["x.dcm"]


def test_a_saturated_image_with_several_windows_uses_the_first(tmp_path, write_dicom):
    flat = np.full((4, 8), 3000, dtype=np.uint16)
    path = write_dicom(tmp_path / "multi.dcm", flat, WindowCenter=[100, 4000], WindowWidth=[200, 200])
    assert (np.asarray(load_image(path)) == 255).all()  # above the first window, as a viewer's default shows it
