"""Grad-CAM per label and PNG overlays."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from radvision.errors import RadvisionError
from radvision.explain import CAM_METHODS, gradcam, save_overlays
from radvision.finetune import apply_strategy
from radvision.heads import build_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("simple_cnn", 3, ["Atelectasis", "Effusion", "Mass"], in_chans=1)


def test_heatmap_per_label(model):
    model.train()
    cams = gradcam(model, torch.randn(1, 32, 40))
    assert list(cams) == ["Atelectasis", "Effusion", "Mass"]
    for cam in cams.values():
        assert cam.shape == (32, 40) and cam.dtype == np.float32
        assert cam.min() >= 0 and cam.max() <= 1
    assert model.training  # the caller's mode is restored
    assert not model.backbone.cam_layer._forward_hooks  # grad-cam hooks released
    assert all(p.grad is None for p in model.parameters())


def test_subset_frozen_backbone_and_fpn(model):
    apply_strategy(model, "frozen")  # activations still get gradients
    cams = gradcam(model, torch.randn(1, 1, 32, 32), ["Mass"])
    assert list(cams) == ["Mass"]
    fpn = build_model("simple_cnn", 2, ["a", "b"], head="fpn")
    assert {k: v.shape for k, v in gradcam(fpn, torch.randn(3, 32, 32)).items()} == {"a": (32, 32), "b": (32, 32)}
    multi = build_model(["simple_cnn", "simple_cnn"], 2, ["a", "b"])  # one cam layer per backbone, averaged
    cams = gradcam(multi, torch.randn(3, 32, 32))
    assert cams["a"].shape == (32, 32) and np.isfinite(cams["a"]).all()


def test_every_cam_method_gives_a_map_per_class_and_a_wrong_name_lists_them(model):
    from radvision.explain import CAM_METHODS

    x = torch.randn(1, 32, 32)
    for method in CAM_METHODS:
        cams = gradcam(model, x, method=method)
        assert set(cams) == set(model.class_names)
        assert all(m.shape == (32, 32) and np.isfinite(m).all() for m in cams.values())
    with pytest.raises(RadvisionError, match="did you mean 'layercam'.*gradcam, gradcam\\+\\+, layercam"):
        gradcam(model, x, method="layer-cam")


def test_gradcam_errors(model):
    with pytest.raises(RadvisionError, match="did you mean 'Effusion'"):
        gradcam(model, torch.randn(1, 32, 32), ["Efusion"])
    with pytest.raises(RadvisionError, match="one image"):
        gradcam(model, torch.randn(2, 1, 32, 32))


def test_gradcam_points_at_the_evidence():
    """A model trained to spot a bright square looks at the square."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model("simple_cnn", 1, ["square"], in_chans=1)
    opt = torch.optim.Adam(model.parameters(), 1e-2)

    def batch():
        x = torch.rand(16, 1, 32, 32, generator=g) * 0.2
        for i in range(1, 16, 2):
            r, c = torch.randint(0, 24, (2,), generator=g).tolist()
            x[i, 0, r:r + 8, c:c + 8] += 0.8
        return x, (torch.arange(16) % 2).float()[:, None]

    model.train()
    for _ in range(12):
        x, y = batch()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m in model.modules():  # recompute BatchNorm statistics for the final weights (eval mode uses them)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for _ in range(4):
            model(batch()[0])
    img = torch.rand(1, 32, 32, generator=g) * 0.2
    img[0, 20:30, 2:12] += 0.8  # lower-left quadrant
    cam = gradcam(model, img)["square"]
    lower_left = cam[16:, :16].mean()
    assert lower_left > 2 * max(cam[:16, :].mean(), cam[:, 16:].mean())


@pytest.mark.parametrize("image", [
    np.random.default_rng(0).integers(0, 255, (24, 20), dtype=np.uint8),
    np.random.default_rng(0).normal(size=(24, 20, 3)).astype(np.float32),  # normalised floats
    np.zeros((1, 24, 20), dtype=np.float32),  # channels-first tensor layout
    Image.new("L", (20, 24), 128),
])
def test_save_overlays(tmp_path, image):
    cams = {"Pleural Effusion": np.random.default_rng(1).random((24, 20)), "Mass": np.ones((6, 5)) * 0.5}
    paths = save_overlays(image, cams, tmp_path / "out", "img/01")
    assert [p.name for p in paths] == ["img_01_Pleural_Effusion.png", "img_01_Mass.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.size == (20, 24) and im.mode == "RGB"
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)


def test_save_overlays_errors(tmp_path):
    with pytest.raises(RadvisionError, match="2-D"):
        save_overlays(np.zeros((8, 8)), {"a": np.zeros((2, 2, 2))}, tmp_path, "x")
    with pytest.raises(RadvisionError, match=r"\(H, W\)"):
        save_overlays(np.zeros((8, 8, 5)), {"a": np.zeros((8, 8))}, tmp_path, "x")


