"""Losses: NaN masking, agreement with torch references, half precision, focal alpha."""


import pytest
import torch
import torch.nn.functional as F

from radvision.errors import RadvisionError
from radvision.losses import LOSSES, create_loss

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
    for value in (50.0, float("inf"), -float("inf"), NAN):
        other = logits.clone().requires_grad_(True)
        with torch.no_grad():
            other[nan] = value
        masked = create_loss(name)(other, targets)
        torch.testing.assert_close(masked.detach(), loss.detach())
        masked.backward()
        assert torch.isfinite(other.grad).all()


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("bad", [-1.0, 2.0])
def test_targets_outside_0_1_are_refused(name, bad):
    with pytest.raises(RadvisionError, match=r"Targets must be 1 / 0.*-1\) labels with an uncertainty policy"):
        create_loss(name)(torch.zeros(2, 2), torch.tensor([[1.0, bad], [0.0, NAN]]))
    assert torch.isfinite(create_loss(name)(torch.zeros(2, 2), torch.tensor([[1.0, 0.3], [0.0, NAN]])))


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


@pytest.mark.parametrize("name", LOSSES)
def test_half_precision_inputs_give_finite_losses_and_gradients(name):
    cases = {
        "all unknown": (torch.randn(4, 3), torch.full((4, 3), NAN)),
        "confident and right": (torch.tensor([[100.0, -100.0, 100.0]] * 4), torch.tensor([[1.0, 0.0, 1.0]] * 4)),
        "confident and wrong": (torch.full((4, 3), 1e4), torch.zeros(4, 3)),
    }
    for case, (logits, targets) in cases.items():
        for dtype in (torch.float16, torch.bfloat16):
            x = logits.to(dtype).requires_grad_(True)
            loss = create_loss(name)(x, targets.to(dtype))
            loss.backward()
            assert loss.dtype == torch.float32, case
            assert torch.isfinite(x.grad).all(), (case, dtype)
            if case != "confident and wrong" or name in ("soft_f1",):
                assert torch.isfinite(loss), (case, dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # inside autocast the loss still runs in float32
            x = logits.clone().requires_grad_(True)
            loss = create_loss(name)(x @ torch.eye(3), targets)
        loss.backward()
        assert loss.dtype == torch.float32 and torch.isfinite(x.grad).all(), case


def test_focal_alpha_weighs_positive_against_negative_terms():
    wrong_pos, wrong_neg = torch.tensor([[-4.0]]), torch.tensor([[4.0]])
    pos, neg = torch.ones(1, 1), torch.zeros(1, 1)
    for alpha, ratio in ((0.25, 1 / 3), (0.5, 1.0), (None, 1.0), (0.75, 3.0)):
        focal = create_loss("focal", alpha=alpha)
        assert (focal(wrong_pos, pos) / focal(wrong_neg, neg)).item() == pytest.approx(ratio, rel=1e-5), alpha
    with pytest.raises(RadvisionError, match="between 0 and 1, or None"):
        create_loss("focal", alpha=1.5)


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




@pytest.mark.parametrize("name", sorted(LOSSES))
def test_all_zero_class_weights_are_refused(name):
    with pytest.raises(RadvisionError, match="class_weights are all 0"):
        create_loss(name, class_weights=[0, 0])
    create_loss(name, class_weights=[0, 1])  # one class switched off is fine


def test_u_multiclass_cross_entropy_matches_a_hand_computation_and_masks_nan():
    import math

    # 2 images x 2 classes, logits class-major (negative, positive, uncertain)
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.5, 0.0, -1.0],
                           [1.0, 0.0, 0.0, float("inf"), 3.0, 0.0]])  # an inf where the target is unknown
    targets = torch.tensor([[1.0, -1.0], [0.0, NAN]])

    def ce(z, k):  # -log softmax(z)[k]
        return -(z[k] - math.log(sum(math.exp(v) for v in z)))

    terms = [ce([0.0, 1.0, 2.0], 1), ce([0.5, 0.0, -1.0], 2), ce([1.0, 0.0, 0.0], 0)]
    x = logits.clone().requires_grad_(True)
    loss = create_loss("bce", outputs_per_class=3)(x, targets)
    assert loss.item() == pytest.approx(sum(terms) / 3, rel=1e-6)
    loss.backward()
    assert torch.isfinite(x.grad).all() and (x.grad[1, 3:] == 0).all()  # the unknown target gives no gradient
    # class weights still weigh classes: a weighted mean over the known targets
    weighted = create_loss("bce", class_weights=[1.0, 3.0], outputs_per_class=3)(logits, targets)
    assert weighted.item() == pytest.approx((terms[0] + 3 * terms[1] + terms[2]) / 5, rel=1e-6)
    # pos_weight scales the terms of positive targets, as in BCE (the mean stays over known targets)
    pos = create_loss("bce", pos_weight=[4.0, 1.0], outputs_per_class=3)(logits, targets)
    assert pos.item() == pytest.approx((4 * terms[0] + terms[1] + terms[2]) / 3, rel=1e-6)
    # an all-unknown batch is a zero loss that still backpropagates
    assert create_loss("bce", outputs_per_class=3)(x, torch.full((2, 2), NAN)).item() == 0.0


def test_u_multiclass_refuses_sigmoid_losses_and_bad_shapes_or_targets():
    for name in sorted(set(LOSSES) - {"bce"}):
        with pytest.raises(RadvisionError, match=f"U-MultiClass.*loss '{name}'.*use loss 'bce'"):
            create_loss(name, outputs_per_class=3)
    loss = create_loss("bce", outputs_per_class=3)
    with pytest.raises(RadvisionError, match=r"classes x 3"):
        loss(torch.zeros(2, 4), torch.zeros(2, 2))
    with pytest.raises(RadvisionError, match="1, 0, -1"):
        loss(torch.zeros(1, 6), torch.tensor([[0.5, 1.0]]))
    with pytest.raises(RadvisionError, match="U-MultiClass"):  # a binary loss names the policy for -1 targets
        create_loss("bce")(torch.zeros(1, 2), torch.tensor([[-1.0, 1.0]]))
