"""Heads and ImageClassifier / build_model."""

import pytest
import torch
from torch import nn

from radvision.backbones import MultiBackbone
from radvision.errors import RadvisionError
from radvision.heads import FPNHead, ImageClassifier, build_model, create_head

NAMES = ["Atelectasis", "Effusion", "Mass"]


def test_linear_and_mlp_heads():
    lin = create_head("linear", 64, 3)
    assert [type(m) for m in lin] == [nn.Linear]  # no dropout by default
    assert lin(torch.randn(2, 64)).shape == (2, 3)
    lin_d = create_head("linear", 64, 3, dropout=0.2)
    assert isinstance(lin_d[0], nn.Dropout) and lin_d[0].p == 0.2
    mlp = create_head("mlp", 64, 3)  # the 2 x 4096 + dropout 0.5 recipe
    widths = [m.out_features for m in mlp if isinstance(m, nn.Linear)]
    assert widths == [4096, 4096, 3]
    assert [m.p for m in mlp if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    small = create_head("mlp", 64, 3, hidden=(16,), dropout=0.1)
    assert small(torch.randn(5, 64)).shape == (5, 3)


def test_fpn_head_consumes_multiscale_maps():
    head = create_head("fpn", 0, 2, feature_channels=[8, 16, 32], fpn_channels=4)
    assert isinstance(head, FPNHead)
    maps = [torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8), torch.randn(2, 32, 4, 4)]
    out = head(maps)
    assert out.shape == (2, 2)
    out.sum().backward()
    # every level reaches the logits through its lateral conv
    assert all(m.weight.grad.abs().sum() > 0 for m in head.fpn.inner_blocks.modules() if isinstance(m, nn.Conv2d))
    with pytest.raises(RadvisionError, match="expects 3 feature maps"):
        head(maps[:2])


def test_head_errors():
    with pytest.raises(RadvisionError, match="did you mean 'mlp'"):
        create_head("mpl", 8, 2)
    with pytest.raises(RadvisionError, match="feature_channels"):
        create_head("fpn", 8, 2)
    with pytest.raises(RadvisionError, match="dropout"):
        create_head("mlp", 8, 2, dropout=1.5)
    with pytest.raises(RadvisionError, match="num_classes"):
        create_head("linear", 8, 0)
    for bad in (0, -3, 2.5, True):  # 0 built and failed at the first forward pass, -3 inside torch
        with pytest.raises(RadvisionError, match="fpn_channels must be a positive whole number"):
            create_head("fpn", 8, 2, feature_channels=[8, 16], fpn_channels=bad)


def test_a_head_option_of_another_head_is_refused_not_ignored():
    with pytest.raises(RadvisionError, match="Head option 'hidden' belongs to head='mlp'; the 'linear' head"):
        build_model("simple_cnn", 2, head="linear", hidden=[16])
    with pytest.raises(RadvisionError, match="Head option 'fpn_channels' belongs to head='fpn'; the 'mlp' head"):
        build_model("simple_cnn", 2, head="mlp", fpn_channels=64)
    assert build_model("simple_cnn", 2, head="mlp", hidden=[16]).head[0].out_features == 16
    build_model("simple_cnn", 2, head="linear", hidden=None, fpn_channels=None)  # None: forwarded, not given


@pytest.mark.parametrize("head", ["linear", "mlp", "fpn"])
def test_build_model_heads(head):
    kwargs = {"hidden": (32,)} if head == "mlp" else {}
    model = build_model("simple_cnn", 3, NAMES, head=head, in_chans=1, **kwargs)
    assert isinstance(model, ImageClassifier) and model.class_names == NAMES and model.num_classes == 3
    x = torch.randn(4, 1, 32, 32)
    logits = model(x)
    assert logits.shape == (4, 3)
    assert model.features(x).shape == (4, 128)
    logits.sum().backward()
    first = model.backbone.model.blocks[0][0].weight.grad
    assert first is not None and first.abs().sum() > 0
    assert model.uses_feature_maps == (head == "fpn")


def test_build_model_several_backbones():
    model = build_model(["simple_cnn", "simple_cnn"], 2, ["a", "b"], head="linear")
    assert isinstance(model.backbone, MultiBackbone)
    assert model.head[-1].in_features == 256
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    assert len(model.cam_layers()) == 2
    with pytest.raises(RadvisionError, match="fpn head works with one backbone"):
        build_model(["simple_cnn", "simple_cnn"], 2, ["a", "b"], head="fpn")
    with pytest.raises(RadvisionError, match="one per backbone"):
        build_model(["simple_cnn", "simple_cnn"], 2, ["a", "b"], pretrained=[None])


def test_build_model_argument_errors():
    with pytest.raises(RadvisionError, match="class_names"):
        build_model("simple_cnn", 3, ["a", "b"])
    with pytest.raises(RadvisionError, match="Unknown head option"):
        build_model("simple_cnn", 2, ["a", "b"], hiden=(8,))
    with pytest.raises(RadvisionError, match="duplicates"):
        build_model("simple_cnn", 2, ["a", "a"])
    model = build_model("simple_cnn", 2, None)
    assert model.class_names == ["class_0", "class_1"]
    with pytest.raises(RadvisionError, match="predicts 2 classes"):
        ImageClassifier(model.backbone, model.head, ["a", "b", "c"])


def test_a_three_way_head_reports_positive_against_negative():
    from radvision.heads import class_logits

    model = build_model("simple_cnn", 2, ["a", "b"], outputs_per_class=3)
    assert model.outputs_per_class == 3 and model.num_classes == 2
    logits = model(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, 6)
    p = torch.softmax(logits.reshape(4, 2, 3), dim=-1)  # negative, positive, uncertain per class
    expected = p[..., 1] / (p[..., 0] + p[..., 1])
    torch.testing.assert_close(model.probabilities(logits), expected)
    # by hand: softmax(z) = (0.1, 0.6, 0.3) gives 0.6 / 0.7 whatever the uncertain share
    z = torch.log(torch.tensor([[0.1, 0.6, 0.3]]))
    assert class_logits(z, 3).sigmoid().item() == pytest.approx(6 / 7)
    one = build_model("simple_cnn", 2, ["a", "b"])
    x = torch.randn(2, 2)
    torch.testing.assert_close(one.probabilities(x), torch.sigmoid(x))
    with pytest.raises(RadvisionError, match=r"predicts 2 classes \(3 outputs per class\) but 3 class_names"):
        ImageClassifier(model.backbone, model.head, ["a", "b", "c"], outputs_per_class=3)
    with pytest.raises(RadvisionError, match="outputs_per_class must be 1 or 3"):
        ImageClassifier(model.backbone, model.head, ["a", "b", "c"], outputs_per_class=2)
