"""The method interface: a registry of training methods by name and the base class they share.

A method owns the optimizers and defines one training step on a mini-batch. Every method returns the same
per-step statistics, so runs of different methods are compared on the same keys:

* ``train/ce``: cross-entropy of g's digit prediction;
* ``train/entropy``: mean entropy (nats) of h's per-pixel color prediction;
* ``bias/loss``: h's color cross-entropy (summed over the three heads).

Methods without an adversary still train h, on detached features, when ``bias_probe`` is on (the
default): h then measures how much color the features carry without influencing f or g. The methods
themselves: :mod:`lnl.methods` (the LNL paper's four) and :mod:`lnl.debiasing` (later methods).
"""
from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Callable, Iterable

import torch
import torch.nn.functional as F

from lnl.losses import bias_ce, neg_entropy
from lnl.models import LNLNet
from lnl.registry import Registry

if TYPE_CHECKING:  # annotations only: lnl.config imports the registry in validate()
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
    # What the method knows of the bias (the headline page says it per system): "labels", each pixel's color
    # label (h is trained against f); "input", that color is the bias (it is removed from the images); "none".
    bias_knowledge = "none"
    display_name = ""  # the method's name in tables and figures ("LNL"); empty: its registry key

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
