"""Networks and loss terms: shapes, the reversal layer, the LNL losses on real batches."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lnl.config import Config
from lnl.data.tensors import DeviceData
from lnl.losses import bias_ce, grad_reverse, neg_entropy
from lnl.models import ARCHS, build_model


@pytest.mark.parametrize("arch", ARCHS.names())
def test_shapes_of_f_g_h(arch):
    model = build_model(arch)
    x = torch.randn(4, 3, 28, 28)
    feat = model.f(x)
    assert feat.shape == (4, 32, 14, 14)
    assert model.g(feat).shape == (4, 10)
    assert model.h(feat).shape == (4, 3, 8, 14, 14)


def test_architecture_knobs():
    model = build_model("paper", width=0.5, g_depth=4, head_width=16)
    feat = model.f(torch.randn(2, 3, 28, 28))
    assert feat.shape == (2, 16, 14, 14) and model.g(feat).shape == (2, 10)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.g.modules()) == 4
    assert model.h.conv1.out_channels == 3 * 16 and model.h(feat).shape == (2, 3, 8, 14, 14)


def test_paper_network_matches_the_official_layer_list():
    model = build_model("paper")
    convs = [m for m in model.f.modules() if isinstance(m, torch.nn.Conv2d)] + \
            [m for m in model.g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == \
        [(3, 32, 5, 1), (32, 32, 3, 1), (32, 64, 3, 2), (64, 64, 3, 1)]
    n_params = sum(p.numel() for p in model.parameters())
    official_f_g = 6 + (3 * 32 * 25 + 32) + (32 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 64 * 9 + 64) + 650
    official_h = 3 * ((32 * 32 * 9 + 32) + 64 + (32 * 8 * 9 + 8))
    assert n_params == official_f_g + official_h


def test_head_bn_init_uniform_is_pytorch04s_gamma_and_leaves_f_g_alone():
    torch.manual_seed(3)
    ones = build_model("paper")
    torch.manual_seed(3)
    uniform = build_model("paper", head_bn_init="uniform")
    assert torch.equal(ones.h.bn.weight, torch.ones(96))
    gamma = uniform.h.bn.weight.detach()
    assert gamma.shape == (96,) and 0.0 <= gamma.min() and gamma.max() < 1.0
    assert 0.35 < gamma.mean() < 0.65 and 0.2 < gamma.std() < 0.38  # U(0, 1): mean 0.5, std 0.289
    assert torch.equal(uniform.h.bn.bias, torch.zeros(96))
    # f and g are built (and drawn) first, so the same seed gives the same f and g either way
    for a, b in zip([*ones.f.parameters(), *ones.g.parameters()], [*uniform.f.parameters(), *uniform.g.parameters()]):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="head_bn_init"):
        build_model("paper", head_bn_init="zeros")


def test_head_bn_init_shares_the_pretrained_baseline_and_names_its_own_run():
    base = dict(method="lnl", init_from="baseline", recipe="official", color_var=0.035, seed=0)
    ones, uniform = Config.from_dict(base), Config.from_dict({**base, "head_bn_init": "uniform"})
    assert uniform.init_config().default_run_id() == ones.init_config().default_run_id()
    assert uniform.default_run_id() != ones.default_run_id()


@pytest.mark.parametrize("mu", [0.1, 1.0, 3.5])
def test_gradient_reversal_sends_minus_mu_times_the_gradient(mu):
    x = torch.randn(5, 7, requires_grad=True)
    upstream = torch.randn(5, 7)
    y = grad_reverse(x, mu)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.allclose(x.grad, -mu * upstream)


def test_neg_entropy_and_bias_ce_match_their_definitions():
    torch.manual_seed(0)
    logits = torch.randn(4, 3, 8, 14, 14) * 3
    p = logits.softmax(dim=2)
    assert torch.allclose(neg_entropy(logits), (p * p.log()).sum(2).mean(), atol=1e-6)
    labels = torch.randint(0, 8, (4, 3, 14, 14), dtype=torch.uint8)
    labels[:, :, :5] = 255
    official = sum(F.cross_entropy(logits[:, k], labels[:, k].long(), ignore_index=255) for k in range(3))
    assert torch.allclose(bias_ce(logits, labels), official, atol=1e-5)


def test_lnl_losses_finite_on_real_batches_even_with_saturated_logits(cmnist):
    data = DeviceData(cmnist, torch.device("cpu"), train_size=256)
    model = build_model("paper")
    x, y, bias = next(data.batches("train", 128, torch.Generator().manual_seed(0)))
    logits = model.h(model.f(x))
    for scale in (1.0, 1e4):  # p*log(p) naively is NaN once p underflows; log-softmax is not
        ne, bl = neg_entropy(logits * scale), bias_ce(logits * scale, bias)
        assert torch.isfinite(ne) and torch.isfinite(bl)
        (ne + bl).backward(retain_graph=True)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert -np.log(8) - 1e-4 <= neg_entropy(logits).item() <= 0


def test_lnl_reversal_scale_ramps_as_dann_and_names_its_graph_phases():
    """mu_schedule='dann': mu * (2 / (1 + exp(-10 p)) - 1) at each unlearning epoch's middle, from near 0
    to mu; the constant schedule is the paper's mu; each ramped value is its own CUDA-graph phase."""
    from lnl.methods import LearningNotToLearn

    def method(**kw):
        m = LearningNotToLearn.__new__(LearningNotToLearn)  # mu_at and phase read only the config
        m.cfg = Config(method="lnl", mu=0.5, epochs=12, warmup_epochs=2, **kw)
        return m

    ramp = method(mu_schedule="dann")
    assert ramp.mu_at(2) == pytest.approx(0.5 * (2 / (1 + math.exp(-0.5)) - 1))  # p = 0.05
    assert ramp.mu_at(11) == pytest.approx(0.5 * (2 / (1 + math.exp(-9.5)) - 1))  # p = 0.95
    values = [ramp.mu_at(e) for e in range(2, 12)]
    assert values == sorted(values) and values[0] < 0.25 * 0.5 and values[-1] > 0.4999
    assert [method().mu_at(e) for e in (2, 7, 11)] == [0.5, 0.5, 0.5]
    assert ramp.phase(0) == "warmup" and method().phase(5) == "unlearn"
    assert len({ramp.phase(e) for e in range(2, 12)}) == 10
