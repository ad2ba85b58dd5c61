"""ReBias (Bahng et al., ICML 2020) on this harness checked against a transcription of the official code
(clovaai/rebias: criterions/hsic.py RbfHSIC / MinusRbfHSIC, models/mnist_models.py SimpleConvNet,
trainer.py's _update_g then _update_f) on fixed tensors."""
from __future__ import annotations

import contextlib
import copy

import pytest
import torch
import torch.nn as nn

from conftest import assert_grad_close
from lnl.config import Config
from lnl.data.tensors import DeviceData
from lnl.losses import rbf_hsic
from lnl.methods import METHODS
from lnl.models import ColorNet, build_model


# --- the official code, transcribed -------------------------------------------------------------------------
class OfficialRbfHSIC(nn.Module):
    def __init__(self, sigma_x, sigma_y=None):
        super().__init__()
        self.sigma_x, self.sigma_y = sigma_x, sigma_y if sigma_y is not None else sigma_x

    def _kernel(self, X, sigma):
        X = X.view(len(X), -1)
        XX = X @ X.t()
        X_sqnorms = torch.diag(XX)
        X_L2 = -2 * XX + X_sqnorms.unsqueeze(1) + X_sqnorms.unsqueeze(0)
        gamma = 1 / (2 * sigma ** 2)
        return torch.exp(-gamma * X_L2)

    def unbiased_estimator(self, input1, input2):
        kernel_XX = self._kernel(input1, self.sigma_x)
        kernel_YY = self._kernel(input2, self.sigma_y)
        tK = kernel_XX - torch.diag(kernel_XX)
        tL = kernel_YY - torch.diag(kernel_YY)
        N = len(input1)
        hsic = (torch.trace(tK @ tL) + (torch.sum(tK) * torch.sum(tL) / (N - 1) / (N - 2))
                - (2 * torch.sum(tK, 0).dot(torch.sum(tL, 0)) / (N - 2)))
        return hsic / (N * (N - 3))

    def forward(self, input1, input2, **kwargs):
        return self.unbiased_estimator(input1, input2)


class OfficialMinusRbfHSIC(OfficialRbfHSIC):
    def forward(self, input1, input2, **kwargs):
        return -self.unbiased_estimator(input1, input2)


class OfficialSimpleConvNet(nn.Module):  # kernel_size=1, feature_pos='post'
    def __init__(self, kernel_size=1):
        super().__init__()
        padding = kernel_size // 2
        layers = []
        for c_in, c_out in ((3, 16), (16, 32), (32, 64), (64, 128)):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=kernel_size, padding=padding), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        self.extracter = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        post_gap_feats = torch.flatten(self.avgpool(self.extracter(x)), 1)
        return self.fc(post_gap_feats), post_gap_feats


def official_step(f_net, g_net, f_optimizer, g_optimizer, x, labels, f_lambda_outer=1.0):
    """trainer.py: _update_g (CE + g_lambda_inner * MinusRbfHSIC(g, f)), then _update_f (CE + f_lambda_outer *
    RbfHSIC(f, g)), g_lambda_inner 1, sigma 1."""
    ce, inner, outer = nn.CrossEntropyLoss(), OfficialMinusRbfHSIC(1.0, 1.0), OfficialRbfHSIC(1.0, 1.0)
    preds, g_feats = g_net(x)
    _, f_feats = f_net(x)
    g_loss = ce(preds, labels) + 1 * inner(g_feats, f_feats)
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    g_grads = [p.grad.clone() for p in g_net.parameters()]
    preds, f_feats = f_net(x)
    _g_preds, _g_feats = g_net(x)
    f_loss = ce(preds, labels) + f_lambda_outer * outer(f_feats, _g_feats)
    f_optimizer.zero_grad()
    f_loss.backward()
    f_optimizer.step()
    return g_grads
# -----------------------------------------------------------------------------------------------------------


