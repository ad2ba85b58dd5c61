"""The LNL paper's four systems as training methods, registered by name: ``baseline``, ``gray``, ``lnl``,
``blind_eye`` (the interface: :mod:`lnl.method_base`; later methods, ``lff`` and ``rebias``:
:mod:`lnl.debiasing`, registered when this module loads).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lnl.debiasing import LearningFromFailure, ReBias  # importing them registers them
from lnl.losses import bias_ce, grad_reverse, neg_entropy, uniform_ce
from lnl.method_base import METHODS, Method, Stats, make_optimizer

__all__ = ["METHODS", "Method", "Stats", "make_optimizer", "LearningFromFailure", "ReBias"]


@METHODS.register("baseline")
class Baseline(Method):
    """Cross-entropy on the biased training set (the paper's Baseline)."""

    display_name = "Baseline"

    def step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> Stats:
        return self.cross_entropy_step(x, y, bias)


@METHODS.register("gray")
class Gray(Baseline):
    """The paper's Gray reference: cross-entropy on gray versions of the images, tested on gray."""

    display_name = "Gray"
    input_kind = "gray"
    bias_knowledge = "input"


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

    display_name = "LNL"
    bias_knowledge = "labels"
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

    display_name = "BlindEye"
    bias_knowledge = "labels"
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


