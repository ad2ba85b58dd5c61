"""BlindEye (Alvi et al., ECCV Workshops 2018): its confusion loss and its two-part step."""
from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch

from lnl.config import Config
from lnl.data.tensors import DeviceData
from lnl.losses import uniform_ce
from lnl.methods import METHODS
from lnl.models import build_model


def test_uniform_ce_is_cross_entropy_to_the_uniform_distribution():
    torch.manual_seed(0)
    logits = (torch.randn(2, 3, 8, 4, 4) * 2).requires_grad_(True)
    expected = -(logits.log_softmax(dim=2) / 8).sum(dim=2).mean()
    loss = uniform_ce(logits)
    assert torch.allclose(loss, expected, atol=1e-6)
    assert uniform_ce(torch.zeros(1, 3, 8, 2, 2)).item() == pytest.approx(math.log(8))  # its minimum
    assert loss.item() > math.log(8)
    loss.backward()  # d/dz_j of -(1/K) sum_k log p_k is p_j - 1/K, scaled by the mean's 1/(N*3*H*W)
    p = logits.detach().softmax(dim=2)
    assert torch.allclose(logits.grad, (p - 1 / 8) / (2 * 3 * 4 * 4), atol=1e-7)


def _method(alpha, bias_lr, seed=0):
    cfg = Config(method="blind_eye", alpha=alpha, lr=0.05, bias_lr=bias_lr, precision="fp32", cpu_kernels=False,
                 momentum=0.0, weight_decay=0.0)
    torch.manual_seed(seed)
    model = build_model("paper")
    return METHODS.get("blind_eye")(cfg, model, contextlib.nullcontext), model


@pytest.fixture
def batch(cmnist):
    data = DeviceData(cmnist, torch.device("cpu"), train_size=256)
    return next(data.batches("train", 128, torch.Generator().manual_seed(0)))


def test_one_step_moves_f_toward_confusing_the_fixed_bias_head(batch):
    """(A): with alpha > 0 the updated f makes the (unchanged) h's prediction closer to uniform than a
    step with alpha = 0 from the same start; (B) trains h and leaves f as (A) left it."""
    x, y, bias = batch
    after = {}
    for alpha in (0.0, 5.0):
        method, model = _method(alpha, bias_lr=0.05)
        h0 = copy.deepcopy(model.h)
        before = uniform_ce(h0(model.f(x))).item()
        stats = method.step(x, y, bias, epoch=0)
        with torch.no_grad():
            after[alpha] = uniform_ce(h0(model.f(x))).item()  # f's new features, h as it was in (A)
        assert set(stats) == {"train/ce", "train/entropy", "bias/loss"}
        assert any(not torch.equal(a, b) for a, b in zip(h0.parameters(), model.h.parameters()))  # h learned
    assert after[5.0] < before and after[5.0] < after[0.0] - 1e-4


def test_the_bias_classifier_step_does_not_reach_f(batch):
    """f after one step is the same whatever h's learning rate: h's update (B) sends nothing into f
    (LNL's reversal layer would)."""
    x, y, bias = batch
    fs = []
    for bias_lr in (1e-6, 0.5):
        method, model = _method(1.0, bias_lr=bias_lr)
        method.step(x, y, bias, epoch=0)
        fs.append([p.detach().clone() for p in model.f.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*fs))
    method, model = _method(1.0, bias_lr=0.05)
    assert method.unlearns and method.trains_bias_head and method.phase(0) == "confuse"


def test_blind_eye_trains_end_to_end(tiny_config):
    from lnl.training.loop import train

    result = train(tiny_config(method="blind_eye", epochs=2, alpha=0.1))
    assert result.status == "finished" and len(result.epochs) == 2
    last = result.epochs[-1]
    assert last["unlearning"] == 1 and 0 <= last["bias/acc"] <= 1 and 0 <= last["test/acc"] <= 1