def test_rbf_hsic_is_the_official_estimator_and_small_for_independent_features():
    torch.manual_seed(0)
    a, b = torch.randn(64, 16), torch.randn(64, 8)
    assert torch.allclose(rbf_hsic(a, b), OfficialRbfHSIC(1.0)(a, b), atol=1e-7)
    dependent = rbf_hsic(a, a[:, :8] * 0.5)
    assert dependent > 10 * abs(rbf_hsic(a, b))


def test_color_net_is_the_official_one_by_one_network():
    torch.manual_seed(0)
    ours, official = ColorNet(), OfficialSimpleConvNet(kernel_size=1)
    official.load_state_dict(ours.state_dict())  # same parameter names and shapes
    x = torch.rand(8, 3, 28, 28)
    (lo, fo), (lr, fr) = ours(x), official(x)
    assert torch.allclose(lo, lr, atol=1e-6) and torch.allclose(fo, fr, atol=1e-6) and fo.shape == (8, 128)


class _Main(nn.Module):
    """The harness's f and g as ReBias's f_net: (logits, pooled penultimate features)."""

    def __init__(self, f, g):
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x):
        pooled = self.g.features(self.f(x)).mean(dim=(2, 3))
        return self.g.fc(pooled), pooled


@pytest.fixture(params=[1.0, 3.0], ids=["official", "searched"])  # --hsic-weight: f_lambda_outer
def rebias(cmnist, request):
    # SGD here, not the recipe's Adam: Adam's first step is lr x sign(gradient), which amplifies rounding on the
    # ~0 gradients of a bias before a batch norm into whole steps; SGD keeps the comparison of weights exact.
    cfg = Config(method="rebias", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, precision="fp32",
                 cpu_kernels=False, channels_last=False, hsic_weight=request.param)
    torch.manual_seed(0)
    model = build_model("paper")
    method = METHODS.get("rebias")(cfg, model, contextlib.nullcontext)
    data = DeviceData(cmnist, torch.device("cpu"), train_size=256, test_size=100)
    return method, model, data


def test_one_rebias_step_is_the_official_pair_of_updates(rebias):
    method, model, data = rebias
    for x, y, bias in list(data.batches("train", 64, torch.Generator().manual_seed(2)))[:2]:
        main = copy.deepcopy(_Main(model.f, model.g))
        b = copy.deepcopy(method.biased)
        f_opt = torch.optim.SGD(main.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        g_opt = torch.optim.SGD(b.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        f_opt.load_state_dict(copy.deepcopy(method.opt_fg.state_dict()))  # load_state_dict keeps the tensors
        g_opt.load_state_dict(copy.deepcopy(method.opt_b.state_dict()))
        b_grads = official_step(main, b, f_opt, g_opt, x, y, f_lambda_outer=method.cfg.hsic_weight)
        method.step(x, y, bias, 0)
        for p, g in zip(method.biased.parameters(), b_grads, strict=True):
            assert_grad_close(p.grad, g, msg="b's gradient")
        ours_fg = list(model.f.parameters()) + list(model.g.parameters())
        for p, q in zip(ours_fg, main.parameters(), strict=True):
            assert_grad_close(p.grad, q.grad, msg="f and g's gradient")
            assert torch.allclose(p, q, atol=1e-6)
        for p, q in zip(method.biased.parameters(), b.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-6)
        for u, v in zip(model.f.buffers(), main.f.buffers(), strict=True):  # the batch norms saw the same forwards
            assert torch.allclose(u.float(), v.float(), atol=1e-6)


def test_rebias_trains_through_the_loop(tiny_config):
    import lnl

    result = lnl.train(tiny_config(method="rebias", optimizer="adam", lr=1e-3, epochs=1, train_size=512,
                                   test_size=200, val_eval_size=200, batch_size=64))
    assert result.status == "finished" and 0 <= result.final["test/acc"] <= 1
