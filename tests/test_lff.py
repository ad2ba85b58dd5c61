"""LfF (Nam et al., NeurIPS 2020) on this harness checked against a transcription of the official code
(alinlab/LfF: module/loss.py GeneralizedCELoss, util.py EMA, train.py's step) on fixed tensors."""
from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_grad_close
from lnl.config import Config
from lnl.data.tensors import DeviceData
from lnl.losses import generalized_ce
from lnl.methods import METHODS
from lnl.models import build_model


# --- the official code, transcribed (NaN checks and logging left out) --------------------------------------
class OfficialGCE(torch.nn.Module):
    def __init__(self, q=0.7):
        super().__init__()
        self.q = q

    def forward(self, logits, targets):
        p = F.softmax(logits, dim=1)
        Yg = torch.gather(p, 1, torch.unsqueeze(targets, 1))
        loss_weight = (Yg.squeeze().detach() ** self.q) * self.q
        return F.cross_entropy(logits, targets, reduction="none") * loss_weight


class OfficialEMA:
    def __init__(self, label, alpha=0.9):
        self.label, self.alpha = label, alpha
        self.parameter = torch.zeros(label.size(0))
        self.updated = torch.zeros(label.size(0))

    def update(self, data, index):
        self.parameter[index] = self.alpha * self.parameter[index] + (1 - self.alpha * self.updated[index]) * data
        self.updated[index] = 1

    def max_loss(self, label):
        label_index = np.where(self.label == label)[0]
        return self.parameter[label_index].max()


def official_loss(logit_b, logit_d, label, index, ema_b, ema_d, num_classes=10, q=0.7):
    criterion, bias_criterion = torch.nn.CrossEntropyLoss(reduction="none"), OfficialGCE(q)
    loss_b = criterion(logit_b, label).cpu().detach()
    loss_d = criterion(logit_d, label).cpu().detach()
    ema_b.update(loss_b, index)
    ema_d.update(loss_d, index)
    loss_b = ema_b.parameter[index].clone().detach()
    loss_d = ema_d.parameter[index].clone().detach()
    for c in range(num_classes):
        class_index = np.where(label.cpu() == c)[0]
        loss_b[class_index] /= ema_b.max_loss(c)
        loss_d[class_index] /= ema_d.max_loss(c)
    loss_weight = loss_b / (loss_b + loss_d + 1e-8)
    return bias_criterion(logit_b, label).mean() + (criterion(logit_d, label) * loss_weight).mean(), loss_weight
# -----------------------------------------------------------------------------------------------------------


def test_generalized_ce_is_the_official_loss_and_has_the_gce_gradient():
    torch.manual_seed(0)
    logits = (torch.randn(16, 10) * 3).requires_grad_(True)
    y = torch.randint(0, 10, (16,))
    ours = generalized_ce(logits, y, 0.7)
    assert torch.allclose(ours, OfficialGCE(0.7)(logits, y), atol=1e-6)
    ours.sum().backward()
    ref = logits.detach().clone().requires_grad_(True)
    p_y = F.softmax(ref, dim=1).gather(1, y[:, None]).squeeze(1)
    ((1 - p_y ** 0.7) / 0.7).sum().backward()  # Zhang & Sabuncu's L_q
    assert torch.allclose(logits.grad, 0.7 * ref.grad, atol=1e-6)  # the official form: q times its gradient


# the official defaults (q, EMA alpha) and a searched pair: --gce-q and --loss-ema reach the step
@pytest.fixture(params=[(0.7, 0.7), (0.3, 0.9)], ids=["official", "searched"])
def lff(cmnist, request):
    q, ema = request.param
    cfg = Config(method="lff", optimizer="adam", lr=1e-3, weight_decay=0.0, precision="fp32", cpu_kernels=False,
                 channels_last=False, gce_q=q, loss_ema=ema)
    torch.manual_seed(0)
    model = build_model("paper")
    method = METHODS.get("lff")(cfg, model, contextlib.nullcontext)
    data = DeviceData(cmnist, torch.device("cpu"), train_size=512, test_size=100)
    method.prepare(data["train"])
    return method, model, data


def test_one_lff_step_has_the_official_losses_gradients_and_averages(lff):
    method, model, data = lff
    batches = list(data.batches("train", 64, torch.Generator().manual_seed(3), with_index=True))
    gce_q, ema = method.cfg.gce_q, method.cfg.loss_ema
    ema_b, ema_d = OfficialEMA(data["train"].y.clone(), ema), OfficialEMA(data["train"].y.clone(), ema)
    for x, y, bias, index in batches[:2]:  # the second step reads averages the first one wrote
        d, b = copy.deepcopy(torch.nn.Sequential(model.f, model.g)), copy.deepcopy(method.biased)
        loss, weight = official_loss(b(x), d(x), y, index, ema_b, ema_d, q=gce_q)
        loss.backward()
        method.step(x, y, bias, 0, index)
        for ours, ref in ((list(model.f.parameters()) + list(model.g.parameters()), d.parameters()),
                          (method.biased.parameters(), b.parameters())):
            for p, q in zip(ours, ref, strict=True):
                assert_grad_close(p.grad, q.grad, msg="LfF gradient")
        assert torch.allclose(method.ema_b.value.cpu(), ema_b.parameter, atol=1e-6)
        assert torch.allclose(method.ema_d.value.cpu(), ema_d.parameter, atol=1e-6)
        ours_weight = method.ema_b.normalized(index) / (method.ema_b.normalized(index)
                                                        + method.ema_d.normalized(index) + 1e-8)
        assert torch.allclose(ours_weight, weight, atol=1e-6)
    assert (method.ema_b.updated.sum() == 128) and 0 < weight.min() and weight.max() < 1


def test_lff_state_round_trips_through_a_checkpoint(lff):
    method, model, data = lff
    x, y, bias, index = next(data.batches("train", 64, torch.Generator().manual_seed(1), with_index=True))
    method.step(x, y, bias, 0, index)
    state = copy.deepcopy(method.state_dict())
    fresh = METHODS.get("lff")(method.cfg, copy.deepcopy(model), contextlib.nullcontext)
    fresh.prepare(data["train"])
    fresh.load_state_dict(state)
    assert torch.equal(fresh.ema_d.value, method.ema_d.value) and torch.equal(fresh.ema_b.updated,
                                                                             method.ema_b.updated)
    for p, q in zip(fresh.biased.parameters(), method.biased.parameters(), strict=True):
        assert torch.equal(p, q)
    assert set(method.optimizers) == {"fg", "h", "b"}


def test_lff_trains_through_the_loop_and_resumes_to_the_same_numbers(tiny_config):
    """Through train(): index batches, the third optimizer's schedule, the method's state in the checkpoint
    (read back weights-only); a run stopped after epoch 1 and resumed ends where an uninterrupted one does."""
    import lnl

    def stop(epoch, metrics):
        raise KeyboardInterrupt

    make = lambda run_id, **kw: tiny_config(method="lff", epochs=2, run_id=run_id, train_size=600,  # noqa: E731
                                            test_size=200, val_eval_size=200, **kw)
    whole = lnl.train(make("whole"))
    with pytest.raises(KeyboardInterrupt):
        lnl.train(make("cut"), on_epoch=stop)
    resumed = lnl.train(make("cut", resume=True))
    assert whole.status == resumed.status == "finished"
    assert whole.final["test/acc"] == resumed.final["test/acc"]
    assert whole.final["val_unbiased/acc"] == resumed.final["val_unbiased/acc"]
