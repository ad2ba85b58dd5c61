"""A reference pipeline in the manner of the authors' code (feidfoe/learning-not-to-learn).

Used by scripts/benchmark.py as the speed baseline and by tests/test_fast_path.py
as the numerical reference for our fast path. It reproduces the official
structure, not its bugs:

* a per-sample ``Dataset``: PIL image -> ``ToTensor`` + ``Normalize``, and the bias
  labels by a per-sample 14x14 nearest resize, ``// 32``, 255 where the channel is 0;
* ``DataLoader`` with default settings (batch 128, shuffled, no workers);
* the official ``convnet`` (f and g in one module) and three separate ``Predictor``
  heads, each with its own SGD optimizer; fp32, NCHW;
* the official two-pass LNL step (gradients zeroed, not freed, between passes).

The entropy term uses log-softmax where the official code takes ``log(softmax)``,
which gives NaN once a probability underflows.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lnl.data.tensors import NORM_MEAN, NORM_STD
from lnl.losses import grad_reverse


class OfficialConvNet(nn.Module):
    """The authors' ``convnet``: returns (14x14 feature map, class logits)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(3)
        self.conv1 = nn.Conv2d(3, 32, kernel_size=5, stride=1, padding=2)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 32, kernel_size=3, stride=1, padding=1)
        self.conv3 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1)
        self.avgpool = nn.AvgPool2d(7, stride=1)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():  # the authors' _weights_init
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.conv1(self.bn0(x))))
        feat = self.relu(self.conv2(x))
        x = self.relu(self.conv4(self.relu(self.conv3(feat))))
        return feat, self.fc(self.avgpool(x).flatten(1))


class OfficialPredictor(nn.Module):
    """One color head: conv3x3 -> BN -> ReLU -> conv3x3 to 8 bins; returns (logits, probabilities)."""

    def __init__(self, input_ch: int = 32, num_classes: int = 8) -> None:
        super().__init__()
        self.pred_conv1 = nn.Conv2d(input_ch, input_ch, kernel_size=3, stride=1, padding=1)
        self.pred_bn1 = nn.BatchNorm2d(input_ch)
        self.relu = nn.ReLU()
        self.pred_conv2 = nn.Conv2d(input_ch, num_classes, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pred_conv2(self.relu(self.pred_bn1(self.pred_conv1(x))))
        return x, F.softmax(x, dim=1)


class OfficialColoredMnist(torch.utils.data.Dataset):
    """Per-sample Dataset over (N, 28, 28, 3) uint8 images, as the authors' WholeDataLoader."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        from torchvision import transforms

        self.images, self.labels = images, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(NORM_MEAN, NORM_STD)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        from PIL import Image

        image = Image.fromarray(self.images[index])
        small = torch.from_numpy(np.asarray(image.resize((14, 14), Image.NEAREST)).transpose(2, 0, 1).copy())
        mask = (small == 0).long() * 255
        color_labels = torch.div(small, 32, rounding_mode="floor").long() + mask
        return self.transform(image), color_labels, int(self.labels[index])


class ReferenceLNL:
    """The official trainer's model, optimizers and steps."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4, lambda_: float = 0.01,
                 mu: float = 0.1) -> None:
        self.net = OfficialConvNet()
        self.heads = nn.ModuleList([OfficialPredictor() for _ in range(3)])
        self.lambda_, self.mu = lambda_, mu

        def sgd(params: Any) -> torch.optim.Optimizer:
            return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

        self.optim = sgd(self.net.parameters())
        self.optim_heads = [sgd(h.parameters()) for h in self.heads]
        self.ce = nn.CrossEntropyLoss(ignore_index=255)

    def _zero(self) -> None:
        self.optim.zero_grad(set_to_none=False)  # PyTorch 0.4 semantics: gradients zeroed, not freed
        for opt in self.optim_heads:
            opt.zero_grad(set_to_none=False)

    def losses_pass_a(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat, logits = self.net(images)
        neg_ent = feat.new_zeros(())
        for head in self.heads:
            logp = F.log_softmax(head(feat)[0], 1)
            neg_ent = neg_ent + (logp.exp() * logp).sum(1).mean()
        return self.ce(logits, labels), neg_ent / 3.0

    def loss_pass_b(self, images: torch.Tensor, color_labels: torch.Tensor) -> torch.Tensor:
        feat, _ = self.net(images)
        feat = grad_reverse(feat, self.mu)
        return sum(self.ce(h(feat)[0], color_labels[:, k]) for k, h in enumerate(self.heads))

    def step(self, images: torch.Tensor, color_labels: torch.Tensor, labels: torch.Tensor) -> None:
        self._zero()
        ce, neg_ent = self.losses_pass_a(images, labels)
        (ce + self.lambda_ * neg_ent).backward()
        self.optim.step()
        self._zero()
        self.loss_pass_b(images, color_labels).backward()
        self.optim.step()
        for opt in self.optim_heads:
            opt.step()

    def step_baseline(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.optim.zero_grad(set_to_none=False)
        _, logits = self.net(images)
        self.ce(logits, labels).backward()
        self.optim.step()

    def train(self) -> None:
        self.net.train()
        self.heads.train()


@torch.no_grad()
def copy_into(ref: ReferenceLNL, model: Any) -> None:
    """Load the reference weights into our :class:`lnl.models.LNLNet` (paper architecture)."""
    n = ref.net
    f, g, h = model.f, model.g, model.h
    f.bn0.load_state_dict(n.bn0.state_dict())
    f.conv1.load_state_dict(n.conv1.state_dict())
    f.conv2.load_state_dict(n.conv2.state_dict())
    convs = [m for m in g.features if isinstance(m, nn.Conv2d)]
    convs[0].load_state_dict(n.conv3.state_dict())
    convs[1].load_state_dict(n.conv4.state_dict())
    g.fc.load_state_dict(n.fc.state_dict())
    heads = list(ref.heads)
    h.conv1.weight.copy_(torch.cat([p.pred_conv1.weight for p in heads]))
    h.conv1.bias.copy_(torch.cat([p.pred_conv1.bias for p in heads]))
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(h.bn, name).copy_(torch.cat([getattr(p.pred_bn1, name) for p in heads]))
    h.conv2.weight.copy_(torch.cat([p.pred_conv2.weight for p in heads]))
    h.conv2.bias.copy_(torch.cat([p.pred_conv2.bias for p in heads]))
