"""Loss terms of Learning Not to Learn (Kim et al., CVPR 2019, Sec. 3).

* :func:`grad_reverse`: the gradient reversal layer (Ganin & Lempitsky, 2015) used
  in the paper's Eq. 5: identity forward, ``-mu * grad`` backward.
* :func:`neg_entropy`: the paper's regularizer that makes the bias predictor's
  output maximally uncertain, ``mean(sum_k p_k log p_k)`` averaged over the three
  color heads, batch and pixels (the official code's ``loss_pred_ps_color``).
* :func:`bias_ce`: the bias predictor's loss, per-head cross-entropy over the
  pixels that are not background, summed over the three heads.
* :func:`uniform_ce`: BlindEye's confusion loss (Alvi et al., ECCV Workshops 2018,
  Eq. 2), the cross-entropy between the uniform distribution and h's prediction,
  averaged like :func:`neg_entropy`.
* :func:`generalized_ce`: LfF's loss of its biased network (Nam et al., NeurIPS 2020,
  Eq. 2; Zhang & Sabuncu, 2018), per sample.
* :func:`rbf_hsic`: ReBias's independence measure (Bahng et al., ICML 2020, Eq. 3), the
  unbiased HSIC estimator with RBF kernels (Song et al., 2012).

All take h's logits shaped (N, 3, 8, H, W) and compute in float32 with
log-softmax (the naive ``p * log(p)`` gives NaN when p underflows to 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import lnl.accel.kernels as kernels
from lnl.data.colored import IGNORE_INDEX


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, mu: float) -> torch.Tensor:  # type: ignore[override]
        ctx.mu = mu
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad.neg() * ctx.mu, None


def grad_reverse(x: torch.Tensor, mu: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the incoming gradient by ``-mu``."""
    return _GradReverse.apply(x, mu)


def neg_entropy(logits: torch.Tensor, fused: bool = False) -> torch.Tensor:
    """Mean of ``sum_k p_k log p_k`` over heads, batch and pixels (minimize: more uncertainty).

    ``fused``: on CPU, one C kernel pass (lnl.accel.kernels) instead of the eager ops; same value and gradient.
    """
    if fused and kernels.losses_ok(logits) and _kernels_verified():
        return kernels.neg_entropy(logits)
    logp = F.log_softmax(logits.float(), dim=2)
    return (logp.exp() * logp).sum(dim=2).mean()


def uniform_ce(logits: torch.Tensor) -> torch.Tensor:
    """Mean over heads, batch and pixels of ``-(1/K) sum_k log p_k``: the cross-entropy between the uniform
    distribution over the K bins and h's softmax (BlindEye's confusion loss). Its minimum, ``log K``, is
    reached exactly at the uniform prediction; unlike the negative entropy its gradient does not vanish
    when h is confident (``p_j - 1/K`` per logit instead of ``p_j (log p_j - sum p log p)``)."""
    return -F.log_softmax(logits.float(), dim=2).mean(dim=2).mean()


def bias_ce(logits: torch.Tensor, labels: torch.Tensor, fused: bool = False) -> torch.Tensor:
    """Sum over the 3 heads of each head's mean cross-entropy over non-background pixels.

    ``labels``: (N, 3, H, W) integer bins, ``IGNORE_INDEX`` on background pixels. ``fused``: on
    CPU with uint8 labels, one C kernel pass (lnl.accel.kernels) instead of the eager ops.
    """
    if fused and kernels.losses_ok(logits, labels) and _kernels_verified():
        return kernels.bias_ce(logits, labels)
    n, heads, bins, h, w = logits.shape
    target = labels.long().view(n * heads, h, w)
    per_pixel = F.cross_entropy(logits.float().view(n * heads, bins, h, w), target,
                                ignore_index=IGNORE_INDEX, reduction="none").view(n, heads, h * w)
    counted = (labels.view(n, heads, h * w) != IGNORE_INDEX).sum(dim=(0, 2)).clamp_min(1)
    return (per_pixel.sum(dim=(0, 2)) / counted).sum()


def _kernels_verified() -> bool:
    """The loss kernels checked once against this module's eager losses (passed in, not imported back)."""
    return kernels.verify_losses(neg_entropy, bias_ce)


def bias_correct(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(number of correctly predicted non-background pixel bins, number counted), summed over heads."""
    mask = labels != IGNORE_INDEX
    # max(...).indices, not argmax: argmax over a middle dimension is ~10x slower on CPU
    correct = (logits.max(dim=2).indices == labels.long()) & mask
    return correct.sum(), mask.sum()


def generalized_ce(logits: torch.Tensor, labels: torch.Tensor, q: float = 0.7) -> torch.Tensor:
    """Generalized cross-entropy per sample, as the official LfF code writes it (``module/loss.py``): the
    cross-entropy weighted by ``q * p_y^q`` with ``p_y`` detached, whose gradient is ``q`` times that of
    ``(1 - p_y^q) / q`` (Zhang & Sabuncu, NeurIPS 2018): it puts the weight on samples already easy, so
    the network it trains learns the easy cue (here, color) first and keeps it."""
    p_y = F.softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1).detach()
    return F.cross_entropy(logits.float(), labels, reduction="none") * (p_y ** q) * q


def _rbf_kernel(x: torch.Tensor, sigma: float) -> torch.Tensor:
    x = x.reshape(len(x), -1).float()
    xx = x @ x.t()
    sq = torch.diag(xx)
    return torch.exp(-(sq[:, None] + sq[None, :] - 2 * xx) / (2 * sigma ** 2))


def rbf_hsic(x: torch.Tensor, y: torch.Tensor, sigma_x: float = 1.0, sigma_y: float = 1.0) -> torch.Tensor:
    """The unbiased HSIC estimator (Song et al., JMLR 2012) between two batches of features with RBF
    kernels, as ReBias's official ``criterions/hsic.py`` computes it (``RbfHSIC``, ``algorithm='unbiased'``):
    ``[tr(K~ L~) + 1'K~1 1'L~1 / ((m-1)(m-2)) - 2/(m-2) 1'K~L~1] / (m(m-3))``, K~ and L~ the kernel
    matrices with their diagonals removed. Zero in expectation when x and y are independent; needs m > 3.

    Transcribed as written: the official ``K - torch.diag(K)`` subtracts ``K[j, j]`` from every entry of
    column j (``diag`` of a matrix is a vector, which broadcasts). The diagonal becomes zero, as the
    estimator wants, and since an RBF kernel's diagonal is 1, every other entry is also lowered by 1.
    That is what ReBias's results were computed with."""
    k, l_ = _rbf_kernel(x, sigma_x), _rbf_kernel(y, sigma_y)
    tk, tl = k - torch.diag(k), l_ - torch.diag(l_)
    m = len(x)
    hsic = (torch.trace(tk @ tl) + tk.sum() * tl.sum() / (m - 1) / (m - 2)
            - 2 * tk.sum(0).dot(tl.sum(0)) / (m - 2))
    return hsic / (m * (m - 3))
