import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from radvision.data.transforms import IMAGENET_MEAN, PRESETS, build_transforms, preset_fit
from radvision.errors import RadvisionError


def gray(w=50, h=40):
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w), dtype=np.uint8), mode="L")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("train", [True, False])
def test_every_preset_gives_normalised_3_channel_square(preset, train):
    for image in (gray(), gray().convert("RGB"), tv_tensors.Image(torch.zeros(1, 40, 50, dtype=torch.uint8))):
        out = build_transforms(preset, 32, train=train)(image)
        assert type(out) is torch.Tensor and out.shape == (3, 32, 32) and out.dtype == torch.float32


def test_black_maps_to_minus_mean_over_std_and_one_channel_option():
    black = Image.new("L", (20, 20), 0)
    out = build_transforms("none", 16, train=False)(black)
    assert out[0, 0, 0].item() == pytest.approx(-IMAGENET_MEAN[0] / 0.229, rel=1e-4)
    one = build_transforms("default", 16, train=False, channels=1)(black)
    assert one.shape == (1, 16, 16)
    raw = build_transforms("default", 16, train=False, normalize=False)(Image.new("L", (20, 20), 255))
    assert raw.min() == 1.0 and raw.max() == 1.0


def test_eval_is_deterministic_and_train_is_random():
    img = gray()
    ev = build_transforms("default", 24, train=False)
    assert torch.equal(ev(img), ev(img))
    tr = build_transforms("chexpert_study", 24, train=True)
    torch.manual_seed(0)
    a = tr(img)
    torch.manual_seed(1)
    b = tr(img)
    assert not torch.equal(a, b)


def test_errors_name_choices():
    with pytest.raises(RadvisionError, match=r"did you mean 'chexpert_study'.*default, chexpert_study"):
        build_transforms("chexpert")
    with pytest.raises(RadvisionError, match="at least 8"):
        build_transforms("default", size=4)
    with pytest.raises(RadvisionError, match="channel count"):
        build_transforms("default", channels=2)


def test_equalize_option_spreads_a_narrow_histogram():
    dim = Image.fromarray(np.random.default_rng(1).integers(100, 140, (32, 32), dtype=np.uint8), mode="L")
    plain = build_transforms("none", 32, train=False, normalize=False)(dim)
    eq = build_transforms("none+equalize", 32, train=False, normalize=False)(dim)
    assert float(plain.max() - plain.min()) < 0.2 and float(eq.max() - eq.min()) > 0.9
    out = build_transforms("default+equalize", 16, train=True)(dim)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32
    with pytest.raises(RadvisionError, match="did you mean 'equalize'"):
        build_transforms("default+equalise", 16)


@pytest.mark.parametrize("preset, message", [
    ("equalize", "is an option to append to a preset, e.g. 'default+equalize'"),
    ("defalt", "(did you mean 'default'?); valid choices: default, chexpert_study, nih_study, none, each "
               "optionally with +equalize"),
])
def test_unknown_presets_name_the_equalize_option(preset, message):
    with pytest.raises(RadvisionError) as err:
        build_transforms(preset, 32, train=True)
    assert message in str(err.value)
    with pytest.raises(RadvisionError) as err:  # the cache's fit is asked first: it fails the same way
        preset_fit(preset)
    assert message in str(err.value)



def test_a_gray_picture_stored_as_rgb_keeps_its_levels_on_one_channel(tmp_path):
    from PIL import Image

    from radvision.data import build_cache
    from radvision.data.table import LabelTable

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(levels).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([levels] * 3, axis=-1)).save(tmp_path / "rgb.png")
    t = build_transforms("none", 16, train=False, channels=1, normalize=False)
    as_gray, as_rgb = (t(Image.open(tmp_path / n)) for n in ("gray.png", "rgb.png"))
    torch.testing.assert_close(as_rgb, as_gray)  # torchvision's Grayscale gave every level one darker
    assert as_rgb.max() == 1.0
    table = LabelTable(pd.DataFrame({"path": [str(tmp_path / "rgb.png")], "A": [1.0], "patient_id": ["p"]}), ["A"],
                       tmp_path)
    cache = build_cache(table, 16, tmp_path / "cache", channels=1, fit="squash", progress=False)
    np.testing.assert_array_equal(cache.get(tmp_path / "rgb.png"), levels)


def test_gray_is_pillows_l_for_uint8_and_torchvisions_for_float():
    from radvision.data.transforms import gray_uint8

    rgb = np.random.default_rng(0).integers(0, 256, (3, 256, 256), dtype=np.uint8)
    rgb[:, 0, 0] = (0, 0, 250)  # 1000-based weights rounded this one to 29; Pillow says 28
    pillow = np.asarray(Image.fromarray(rgb.transpose(1, 2, 0)).convert("L"))
    np.testing.assert_array_equal(gray_uint8(torch.from_numpy(rgb))[0].numpy(), pillow)
    floats = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0))
    t = build_transforms("none", 32, train=False, channels=1, normalize=False)
    out = t(floats)
    assert out.shape == (1, 32, 32) and 0.1 < float(out.mean()) < 0.9  # not the all-zero image of a uint8 cast


@pytest.mark.parametrize("channels", [1, 3])
def test_pil_images_of_other_modes_are_made_8_bit_first(channels):
    tf = build_transforms("default", 16, train=False, channels=channels, normalize=False)
    red = tf(Image.new("RGBA", (20, 20), (200, 0, 0, 255)))
    assert red.shape == (channels, 16, 16)
    if channels == 3:
        assert torch.allclose(red[:, 0, 0], torch.tensor([200 / 255, 0.0, 0.0]))
    palette = Image.new("P", (20, 20), 3)
    palette.putpalette([0, 0, 0] * 3 + [255, 255, 255] + [0, 0, 0] * 252)
    assert torch.allclose(tf(palette), torch.ones(channels, 16, 16))  # the colour, not the index 3
    twelve_bit = Image.fromarray(np.tile(np.arange(0, 4096, 256, dtype=np.uint16), (16, 1)))
    out = tf(twelve_bit)
    assert out.shape == (channels, 16, 16) and out.max() == 1.0 and out.min() == 0.0  # stretched, not / 65535
