"""Backbone registry, feature maps, in_chans adaptation and pretrained-weight resolution (offline)."""

import logging

import pytest
import torch
import torchvision.models as tvm
from safetensors.torch import save_file

from radvision import weights as W
from radvision.backbones import (
    REGISTRY,
    Backbone,
    MultiBackbone,
    create_backbone,
    describe_backbones,
    get_spec,
    list_backbones,
)
from radvision.errors import RadvisionError

REQUIRED = ["vgg16", "vgg19", "resnet18", "resnet50", "densenet121", "densenet169", "inception_v3",
            "inception_resnet_v2", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny",
            "convnext_small", "convnext_base", "convnext_large", "simple_cnn"]
TORCHVISION = [n for n in REQUIRED if REGISTRY[n].source == "torchvision"]


def test_registry_lists_required_names():
    names = list_backbones()
    assert names == sorted(names)
    assert set(REQUIRED) <= set(names)
    rows = {r["name"]: r for r in describe_backbones()}
    assert rows["resnet50"]["weights"] == "ResNet50_Weights.IMAGENET1K_V2"
    assert rows["densenet121"]["num_features"] == 1024


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_entries_match_their_metadata(name):
    """Built on the meta device (no memory, no init cost): pooled width and map channels match the data."""
    spec = get_spec(name)
    size = max(96, spec.min_size)
    with torch.device("meta"):
        bb = create_backbone(name)
        pooled, maps = bb.forward_with_maps(torch.zeros(2, 3, size, size))
    assert pooled.shape == (2, spec.num_features) == (2, bb.num_features)
    assert [m.shape[1] for m in maps] == list(spec.feature_channels) == bb.feature_channels
    assert all(a.shape[-1] >= b.shape[-1] for a, b in zip(maps, maps[1:], strict=False))  # low -> high level
    assert bb.cam_layer is bb.model.get_submodule(spec.cam_layer)


def test_timm_registry_entry_takes_metadata_from_timm():
    with torch.device("meta"):
        bb = create_backbone("inception_resnet_v2")
        pooled, maps = bb.forward_with_maps(torch.zeros(2, 3, 96, 96))
    assert bb.num_features == 1536 and pooled.shape == (2, 1536)
    assert [m.shape[1] for m in maps] == bb.feature_channels == [64, 192, 320, 1088, 1536]


def test_simple_cnn_real_forward_and_feature_maps():
    bb = create_backbone("simple_cnn", in_chans=1)
    x = torch.randn(3, 1, 64, 64)
    out = bb(x)
    maps = bb.feature_maps(x)
    assert out.shape == (3, 128)
    assert [m.shape[1:] for m in maps] == [(16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4)]
    assert not bb.model.blocks[0]._forward_hooks  # hooks are removed after each call
    torch.testing.assert_close(out, maps[-1].mean((2, 3)))


def test_timm_prefix_builds_any_timm_model():
    bb = create_backbone("timm/resnet18", in_chans=1)
    assert isinstance(bb, Backbone)
    assert bb.num_features == 512 and bb.feature_channels[-1] == 512
    assert bb(torch.randn(2, 1, 32, 32)).shape == (2, 512)


def test_unknown_names_suggest_close_matches():
    with pytest.raises(RadvisionError, match="did you mean resnet50"):
        create_backbone("resnet5O")
    with pytest.raises(RadvisionError, match="did you mean vgg16"):  # whatever the case
        create_backbone("VGG16")
    with pytest.raises(RadvisionError, match="did you mean timm/resnet18"):
        create_backbone("timm/RESNET18")
    assert {r["name"]: r["num_features"] for r in describe_backbones()}["inception_resnet_v2"] == 1536
    with pytest.raises(RadvisionError, match="timm/<name>"):
        create_backbone("no_such_net")
    with pytest.raises(RadvisionError, match="timm has no model named"):
        create_backbone("timm/resnet18zz")
    with pytest.raises(RadvisionError, match="in_chans"):
        create_backbone("simple_cnn", in_chans=0)
    with pytest.raises(RadvisionError, match="not understood"):
        create_backbone("simple_cnn", pretrained="imagenet21k")
    with pytest.raises(RadvisionError, match="must be a string, got None; valid names: .*simple_cnn"):
        create_backbone(None)


