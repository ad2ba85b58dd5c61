"""Networks: feature extractor f, label classifier g, bias predictor h.

The paper's Colored MNIST network (Kim et al., CVPR 2019, Sec. 4.1; official
``models.py``): f is two convolutions giving a 32x14x14 feature map, g classifies
digits from it, and h has three heads (R, G, B) that predict each pixel's color
bin (8 bins) from the same map.

Implementation choices that keep the maths of the official network but run
faster (each checked against the reference pipeline in ``tests/test_fast_path``):

* ReLU and max-pool are swapped in f: ``relu(maxpool(x)) == maxpool(relu(x))``
  because ReLU is monotonic, and the pooled tensor is 4x smaller.
* On CPU (``fused_kernels``, set by the engine from ``Config.cpu_kernels`` with
  :meth:`LNLNet.use_fused_kernels`): max-pool + ReLU in f runs as a fused C kernel
  (:mod:`lnl.accel.kernels`; a batch norm + ReLU kernel for h was dropped: it bought 2-3%
  of an LNL step), and in training f's input batch norm is folded into its first convolution
  (:meth:`FeatureExtractor._bn0_conv1_folded`). Same values and gradients
  (``tests/test_kernels.py``); GPU runs are unchanged.
* The three heads are one module: their first 3x3 convolutions (each 32->32)
  are one 32->96 convolution, their batch norms one 96-channel batch norm
  (statistics are per channel either way), and their 32->8 output convolutions
  one grouped convolution (groups=3).
* h returns logits shaped (N, 3, 8, 14, 14) in contiguous memory, so the
  softmax over the 8 bins runs over a fast axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lnl.accel.kernels import max_pool_relu, uses_batch_statistics
from lnl.registry import Registry

ARCHS: Registry = Registry("architecture")
N_BINS = 8
N_HEADS = 3


def init_official(module: nn.Module) -> None:
    """The authors' init for f and g: conv weights ~ N(0, sqrt(2 / (k*k*out))), BN 1/0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class FeatureExtractor(nn.Module):
    """f: BN(3) -> conv5x5 -> maxpool3x3/2 -> ReLU -> conv3x3 -> ReLU; (N, C, 14, 14)."""

    def __init__(self, channels: int = 32, batch_norm: bool = False) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(3)
        self.conv1 = nn.Conv2d(3, channels, 5, padding=2)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels) if batch_norm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(channels) if batch_norm else nn.Identity()
        self.out_channels = channels
        self.fused_kernels = False  # see LNLNet.use_fused_kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = self.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        if self.fused_kernels and x.device.type == "cpu" and uses_batch_statistics(self.bn0):
            x = self._bn0_conv1_folded(x, channels_last)
        else:
            # The 3-channel input batch norm is ~10x slower in channels-last on CPU, so it
            # runs on the NCHW input and the result is converted for the convolutions.
            x = self.bn0(x)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.conv1(x)
        x = max_pool_relu(self.bn1(x), fused=self.fused_kernels)
        if isinstance(self.bn2, nn.BatchNorm2d):
            return F.relu(self.bn2(self.conv2(x)))
        return F.relu(self.conv2(x))

    def _bn0_conv1_folded(self, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
        """``conv1(bn0(x))`` in training mode, with bn0's affine part folded into conv1's weights.

        The input carries no gradient and bn0's batch statistics depend on the input alone,
        so ``bn0(x) = gamma * xhat + beta`` with a constant ``xhat``. Zero-padded by the
        convolution, that is ``conv(gamma * xhat + beta * inside)`` where ``inside`` is 1 on
        the image: one convolution of ``[xhat, inside]`` (4 channels) with the weights
        ``[W * gamma, sum_c W_c * beta_c]``. Its backward then computes conv1's weight
        gradient only (not a gradient for bn0's output, which the eager chain needs for
        gamma and beta), about 0.8 ms of a 2-core CPU step per pass. Running statistics are
        updated as :class:`torch.nn.BatchNorm2d` updates them.
        """
        bn = self.bn0
        n, c, h, w = x.shape
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            # xhat, and the running statistics updated exactly as bn0(x) would
            xhat = F.batch_norm(x, bn.running_mean, bn.running_var, None, None, True, bn.momentum, bn.eps)
            inputs = torch.empty((n, c + 1, h, w), dtype=x.dtype, device=x.device,
                                 memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            inputs[:, :c] = xhat
            inputs[:, c] = 1.0
        weight = self.conv1.weight
        folded = torch.cat([weight * bn.weight[:, None, None], (weight * bn.bias[:, None, None]).sum(1, keepdim=True)],
                           dim=1)
        if channels_last:
            folded = folded.contiguous(memory_format=torch.channels_last)
        return F.conv2d(inputs, folded, self.conv1.bias, padding=self.conv1.padding)


class LabelClassifier(nn.Module):
    """g: conv3x3/2 -> ReLU -> (depth-1) x [conv3x3 -> ReLU] -> global avg pool -> linear."""

    def __init__(self, in_channels: int = 32, channels: int = 64, depth: int = 2, n_classes: int = 10,
                 batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Conv2d(in_channels if i == 0 else channels, channels, 3,
                                    stride=2 if i == 0 else 1, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(feat).mean(dim=(2, 3)))


class BiasPredictor(nn.Module):
    """h: three color heads, each conv3x3 -> BN -> ReLU -> conv3x3 to 8 bins, as one module.

    Output: logits (N, 3, 8, H, W): head (R, G, B), bin, pixel.
    """

    def __init__(self, in_channels: int = 32, hidden: int = 32, n_bins: int = N_BINS) -> None:
        super().__init__()
        self.hidden, self.n_bins = hidden, n_bins
        self.conv1 = nn.Conv2d(in_channels, N_HEADS * hidden, 3, padding=1)
        self.bn = nn.BatchNorm2d(N_HEADS * hidden)
        self.conv2 = nn.Conv2d(N_HEADS * hidden, N_HEADS * n_bins, 3, padding=1, groups=N_HEADS)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.bn(self.conv1(feat))))
        n, _, h, w = out.shape
        return out.contiguous().view(n, N_HEADS, self.n_bins, h, w)


class LNLNet(nn.Module):
    """The three networks together; methods decide how they are trained."""

    def __init__(self, f: FeatureExtractor, g: LabelClassifier, h: BiasPredictor) -> None:
        super().__init__()
        self.f, self.g, self.h = f, g, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(self.f(x))

    def use_fused_kernels(self, on: bool) -> None:
        """Run f's max-pool + ReLU as a fused CPU kernel (lnl.accel.kernels) and fold its input batch norm."""
        self.f.fused_kernels = on


class ColorNet(nn.Module):
    """ReBias's biased network for (Biased) MNIST (official ``models/mnist_models.py``, ``SimpleConvNet`` with
    ``kernel_size=1``): four 1x1 convolutions (16, 32, 64, 128 channels) with batch norm and ReLU, global
    average pooling and a linear layer. Its receptive field is one pixel, so it can read color and
    nothing of shape. Returns the logits and the pooled 128-d features (ReBias's ``feature_pos='post'``)."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((3, 16), (16, 32), (32, 64), (64, 128)):
            layers += [nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.extracter = nn.Sequential(*layers)
        self.fc = nn.Linear(128, n_classes)
        for m in self.modules():  # the official initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.extracter(x).mean(dim=(2, 3))
        return self.fc(feats), feats


@dataclass(frozen=True)
class ArchSpec:
    width: float = 1.0
    g_depth: int = 2
    head_width: int = 32
    head_bn_init: str = "ones"


def _paper(spec: ArchSpec, batch_norm: bool) -> LNLNet:
    c1 = max(1, round(32 * spec.width))
    c2 = max(1, round(64 * spec.width))
    f = FeatureExtractor(c1, batch_norm=batch_norm)
    g = LabelClassifier(c1, c2, depth=spec.g_depth, batch_norm=batch_norm)
    init_official(f)
    init_official(g)  # the authors initialize f and g; h keeps PyTorch's default init
    h = BiasPredictor(c1, spec.head_width)
    if spec.head_bn_init == "uniform":
        # PyTorch <= 0.4 drew a batch norm's gamma from U(0, 1) (ones since 1.0, pytorch/pytorch#12325);
        # the authors' h, left to the default init, started that way.
        nn.init.uniform_(h.bn.weight, 0.0, 1.0)
    elif spec.head_bn_init != "ones":
        raise ValueError(f"unknown head_bn_init {spec.head_bn_init!r}")
    return LNLNet(f, g, h)


@ARCHS.register("paper")
def paper(spec: ArchSpec) -> LNLNet:
    """The official Colored MNIST network (no batch norm after convolutions)."""
    return _paper(spec, batch_norm=False)


@ARCHS.register("paper_bn")
def paper_bn(spec: ArchSpec) -> LNLNet:
    """The paper's network with batch norm after every convolution of f and g."""
    return _paper(spec, batch_norm=True)


def build_model(arch: str, width: float = 1.0, g_depth: int = 2, head_width: int = 32,
                head_bn_init: str = "ones") -> LNLNet:
    return ARCHS.get(arch)(ArchSpec(width, g_depth, head_width, head_bn_init))