def test_an_empty_heatmap_is_reported(caplog, monkeypatch):
    import numpy as np
    import torch

    from radvision import explain
    from radvision.heads import build_model

    model = build_model("simple_cnn", 1, class_names=["A"], pretrained=None)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # no activation, no gradient: Grad-CAM has nothing to show
    with caplog.at_level("WARNING"):
        cams = explain.gradcam(model, torch.rand(3, 32, 32), ["A"])
    assert not np.any(cams["A"] > 0)
    assert "GradCAM is empty for A" in caplog.text and "no positive gradient x activation" in caplog.text
    assert "--method layercam" in caplog.text
    caplog.clear()
    resnet = build_model("resnet18", 1, class_names=["A"], pretrained=None)  # 32 px -> a 1x1 map at layer4
    with caplog.at_level("WARNING"):
        explain.gradcam(resnet, torch.rand(3, 32, 32), ["A"])
    assert "the map at layer4 is 1x1 for (32, 32) input; a larger data.image_size" in caplog.text


def test_overlay_names_keep_letters_of_any_script():
    from radvision.explain import overlay_name

    # were label_A.png, mega_A.png and, after a clash, 2_A.png: names that no longer named the image
    assert overlay_name("é", "A") == "é_A.png" and overlay_name("Ωmega", "A") == "Ωmega_A.png"
    assert overlay_name("日本", "肺炎") == "日本_肺炎.png"
    assert overlay_name("a b/../c", "Mass/Nodule") == "a_b_.._c_Mass_Nodule.png"
    assert overlay_name("!!", "??") == "image_label.png"


def test_overlay_names_never_collide_within_a_call(tmp_path):
    image = Image.new("L", (20, 24), 128)
    cams = {name: np.ones((6, 5)) * 0.5 for name in ("a_b_2", "a b", "a_b")}  # "a b" and "a_b" sanitise alike
    taken: set[str] = set()
    first = save_overlays(image, cams, tmp_path, "x", taken=taken)
    assert [p.name for p in first] == ["x_a_b_2.png", "x_a_b.png", "x_a_b_3.png"]
    # a later image whose names meet the suffixed ones of an earlier image (x_a_b.png's "1" vs x.png's "a_b")
    later = save_overlays(image, {"1": np.ones((6, 5))}, tmp_path, "x_a_b_3", taken=taken)
    assert [p.name for p in later] == ["x_a_b_3_1.png"]
    clash = save_overlays(image, {"2": np.ones((6, 5))}, tmp_path, "x_a_b", taken=taken)
    assert [p.name for p in clash] == ["x_a_b_2_2.png"]  # x_a_b_2.png is taken
    assert len({p.name for p in first + later + clash}) == 5 == len(list(tmp_path.iterdir()))


def test_token_backbones_are_refused_by_every_method_and_channels_last_maps_are_turned():
    """A ViT's (B, N, C) tokens: layercam / hirescam / eigencam drew stripes without a word. Swin's stage
    outputs are (B, H, W, C): read as 7 channels on a 7 x 768 grid, its maps were noise."""
    from radvision.heads import build_model

    vit = build_model("timm/vit_tiny_patch16_224", 2).eval()
    for method in CAM_METHODS:
        with pytest.raises(RadvisionError, match="Grad-CAM needs 2-D feature maps at the backbone's cam layer"):
            gradcam(vit, torch.rand(3, 224, 224), method=method)
    swin = build_model("timm/swin_tiny_patch4_window7_224", 2, head="fpn").eval()
    assert swin.backbone.maps_channels_last
    assert [tuple(m.shape[1:]) for m in swin.backbone.feature_maps(torch.rand(1, 3, 224, 224))][-1] == (768, 7, 7)
    captured = {}
    layer = swin.cam_layers()[0]
    hook = layer.register_forward_hook(lambda m, i, o: captured.update(shape=tuple(o.shape)))  # returns None
    try:
        maps = gradcam(swin, torch.rand(3, 224, 224))
    finally:
        hook.remove()
    assert captured["shape"] == (2, 7, 7, 768) and all(m.shape == (224, 224) for m in maps.values())
    # what grad-cam weighs is the 7 x 7 grid of 768 channels (unturned, it read 7 channels on a 7 x 768 grid)
    from radvision.explain import _channels_first

    assert _channels_first(swin)(torch.zeros(1, 7, 7, 768)).shape == (1, 768, 7, 7)
    assert _channels_first(build_model("simple_cnn", 2)) is None
    bb = swin.backbone
    bb.cam_layer_name = "nope"
    with pytest.raises(RadvisionError, match="cam_layer_name 'nope' names no layer of backbone"):
        _ = bb.cam_layer
    from radvision.backbones import Backbone

    with pytest.raises(RadvisionError, match="cam_layer_name 'layer9' names no layer"):  # was a torch AttributeError
        Backbone("x", torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), ["0"], [4], "layer9", 4)
