"""Losses: NaN masking, agreement with torch references, weighting helpers."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from radvision.errors import RadvisionError
from radvision.losses import LOSSES, class_weights_from_labels, create_loss, pos_weight_from_labels

NAN = float("nan")


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, generator=g)
    targets = torch.tensor([[1, 0, NAN], [0, 1, 0], [1, NAN, 1], [0, 0, 0], [NAN, 1, 1], [1, 0, 0]])
    return logits, targets


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_is_finite_and_ignores_nan_targets(name, batch):
    logits, targets = batch
    x = logits.clone().requires_grad_(True)
    loss = create_loss(name)(x, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    nan = torch.isnan(targets)
    assert torch.isfinite(x.grad).all()
    assert (x.grad[nan] == 0).all() and (x.grad[~nan] != 0).any()
    # the value at masked cells does not matter
    other = logits.clone()
    other[nan] = 50.0
    torch.testing.assert_close(create_loss(name)(other, targets), loss.detach())


@pytest.mark.parametrize("name", LOSSES)
def test_all_nan_batch_is_finite_and_has_no_gradient(name):
    x = torch.randn(2, 2, requires_grad=True)
    loss = create_loss(name)(x, torch.full((2, 2), NAN))
    loss.backward()
    assert torch.isfinite(loss) and (x.grad == 0).all()


def test_bce_matches_torch(batch):
    logits, targets = batch
    known = ~torch.isnan(targets)
    ref = F.binary_cross_entropy_with_logits(logits[known], targets[known])
    torch.testing.assert_close(create_loss("bce")(logits, targets), ref)
    pw = torch.tensor([2.0, 0.5, 3.0])
    full = torch.nan_to_num(targets)
    ref_pw = F.binary_cross_entropy_with_logits(logits, full, pos_weight=pw, reduction="none")[known].mean()
    torch.testing.assert_close(create_loss("weighted_bce", pos_weight=pw.numpy())(logits, targets), ref_pw)
    torch.testing.assert_close(create_loss("bce", pos_weight=pw)(logits, targets), ref_pw)  # tensors work too


def test_class_weights_select_classes(batch):
    logits, targets = batch
    only_first = create_loss("bce", class_weights=[1.0, 0.0, 0.0])(logits, targets)
    known = ~torch.isnan(targets[:, 0])
    torch.testing.assert_close(only_first, F.binary_cross_entropy_with_logits(logits[known, 0], targets[known, 0]))


def test_weighted_bce_balances_the_batch_without_weights(batch):
    logits, targets = batch
    y = torch.nan_to_num(targets)
    known = ~torch.isnan(targets)
    n_pos, n_neg = float(y[known].sum()), float((1 - y[known]).sum())
    total = n_pos + n_neg
    elem = -(total / n_pos * y * F.logsigmoid(logits) + total / n_neg * (1 - y) * F.logsigmoid(-logits))
    torch.testing.assert_close(create_loss("weighted_bce")(logits, targets), elem[known].mean())


def test_soft_f1_is_near_zero_when_perfect_and_near_one_when_inverted():
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    good = (y * 2 - 1) * 20
    assert create_loss("soft_f1")(good, y) < 1e-3
    assert create_loss("soft_f1")(-good, y) > 0.999


def test_combined_f1_losses(batch):
    logits, targets = batch
    f1 = create_loss("soft_f1")(logits, targets)
    bce = create_loss("bce")(logits, targets)
    torch.testing.assert_close(create_loss("f1_bce")(logits, targets), f1 * bce)
    torch.testing.assert_close(create_loss("f1_plus_bce")(logits, targets), f1 + bce)


def test_focal_reduces_to_bce_and_downweights_easy_examples(batch):
    logits, targets = batch
    bce = create_loss("bce")(logits, targets)
    torch.testing.assert_close(create_loss("focal", gamma=0.0, alpha=-1)(logits, targets), bce)
    assert create_loss("focal", gamma=2.0, alpha=-1)(logits, targets) < bce
    easy = torch.tensor([[8.0]]), torch.tensor([[1.0]])
    assert create_loss("focal", alpha=-1)(*easy) < 1e-3 * create_loss("bce")(*easy)


def test_loss_errors(batch):
    logits, targets = batch
    with pytest.raises(RadvisionError, match="did you mean 'focal'"):
        create_loss("focla")
    with pytest.raises(RadvisionError, match="soft_f1"):
        create_loss("soft_f1", pos_weight=[1.0, 1.0, 1.0])
    with pytest.raises(RadvisionError, match="2 class weights for 3 classes"):
        create_loss("bce", class_weights=[1.0, 2.0])(logits, targets)
    with pytest.raises(RadvisionError, match="non-negative"):
        create_loss("bce", pos_weight=[-1.0, 1.0, 1.0])
    with pytest.raises(RadvisionError, match="batch, classes"):
        create_loss("bce")(logits, targets[:, :2])


def test_weights_from_labels():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, NAN, 0], [1, 0, NAN]], dtype=float)
    np.testing.assert_allclose(pos_weight_from_labels(y), [1 / 3, 2 / 1, 3 / 1])
    w = class_weights_from_labels(y)
    inv = np.array([4 / 3, 3 / 1, 3 / 1])  # 1 / frequency; no positives counts as one
    np.testing.assert_allclose(w, inv / inv.mean(), rtol=1e-6)
    assert math.isclose(float(w.mean()), 1.0, rel_tol=1e-6)
    with pytest.raises(RadvisionError, match="2-D"):
        pos_weight_from_labels(np.zeros(3))
