import os

import numpy as np
import pytest
from PIL import Image

from radvision.data.images import check_image, image_files, load_image, to_uint8
from radvision.errors import RadvisionError


def test_16bit_png_is_windowed_to_8bit(tmp_path):
    data = np.array([[1000, 2000], [3000, 4000]], dtype=np.uint16)
    p = tmp_path / "x16.png"
    Image.fromarray(data).save(p)
    assert Image.open(p).mode.startswith("I")
    img = load_image(p)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), [[0, 85], [170, 255]])
    full = np.asarray(load_image(p, scaling="full"))
    assert full.max() == round(4000 / 65535 * 255)


def test_rgba_is_composited_on_black(tmp_path):
    arr = np.zeros((2, 2, 4), dtype=np.uint8)
    arr[..., :3] = 200
    arr[0, 0, 3] = 0  # fully transparent
    arr[1, 1, 3] = 255
    p = tmp_path / "a.png"
    Image.fromarray(arr, mode="RGBA").save(p)
    out = np.asarray(load_image(p))
    assert load_image(p).mode == "RGB"
    assert out[0, 0].tolist() == [0, 0, 0] and out[1, 1].tolist() == [200, 200, 200]


def test_palette_bilevel_and_gray_alpha(tmp_path):
    pal = Image.new("P", (4, 4))
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png")
    img = load_image(tmp_path / "p.png")
    assert img.mode == "RGB" and img.getpixel((1, 1)) == (255, 0, 0)
    Image.new("1", (3, 3), 1).save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png").mode == "L"
    Image.new("LA", (3, 3), (120, 255)).save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png").getpixel((0, 0)) == 120
    Image.new("LA", (3, 3), (255, 0)).save(tmp_path / "clear.png")  # white but transparent: background, as RGBA
    assert load_image(tmp_path / "clear.png").getpixel((0, 0)) == 0


def test_jpeg_gray_and_rgb_and_forced_mode(tmp_path):
    Image.new("L", (20, 10), 90).save(tmp_path / "g.jpg")
    Image.new("RGB", (20, 10), (10, 200, 30)).save(tmp_path / "c.jpeg")
    g = load_image(tmp_path / "g.jpg")
    assert g.mode == "L" and g.size == (20, 10)
    assert load_image(tmp_path / "c.jpeg").mode == "RGB"
    assert load_image(tmp_path / "g.jpg", mode="RGB").mode == "RGB"
    assert load_image(tmp_path / "c.jpeg", mode="L").mode == "L"
    small = load_image(tmp_path / "g.jpg", draft=(5, 3))
    assert small.size[0] >= 5 and small.size[0] <= 20


def test_missing_truncated_and_garbage_name_the_file(tmp_path, helpers):
    with pytest.raises(RadvisionError, match="not found: .*nope.png"):
        load_image(tmp_path / "nope.png")
    bad = helpers.save_truncated(tmp_path / "trunc.png", size=64)
    with pytest.raises(RadvisionError, match="Cannot read image file .*trunc.png"):
        load_image(bad)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(RadvisionError, match="junk.png"):
        load_image(tmp_path / "junk.png")
    assert "junk.png" in check_image(tmp_path / "junk.png")
    assert check_image(helpers.save_gray(tmp_path / "ok.png")) is None


def test_to_uint8_edge_cases():
    assert to_uint8(np.full((2, 2), 7, np.uint16)).max() == 0  # constant image: no division by zero
    out = to_uint8(np.array([[0.0, np.nan], [0.5, 1.0]], np.float32))
    assert out.tolist() == [[0, 0], [128, 255]]
    u8 = np.array([[3]], np.uint8)
    assert to_uint8(u8) is u8
    with pytest.raises(RadvisionError, match="minmax, full"):
        to_uint8(u8.astype(np.uint16), "max")
    with pytest.raises(RadvisionError, match="image mode"):
        load_image("whatever.png", mode="RGBA")


def test_jpeg_exif_orientation_is_applied(tmp_path):
    img = Image.new("L", (30, 10), 50)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    img.save(tmp_path / "o.jpg", exif=exif)
    assert load_image(tmp_path / "o.jpg").size == (10, 30)
    img.save(tmp_path / "o.png", exif=exif)  # PNG carries the tag too
    assert load_image(tmp_path / "o.png").size == (10, 30)
    with pytest.raises(RadvisionError, match="is a folder, not an image file"):
        load_image(tmp_path)


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_is_stretched_like_16bit_gray(tmp_path, channels):
    cv2 = pytest.importorskip("cv2")
    rgb = np.array([[[1000, 2000, 3000], [4000, 1000, 1000]]], dtype=np.uint16)  # one row, two pixels
    bgr = rgb[:, :, ::-1]
    if channels == 4:
        bgr = np.concatenate([bgr, np.full((1, 2, 1), 65535, np.uint16)], axis=2)  # opaque
    p = tmp_path / "c48.png"
    cv2.imwrite(str(p), bgr)
    assert Image.open(p).mode in ("RGB", "RGBA")  # Pillow alone would keep the high bytes: 3..15
    img = load_image(p)
    assert img.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(img), [[[0, 85, 170], [255, 0, 0]]])
    assert np.asarray(load_image(p, scaling="full")).max() == round(4000 / 65535 * 255)


def test_an_empty_path_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_image("") == "Empty image path (a blank path cell in the table)."


def test_16bit_colour_png_keeps_its_exif_orientation(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = 2, 3
    rgb = np.arange(h * w * 3, dtype=np.uint16).reshape(h, w, 3) * 1000
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise
    rows = b"".join(b"\x00" + rgb[i].astype(">u2").tobytes() for i in range(h))
    p = tmp_path / "sideways48.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                  + chunk(b"eXIf", exif.tobytes()[6:]) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    out = np.asarray(load_image(p))
    assert out.shape == (w, h, 3)  # turned, as an 8-bit file with the same tag is
    assert out[0, 0, 0] == to_uint8(rgb)[1, 0, 0]  # the bottom-left pixel comes to the top left


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return str(path)


def test_image_files_follow_linked_folders_once_and_leave_hidden_files_out(tmp_path):
    top = tmp_path / "in"
    own = [_touch(top / "a.png"), _touch(top / "deep" / "real" / "b.JPG")]
    _touch(top / "notes.txt")
    _touch(top / "._a.png")  # a macOS resource fork
    _touch(top / ".cache" / "c.png")
    elsewhere = tmp_path / "elsewhere"
    _touch(elsewhere / "d.png")
    os.symlink(elsewhere, top / "more")  # rglob did not follow it: its images were dropped without a word
    os.symlink(top / "deep" / "real", top / "also")  # listed before deep/: the image keeps its real path
    os.symlink(top, top / "deep" / "up")  # a loop
    os.symlink(tmp_path, top / "deep" / "up2")  # above: it walked the folders around top, and top again
    _touch(tmp_path / "beside" / "e.png")
    _touch(elsewhere / "x" / "sub" / "s.png")
    os.symlink(elsewhere / "x" / "sub", top / "a_deep")  # met first ...
    os.symlink(elsewhere / "x", top / "b_x")  # ... then the folder above it: s.png was listed twice
    os.symlink(tmp_path / "nowhere.png", top / "broken.png")  # kept, so the reader reports it
    assert image_files(top) == sorted([*own, str(top / "broken.png"), str(top / "more" / "d.png"),
                                       str(top / "a_deep" / "s.png")])


def test_image_files_of_an_unlistable_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RadvisionError, match="Cannot list the folder"):
        image_files(tmp_path / "missing")