def test_one_channel_input_sums_rgb_kernel_from_a_local_file(tmp_path):
    ref = tvm.resnet18()
    # a DataParallel-style checkpoint wrapped in {"state_dict": ...}
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, tmp_path / "r18.pth")
    bb = create_backbone("resnet18", pretrained=tmp_path / "r18.pth", in_chans=1)
    torch.testing.assert_close(bb.model.conv1.weight, ref.conv1.weight.sum(1, keepdim=True))
    torch.testing.assert_close(bb.model.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    assert bb(torch.randn(2, 1, 32, 32)).shape == (2, 512)


def test_full_classifier_checkpoint_loads_into_backbone(tmp_path, caplog):
    src = create_backbone("simple_cnn")
    state = {f"backbone.model.{k}": v for k, v in src.model.state_dict().items()}
    state["head.0.weight"] = torch.zeros(2, 128)  # a head the backbone lacks: ignored, reported
    save_file(state, str(tmp_path / "clf.safetensors"))
    with caplog.at_level(logging.INFO, logger="radvision.weights"):
        bb = create_backbone("simple_cnn", pretrained=str(tmp_path / "clf.safetensors"))
    for a, b in zip(src.model.state_dict().values(), bb.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert "head.0.weight" in caplog.text


def test_a_file_for_another_architecture_is_refused_not_loaded_in_part(tmp_path):
    torch.save(tvm.efficientnet_b0().state_dict(), tmp_path / "effb0.pth")  # shares a few generic key names
    with pytest.raises(RadvisionError, match=r"Only \d+ of the backbone's \d+ weight tensors .*\(model.backbone\)"):
        create_backbone("mobilenet_v2", pretrained=tmp_path / "effb0.pth")
    half = dict(list(tvm.resnet18().state_dict().items())[: 80])  # most of a resnet18 still loads, with a warning
    torch.save(half, tmp_path / "most.pth")
    assert isinstance(create_backbone("resnet18", pretrained=tmp_path / "most.pth"), Backbone)


def test_a_multi_backbone_runs_weights_seed_a_single_backbone(tmp_path):
    from radvision.heads import build_model
    from radvision.rundir import save_weights

    pair = build_model(["simple_cnn", "simple_cnn"], num_classes=2)
    save_weights(pair, tmp_path / "model.safetensors")
    single = create_backbone("simple_cnn", pretrained=tmp_path / "model.safetensors")
    first = pair.backbone.backbones[0].model.state_dict()
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(value, first[key])


def test_the_grad_cam_layer_is_held_once_and_older_files_with_its_alias_still_load(tmp_path, caplog):
    from radvision.heads import build_model
    from radvision.rundir import load_weights

    model = build_model("simple_cnn", num_classes=2)
    state = model.state_dict()
    assert not [k for k in state if "cam_layer" in k]  # was held twice: plain save_file refused the shared tensors
    save_file(state, str(tmp_path / "plain.safetensors"))
    assert model.backbone.cam_layer is model.backbone.model.get_submodule(model.backbone.cam_layer_name)
    # runs saved by earlier versions also hold it under backbone.cam_layer.*
    inner = f"backbone.model.{model.backbone.cam_layer_name}."
    old = {**state, **{"backbone.cam_layer." + k[len(inner):]: v.clone() for k, v in state.items() if k.startswith(inner)}}
    assert len(old) > len(state)
    save_file(old, str(tmp_path / "old.safetensors"))
    load_weights(build_model("simple_cnn", num_classes=2), tmp_path / "old.safetensors")  # strict, yet it loads
    with caplog.at_level("INFO"):
        create_backbone("simple_cnn", pretrained=tmp_path / "old.safetensors")
    assert "backbone.cam_layer" not in caplog.text and "loaded 24/24 backbone tensors" in caplog.text
    # setting the layer moves it (nn.Module would have registered it a second time, past the property)
    model.backbone.cam_layer = model.backbone.model.blocks[2]
    assert model.backbone.cam_layer_name == "blocks.2" and model.cam_layers()[0] is model.backbone.model.blocks[2]
    assert not [k for k in model.state_dict() if "cam_layer" in k]
    with pytest.raises(RadvisionError, match="cam_layer must be a layer inside backbone simple_cnn's model"):
        model.backbone.cam_layer = torch.nn.Conv2d(1, 1, 1)
    multi = build_model(["simple_cnn", "simple_cnn"], num_classes=2)
    with pytest.raises(RadvisionError, match="set cam_layer on one of its backbones"):
        multi.backbone.cam_layer = multi.backbone.backbones[0].model.blocks[2]


def test_each_backbone_of_a_list_gets_its_own_weights_from_a_multi_backbone_runs_file(tmp_path, caplog):
    from radvision.heads import build_model
    from radvision.rundir import save_weights

    torch.manual_seed(0)
    pair = build_model(["simple_cnn", "simple_cnn"], num_classes=2)  # same key names and shapes twice
    save_weights(pair, tmp_path / "pair.safetensors")
    again = build_model(["simple_cnn", "simple_cnn"], 2, pretrained=[tmp_path / "pair.safetensors"] * 2)
    for i in (0, 1):
        for key, value in again.backbone.backbones[i].model.state_dict().items():
            torch.testing.assert_close(value, pair.backbone.backbones[i].model.state_dict()[key])
    with caplog.at_level("WARNING", logger="radvision.weights"):  # alone, either could be meant: say which
        create_backbone("simple_cnn", pretrained=tmp_path / "pair.safetensors")
    assert "under several prefixes (backbone.backbones.0.model., backbone.backbones.1.model.)" in caplog.text
    # shapes decide where names alone cannot: resnet18's key names all occur in a resnet50
    mixed = build_model(["resnet50", "resnet18"], num_classes=2)
    save_weights(mixed, tmp_path / "mixed.safetensors")
    r18 = create_backbone("resnet18", pretrained=tmp_path / "mixed.safetensors")
    torch.testing.assert_close(r18.model.layer1[0].conv1.weight, mixed.backbone.backbones[1].model.layer1[0].conv1.weight)


def test_relative_weight_file_without_known_suffix(tmp_path, monkeypatch):
    torch.save(create_backbone("simple_cnn").model.state_dict(), tmp_path / "chexnet.weights")
    monkeypatch.chdir(tmp_path)
    assert isinstance(create_backbone("simple_cnn", pretrained="chexnet.weights"), Backbone)


def test_bad_weight_files_give_clear_errors(tmp_path):
    with pytest.raises(RadvisionError, match="does not exist"):
        create_backbone("simple_cnn", pretrained=tmp_path / "missing.pth")
    save_file({"foo.bar": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(RadvisionError, match="None of the 1 tensors"):
        create_backbone("simple_cnn", pretrained=tmp_path / "other.safetensors")
    wide = create_backbone("simple_cnn").model.state_dict()
    wide["blocks.1.0.weight"] = torch.zeros(8, 16, 3, 3)
    torch.save(wide, tmp_path / "wide.pt")
    with pytest.raises(RadvisionError, match="wrong shape"):
        create_backbone("simple_cnn", pretrained=tmp_path / "wide.pt")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RadvisionError, match="Could not read weight file"):
        create_backbone("simple_cnn", pretrained=tmp_path / "junk.pth")


def test_imagenet_offline_without_cache_explains_how_to_supply_weights(offline_caches):
    with pytest.raises(RadvisionError, match=r"model.pretrained=/path/to/resnet18\.pth .*pretrained='/path/to/resnet18\.pth'") as err:
        create_backbone("resnet18", pretrained="imagenet")
    assert str(offline_caches / "torch") in str(err.value)
    with pytest.raises(RadvisionError, match="not in the local caches"):
        create_backbone("timm/resnet18", pretrained="imagenet")
    with pytest.raises(RadvisionError, match="no ImageNet weights"):
        create_backbone("simple_cnn", pretrained="imagenet")


def test_imagenet_uses_the_torch_hub_cache(offline_caches):
    ref = tvm.resnet18()
    url = tvm.get_weight("ResNet18_Weights.IMAGENET1K_V1").url
    ckpt = W.torch_hub_dir() / "checkpoints" / url.rsplit("/", 1)[-1]
    ckpt.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), ckpt)
    bb = create_backbone("resnet18", pretrained="imagenet", in_chans=1)
    torch.testing.assert_close(bb.model.conv1.weight, ref.conv1.weight.sum(1, keepdim=True))
    torch.testing.assert_close(bb.model.layer3[0].bn1.running_mean, ref.layer3[0].bn1.running_mean)


def test_multibackbone_concatenates_features():
    mb = MultiBackbone([create_backbone("simple_cnn"), create_backbone("simple_cnn")])
    x = torch.randn(2, 3, 32, 32)
    out = mb(x)
    assert mb.num_features == 256 and out.shape == (2, 256)
    torch.testing.assert_close(out[:, :128], mb.backbones[0](x))
    assert len(mb.cam_layers) == 2
    with pytest.raises(RadvisionError, match="fpn"):
        mb.feature_maps(x)
    with pytest.raises(RadvisionError):
        MultiBackbone([])


def test_too_small_images_give_a_clear_error():
    with torch.device("meta"):
        bb = create_backbone("inception_v3")
        with pytest.raises(RadvisionError, match="at least 75x75"):
            bb(torch.zeros(2, 3, 64, 64))


def test_timm_imagenet_loads_the_cached_file(tmp_path, monkeypatch):
    import timm

    ref = timm.create_model("resnet18")
    save_file(ref.state_dict(), str(tmp_path / "model.safetensors"))
    monkeypatch.setattr(W, "timm_pretrained_file", lambda name: str(tmp_path / "model.safetensors"))
    bb = create_backbone("timm/resnet18", pretrained="imagenet", in_chans=1)
    torch.testing.assert_close(bb.model.conv1.weight, ref.conv1.weight.sum(1, keepdim=True))
    torch.testing.assert_close(bb.model.layer2[0].conv1.weight, ref.layer2[0].conv1.weight)


def test_too_small_input_suggests_only_backbones_that_take_it():
    with pytest.raises(RadvisionError, match=r"simple_cnn needs images of at least 16x16 pixels, got 8x8; "
                                             r"resize the images\.$"):
        create_backbone("simple_cnn")(torch.zeros(1, 3, 8, 8))
    with pytest.raises(RadvisionError, match=r"got 24x24; resize the images or pick a backbone such as simple_cnn\.$"):
        create_backbone("resnet18")(torch.zeros(1, 3, 24, 24))


def test_inception_gets_its_input_normalisation_with_or_without_weights(tmp_path):
    torch.manual_seed(0)
    scratch = create_backbone("inception_v3").eval()
    torch.save(scratch.model.state_dict(), tmp_path / "inception.pth")
    from_file = create_backbone("inception_v3", pretrained=tmp_path / "inception.pth").eval()
    # what torchvision's ImageNet weights were made for: transform_input=True on ImageNet-normalised input
    ref = tvm.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=True)
    ref.fc, ref.dropout = torch.nn.Identity(), torch.nn.Identity()
    ref.load_state_dict(scratch.model.state_dict())
    ref.eval()
    x = torch.randn(2, 3, 80, 80)
    with torch.no_grad():
        expected = ref(x)
        for bb in (scratch, from_file):
            assert bb.model.transform_input is False  # done once, by the Backbone, the same for every build
            torch.testing.assert_close(bb(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_timm_models_get_the_normalisation_and_input_size_of_their_weights():
    irv2 = create_backbone("timm/inception_resnet_v2")
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(irv2.input_norm(x)[0, 0], (x[0, 0] * 0.229 + 0.485 - 0.5) / 0.5)
    assert isinstance(create_backbone("timm/resnet18").input_norm, torch.nn.Identity)  # ImageNet already
    assert isinstance(create_backbone("resnet18").input_norm, torch.nn.Identity)
    assert get_spec("timm/vit_tiny_patch16_224").fixed_size == 224 and get_spec("timm/resnet18").fixed_size == 0
    vit = create_backbone("timm/vit_tiny_patch16_224")
    with pytest.raises(RadvisionError, match=r"takes only 224x224 images .* got 64x64; set data.image_size=224"):
        vit(torch.zeros(1, 3, 64, 64))
    assert "input_norm.scale" not in irv2.state_dict()  # recreated from the registry, not stored in runs


def test_in_chans_must_be_a_number_not_a_flag():
    with pytest.raises(RadvisionError, match="in_chans must be a positive integer, got True"):
        create_backbone("simple_cnn", in_chans=True)


def test_a_deeper_or_other_family_file_is_refused_with_the_right_reason(tmp_path):
    torch.save(tvm.resnet34().state_dict(), tmp_path / "r34.pth")  # holds every resnet18 tensor name and more
    with pytest.raises(RadvisionError, match=r"r34.pth holds \d+ tensors inside this backbone's modules .*deeper "
                                             r"model of the same family"):
        create_backbone("resnet18", pretrained=tmp_path / "r34.pth")
    torch.save(tvm.densenet121().state_dict(), tmp_path / "d.pth")  # a dense layer's "conv1.weight" is not resnet's
    with pytest.raises(RadvisionError, match=r"Only \d+ of the backbone's \d+ weight tensors are in .*d.pth"):
        create_backbone("resnet18", pretrained=tmp_path / "d.pth")
    one = create_backbone("resnet18", in_chans=1)
    torch.save(one.state_dict(), tmp_path / "gray.pth")
    with pytest.raises(RadvisionError, match=r"first convolution in .*gray.pth takes 1 input channel and .*"
                                             r"\(data.channels=1\)"):
        create_backbone("resnet18", pretrained=tmp_path / "gray.pth", in_chans=3)
    four = create_backbone("resnet18", in_chans=4)
    torch.save(four.state_dict(), tmp_path / "four.pth")
    with pytest.raises(RadvisionError, match=r"takes 4 input channels .*use a file with 3-channel \(RGB\) or one"):
        create_backbone("resnet18", pretrained=tmp_path / "four.pth", in_chans=3)
    # a classifier the backbone lacks is a few tensors, also where it sits in a module the backbone has (timm's head)
    import timm

    full = timm.create_model("convnext_atto")
    save_file(full.state_dict(), str(tmp_path / "atto.safetensors"))
    bb = create_backbone("timm/convnext_atto", pretrained=tmp_path / "atto.safetensors")
    torch.testing.assert_close(bb.model.head.norm.weight, full.head.norm.weight)
    # a radvision run's file: its own head (FPN, many tensors) sits beside the backbone, also where timm's
    # backbone has a module of the same name ("head")
    from radvision.heads import build_model
    from radvision.rundir import save_weights

    run = build_model("timm/convnext_atto", 3, head="fpn")
    save_weights(run, tmp_path / "run.safetensors")
    bb = create_backbone("timm/convnext_atto", pretrained=tmp_path / "run.safetensors")
    torch.testing.assert_close(bb.model.stem[0].weight, run.backbone.model.stem[0].weight)
    torch.save(tvm.inception_v3(aux_logits=True, init_weights=False).state_dict(), tmp_path / "inc.pth")
    assert isinstance(create_backbone("inception_v3", pretrained=tmp_path / "inc.pth"), Backbone)
