"""Fine-tuning strategies, stage splitting and optimizer parameter groups."""

import pytest
import torch
from torch import nn

from radvision.errors import RadvisionError
from radvision.finetune import apply_strategy, backbone_stages, param_groups, unfreeze_next
from radvision.heads import build_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("simple_cnn", 2, ["a", "b"], head="mlp", hidden=(16,))


def _trainable(module: nn.Module) -> int:
    return sum(p.requires_grad for p in module.parameters())


def _ids(params) -> list[int]:
    return [id(p) for p in params]


@pytest.mark.parametrize("name", ["simple_cnn", "resnet18"])
def test_stages_cover_every_backbone_parameter_once(name):
    m = build_model(name, 2, ["a", "b"])
    stages = backbone_stages(m)
    assert len(stages) == len(m.backbone.feature_channels) and all(stages)
    flat = [i for s in stages for i in _ids(s)]
    assert sorted(flat) == sorted(_ids(m.backbone.parameters()))
    if name == "resnet18":  # stem joins stage 0; layer4 is the last stage
        assert id(m.backbone.model.conv1.weight) in _ids(stages[0])
        assert set(_ids(m.backbone.model.layer4.parameters())) == set(_ids(stages[-1]))


def test_stages_of_concatenated_backbones_align_from_the_top():
    m = build_model(["simple_cnn", "simple_cnn"], 2, ["a", "b"])
    stages = backbone_stages(m)
    assert len(stages) == 4
    last = set(_ids(stages[-1]))
    assert all(id(p) in last for b in m.backbone.backbones for p in b.model.blocks[3].parameters())


@pytest.mark.parametrize("strategy", ["frozen", "layerwise"])
def test_a_frozen_backbone_is_a_fixed_feature_extractor_even_with_stochastic_depth(strategy):
    torch.manual_seed(0)
    m = build_model("efficientnet_b0", 2, ["a", "b"])  # torchvision's stochastic depth 0.2
    apply_strategy(m, strategy)
    m.train()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(m.features(x), m.features(x))
    drops = [mod for mod in m.backbone.modules() if type(mod).__name__ == "StochasticDepth"]
    assert drops and not any(d.training for d in drops) and m.head.training
    unfreeze_next(m) if strategy == "layerwise" else apply_strategy(m, "full")
    m.train()
    opened = [d.training for d in drops]  # layerwise: only the top stage's blocks train again
    assert (0 < sum(opened) < len(drops)) if strategy == "layerwise" else all(opened)


def test_frozen_trains_head_only_and_keeps_batchnorm_statistics(model):
    apply_strategy(model, "frozen")
    assert _trainable(model.backbone) == 0 and _trainable(model.head) == len(list(model.head.parameters()))
    model.train()
    bn = model.backbone.model.blocks[0][1]
    assert not bn.training and model.head.training
    before = bn.running_mean.clone()
    opt = torch.optim.SGD(param_groups(model, 0.1), lr=0.1)
    model(torch.randn(8, 3, 32, 32)).sum().backward()
    opt.step()
    torch.testing.assert_close(bn.running_mean, before)
    apply_strategy(model, "full")
    model.train()
    assert bn.training and _trainable(model) == len(list(model.parameters()))


def test_layerwise_unfreezes_from_the_top(model):
    apply_strategy(model, "layerwise")
    stages = backbone_stages(model)
    assert _trainable(model.backbone) == 0
    assert unfreeze_next(model) == 1
    assert all(p.requires_grad for p in stages[-1]) and not any(p.requires_grad for p in stages[0])
    for expected in range(2, len(stages) + 1):
        assert unfreeze_next(model) == expected
    assert _trainable(model.backbone) == len(list(model.backbone.parameters()))
    assert unfreeze_next(model) == len(stages)  # nothing left: stays put


def test_param_groups_rates_decay_and_late_unfreezing(model):
    apply_strategy(model, "layerwise")
    groups = param_groups(model, lr=1e-2, backbone_lr_mult=0.1, weight_decay=1e-4)
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["lr"] == 1e-2 and by_name["backbone"]["lr"] == pytest.approx(1e-3)
    assert by_name["head"]["weight_decay"] == 1e-4 and by_name["backbone_no_decay"]["weight_decay"] == 0.0
    assert all(p.ndim <= 1 for g in groups if g["name"].endswith("no_decay") for p in g["params"])
    assert sorted(i for g in groups for i in _ids(g["params"])) == sorted(_ids(model.parameters()))
    opt = torch.optim.AdamW(groups)
    top_conv = model.backbone.model.blocks[3][0].weight
    low_conv = model.backbone.model.blocks[0][0].weight
    unfreeze_next(model)  # the same optimizer picks up the newly trainable stage
    top0, low0 = top_conv.detach().clone(), low_conv.detach().clone()
    model.train()
    opt.zero_grad()
    model(torch.randn(8, 3, 32, 32)).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(top0, top_conv) and torch.equal(low0, low_conv)


def test_errors(model):
    with pytest.raises(RadvisionError, match="did you mean 'frozen'"):
        apply_strategy(model, "frozn")
    with pytest.raises(RadvisionError, match="lr must be"):
        param_groups(model, 0.0)
