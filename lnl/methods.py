"""Training methods, registered by name: ``baseline``, ``lnl``, ``gray``, ``blind_eye``, ``lff``.

A method owns the optimizers and defines one training step on a mini-batch.
Every method returns the same per-step statistics, so runs of different
methods are compared on the same keys:

* ``train/ce``: cross-entropy of g's digit prediction;
* ``train/entropy``: mean entropy (nats) of h's per-pixel color prediction;
* ``bias/loss``: h's color cross-entropy (summed over the three heads).

Methods without an adversary still train h, on detached features, when
``bias_probe`` is on (the default): h then measures how much color the
features carry without influencing f or g.
"""
from __future__ import annotations

import abc
import math
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Callable, Iterable

import torch
import torch.nn.functional as F

from lnl.losses import bias_ce, generalized_ce, grad_reverse, neg_entropy, uniform_ce
from lnl.models import LNLNet
from lnl.registry import Registry

if TYPE_CHECKING:  # annotations only: lnl.config imports this module's registry in validate()
    from lnl.config import Config

METHODS: Registry = Registry("method")
Stats = dict[str, torch.Tensor]


def make_optimizer(cfg: Config, params: Iterable[torch.nn.Parameter], lr: float,
                   graphable: bool = False) -> torch.optim.Optimizer:
    """SGD or Adam as ``cfg`` says; ``graphable``: fused SGD (same update rule, capturable by
    lnl.accel.cuda_graphs)."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               fused=True if graphable else None)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


class Method(abc.ABC):
    """Base class: optimizers for f+g and for h, and the step interface."""

    input_kind = "color"  # which images the method trains and is tested on: "color" or "gray"
    unlearns = False  # whether f is trained against the bias head (after warmup_epochs)
    needs_index = False  # whether step() takes each image's position in the training split (per-sample state)
    graphable = True  # whether lnl.accel.cuda_graphs may capture step() as one CUDA graph

    def __init__(self, cfg: Config, model: LNLNet, autocast: Callable[[], AbstractContextManager],
                 compile: bool = False) -> None:
        self.cfg, self.model, self.autocast = cfg, model, autocast
        # Fused SGD: capturable in a CUDA graph, with a learning rate read from device memory.
        graphable = cfg.cuda_graphs and cfg.optimizer == "sgd" and next(model.parameters()).is_cuda
        self.opt_fg = make_optimizer(cfg, list(model.f.parameters()) + list(model.g.parameters()), cfg.lr,
                                     graphable)
        self.opt_h = make_optimizer(cfg, model.h.parameters(), cfg.bias_lr or cfg.lr, graphable)
        # lnl.accel.kernels' one-pass losses on CPU (same values and gradients; ctypes calls don't compile)
        self.fused = cfg.cpu_kernels and not compile
        wrap = torch.compile if compile else (lambda m: m)
        self.f, self.g, self.h = wrap(model.f), wrap(model.g), wrap(model.h)

    def phase(self, epoch: int) -> str:
        """Name of the step variant used in ``epoch`` (a CUDA graph is captured per phase)."""
        return "train"

    @property
    def trains_bias_head(self) -> bool:
        """Whether h is trained (so that ``bias/acc`` means something): the probe, if it is on."""
        return self.cfg.bias_probe

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"fg": self.opt_fg, "h": self.opt_h}

    @abc.abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> Stats:
        """One optimization step on a mini-batch; returns detached scalar statistics. A method with
        ``needs_index`` also gets the images' positions in the training split, as a fifth argument."""

    def prepare(self, train: object) -> None:
        """Called once with the training split (``.y``, ``.bias`` on the device) before any step or
        resume: where a method sizes its per-sample state. Most methods keep none."""

    def state_dict(self) -> dict[str, object]:
        """What the method holds beyond the network and the optimizers (an extra network, per-sample
        statistics), saved in each epoch checkpoint so that a resumed run continues exactly."""
        return {}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict` (a fresh start passes ``{}``)."""

    # -- shared pieces ------------------------------------------------------------------
    def cross_entropy_step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor) -> Stats:
        """Plain cross-entropy on f and g (+ the detached bias probe)."""
        with self.autocast():
            feat = self.f(x)
            ce = F.cross_entropy(self.g(feat).float(), y)
        self.opt_fg.zero_grad()
        ce.backward()
        self.opt_fg.step()
        stats = {"train/ce": ce.detach()}
        if self.cfg.bias_probe:
            stats.update(self.probe_step(feat.detach(), bias))
        return stats

    def probe_step(self, feat: torch.Tensor, bias: torch.Tensor) -> Stats:
        """Train h on detached features: measures color information, changes nothing else."""
        with self.autocast():
            logits = self.h(feat)
            loss = bias_ce(logits, bias, fused=self.fused)
        self.opt_h.zero_grad()
        loss.backward()
        self.opt_h.step()
        return {"bias/loss": loss.detach(), "train/entropy": -neg_entropy(logits.detach())}


@METHODS.register("baseline")
class Baseline(Method):
    """Cross-entropy on the biased training set (the paper's Baseline)."""

    def step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> Stats:
        return self.cross_entropy_step(x, y, bias)


@METHODS.register("gray")
class Gray(Baseline):
    """The paper's Gray reference: cross-entropy on gray versions of the images, tested on gray."""

    input_kind = "gray"


@METHODS.register("lnl")
class LearningNotToLearn(Method):
    """Learning Not to Learn (Kim et al., CVPR 2019, Eq. 4-5), as in the official trainer.

    ``two_pass`` (default), per mini-batch:

    (A) f and g minimize ``CE(g(f(x)), y) + lambda * neg_entropy(h(f(x)))``; h is
        held fixed (the official code computes h's gradients here and discards them).
    (B) h minimizes the bias cross-entropy of ``h(GRL(f(x)))``, recomputed with the
        updated f; the reversal layer sends ``-mu * grad`` into f, which the f+g
        optimizer applies.

    The official code zeroes (not frees) gradients between the passes, so the f+g
    optimizer's step in (B) also moves g by its momentum and weight decay with a
    zero gradient; ``zero_grad(set_to_none=False)`` keeps that behaviour.

    ``one_pass``: one forward of f serves both updates, summed into one step of
    each optimizer. Cheaper, not the official algorithm.

    During the first ``warmup_epochs`` the step is plain cross-entropy (the
    authors start LNL from a pretrained baseline).
    """

    unlearns = True

    def phase(self, epoch: int) -> str:
        if epoch < self.cfg.warmup_epochs:
            return "warmup"
        # A ramped reversal scale is a constant of the captured step: one CUDA graph per value.
        return "unlearn" if self.cfg.mu_schedule == "constant" else f"unlearn-mu{self.mu_at(epoch):.6g}"

    def mu_at(self, epoch: int) -> float:
        """The gradient reversal scale in ``epoch`` (0-based): ``mu``, or with ``mu_schedule='dann'``
        DANN's ramp ``mu * (2 / (1 + exp(-10 p)) - 1)`` (Ganin & Lempitsky, JMLR 2016, Sec. 5.2.2), p the
        progress through the unlearning epochs at this epoch's middle (0 -> 1)."""
        cfg = self.cfg
        if cfg.mu_schedule == "constant":
            return cfg.mu
        p = (epoch - cfg.warmup_epochs + 0.5) / max(cfg.epochs - cfg.warmup_epochs, 1)
        return cfg.mu * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)

    @property
    def trains_bias_head(self) -> bool:
        return True  # h is LNL's adversary

    def step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> Stats:
        if epoch < self.cfg.warmup_epochs:
            return self.cross_entropy_step(x, y, bias)
        if self.cfg.lnl_step == "one_pass":
            return self._one_pass(x, y, bias, self.mu_at(epoch))
        return self._two_pass(x, y, bias, self.mu_at(epoch))

    def _two_pass(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, mu: float) -> Stats:
        cfg, h = self.cfg, self.model.h
        # (A) f, g: classification + lambda * negative entropy of h's prediction.
        h.requires_grad_(False)  # h is not updated in (A): skip its weight gradients
        try:
            with self.autocast():
                feat = self.f(x)
                ce = F.cross_entropy(self.g(feat).float(), y)
                ne = neg_entropy(self.h(feat), fused=self.fused)
            self.opt_fg.zero_grad(set_to_none=False)
            (ce + cfg.lambda_ * ne).backward()
            self.opt_fg.step()
        finally:
            h.requires_grad_(True)
        # (B) h learns the bias; f unlearns it through the gradient reversal layer.
        with self.autocast():
            logits = self.h(grad_reverse(self.f(x), mu))
            bl = bias_ce(logits, bias, fused=self.fused)
        self.opt_fg.zero_grad(set_to_none=False)
        self.opt_h.zero_grad()
        bl.backward()
        self.opt_fg.step()
        self.opt_h.step()
        return {"train/ce": ce.detach(), "train/entropy": -ne.detach(), "bias/loss": bl.detach()}

    def _one_pass(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, mu: float) -> Stats:
        cfg, h = self.cfg, self.model.h
        with self.autocast():
            feat = self.f(x)
            ce = F.cross_entropy(self.g(feat).float(), y)
            h.requires_grad_(False)  # the entropy term must not train h
            try:
                ne = neg_entropy(self.h(feat), fused=self.fused)
            finally:
                h.requires_grad_(True)
            bl = bias_ce(self.h(grad_reverse(feat, mu)), bias, fused=self.fused)
        self.opt_fg.zero_grad()
        self.opt_h.zero_grad()
        (ce + cfg.lambda_ * ne + bl).backward()
        self.opt_fg.step()
        self.opt_h.step()
        return {"train/ce": ce.detach(), "train/entropy": -ne.detach(), "bias/loss": bl.detach()}


@METHODS.register("blind_eye")
class BlindEye(Method):
    """Turning a Blind Eye (Alvi, Jamaludin, Zisserman, Nellåker, ECCV Workshops 2018, Sec. 3), the
    LNL paper's BlindEye row, on LNL's network: the same bias head h (three heads, 8 color bins per
    pixel, :mod:`lnl.models`), the same bias labels, so only the loss and the update scheme differ.

    Per mini-batch:

    (A) f and g minimize ``CE(g(f(x)), y) + alpha * uniform_ce(h(f(x)))`` (Alvi et al., Eq. 2-3: the
        confusion loss, cross-entropy between h's softmax and the uniform distribution); h is fixed.
    (B) h minimizes the bias cross-entropy on the features of the updated f, with f held fixed (no
        gradient reaches f: Alvi et al. train the secondary classifier on a fixed representation,
        where LNL sends ``-mu x`` h's gradient into f through a reversal layer).

    Our reading where the LNL paper gives no detail of its BlindEye run: one alternation per
    mini-batch, in LNL's order (A then B); the confusion loss averaged over heads, batch and all
    pixels, like LNL's entropy term; ``alpha`` its own field; the start (from scratch or from a
    pretrained baseline, ``--init-from``) and learning rates from the recipe, as for LNL.
    ``warmup_epochs`` of plain cross-entropy work as for LNL.
    """

    unlearns = True

    def phase(self, epoch: int) -> str:
        return "warmup" if epoch < self.cfg.warmup_epochs else "confuse"

    @property
    def trains_bias_head(self) -> bool:
        return True  # h is BlindEye's secondary classifier

    def step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> Stats:
        if epoch < self.cfg.warmup_epochs:
            return self.cross_entropy_step(x, y, bias)
        h = self.model.h
        # (A) f, g: classification + alpha * confusion of the (fixed) bias classifier.
        h.requires_grad_(False)
        try:
            with self.autocast():
                feat = self.f(x)
                ce = F.cross_entropy(self.g(feat).float(), y)
                confusion = uniform_ce(self.h(feat))
            self.opt_fg.zero_grad()
            (ce + self.cfg.alpha * confusion).backward()
            self.opt_fg.step()
        finally:
            h.requires_grad_(True)
        # (B) h: the bias cross-entropy on the updated, fixed representation.
        with torch.no_grad(), self.autocast():
            feat = self.f(x)
        return {"train/ce": ce.detach(), **self.probe_step(feat, bias)}


class SampleLossEMA:
    """LfF's moving average of each training sample's loss (official ``util.EMA``): a sample's first
    update takes its loss as it is, later ones ``alpha * old + (1 - alpha) * new``; :meth:`normalized`
    divides by the largest average of the sample's class (official ``max_loss``, over every sample of the
    class, seen or not)."""

    def __init__(self, labels: torch.Tensor, alpha: float) -> None:
        self.labels, self.alpha = labels, alpha
        self.value = torch.zeros(len(labels), device=labels.device)
        self.updated = torch.zeros(len(labels), device=labels.device)
        self.classes = int(labels.max().item()) + 1 if len(labels) else 0

    def update(self, loss: torch.Tensor, index: torch.Tensor) -> None:
        self.value[index] = self.alpha * self.value[index] + (1 - self.alpha * self.updated[index]) * loss
        self.updated[index] = 1

    def normalized(self, index: torch.Tensor) -> torch.Tensor:
        class_max = torch.zeros(self.classes, device=self.value.device).scatter_reduce(
            0, self.labels, self.value, "amax", include_self=False)
        return self.value[index] / class_max[self.labels[index]]


@METHODS.register("lff")
class LearningFromFailure(Method):
    """Learning from Failure (Nam, Cha, Ahn, Lee, Shin, NeurIPS 2020, Algorithm 1), as the official code
    (``alinlab/LfF``: ``train.py``, ``module/loss.py``, ``util.py``) trains it, with no bias labels.

    A biased network b (a second f and g of the same architecture, its own optimizer) is trained with the
    generalized cross-entropy (:func:`lnl.losses.generalized_ce`, ``q``); the debiased network, this run's
    f and g, minimizes the cross-entropy of each sample weighted by its relative difficulty
    ``W = L_b / (L_b + L_d)``, where L_b and L_d are moving averages (``alpha``) of each sample's
    cross-entropy under b and under f+g, each divided by the largest average of the sample's class. Both
    updates come from one backward pass of the summed losses, as in the official step.

    Official defaults kept: ``q = 0.7``, ``alpha = 0.7`` (the EMA), Adam with lr 1e-3, weight decay 0,
    batch 256 (our recipe section sets the optimizer values; the two constants below are fixed).
    Deviations: the networks are the paper's f and g (the official Colored MNIST model is an MLP); the
    run's f and g may start from the shared pretrained Baseline (``--init-from``) while b starts fresh;
    h trains on f's detached features as the bias probe (``bias/acc``), as for every method here; the
    official code's NaN checks (which raise) are left to the loop's divergence check.
    """

    needs_index = True
    graphable = False  # per-sample state updated by indexing: not captured as a CUDA graph
    q, ema_alpha = 0.7, 0.7  # official GeneralizedCELoss(q=0.7), EMA(alpha=0.7)

    def __init__(self, cfg: Config, model: LNLNet, autocast: Callable[[], AbstractContextManager],
                 compile: bool = False) -> None:
        super().__init__(cfg, model, autocast, compile)
        from lnl.models import build_model

        twin = build_model(cfg.arch, cfg.width, cfg.g_depth, cfg.head_width, cfg.head_bn_init)
        self.biased = torch.nn.Sequential(twin.f, twin.g).to(next(model.parameters()).device)
        if cfg.channels_last:
            for part in (twin.f.conv1, twin.f.conv2, twin.g):
                part.to(memory_format=torch.channels_last)
        twin.use_fused_kernels(model.f.fused_kernels)
        self.opt_b = make_optimizer(cfg, self.biased.parameters(), cfg.lr)
        self.ema_b = self.ema_d = None

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"fg": self.opt_fg, "h": self.opt_h, "b": self.opt_b}

    def prepare(self, train: object) -> None:
        labels = train.y  # type: ignore[attr-defined]
        self.ema_b, self.ema_d = SampleLossEMA(labels, self.ema_alpha), SampleLossEMA(labels, self.ema_alpha)

    def state_dict(self) -> dict[str, object]:
        return {"biased": self.biased.state_dict(), "ema_b": [self.ema_b.value, self.ema_b.updated],
                "ema_d": [self.ema_d.value, self.ema_d.updated]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        if state:
            self.biased.load_state_dict(state["biased"])  # type: ignore[arg-type]
            for ema, (value, updated) in ((self.ema_b, state["ema_b"]), (self.ema_d, state["ema_d"])):
                ema.value.copy_(value)
                ema.updated.copy_(updated)

    def step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int,
             index: torch.Tensor | None = None) -> Stats:
        with self.autocast():
            feat = self.f(x)
            logit_d = self.g(feat).float()
            logit_b = self.biased(x).float()
        ce_d = F.cross_entropy(logit_d, y, reduction="none")
        ce_b = F.cross_entropy(logit_b, y, reduction="none")
        self.ema_b.update(ce_b.detach(), index)
        self.ema_d.update(ce_d.detach(), index)
        loss_b, loss_d = self.ema_b.normalized(index), self.ema_d.normalized(index)
        weight = loss_b / (loss_b + loss_d + 1e-8)
        loss = generalized_ce(logit_b, y, self.q).mean() + (ce_d * weight).mean()
        self.opt_fg.zero_grad()
        self.opt_b.zero_grad()
        loss.backward()
        self.opt_fg.step()
        self.opt_b.step()
        stats = {"train/ce": ce_d.mean().detach()}
        if self.cfg.bias_probe:
            stats.update(self.probe_step(feat.detach(), bias))
        return stats
