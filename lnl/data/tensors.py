"""Colored MNIST held as tensors on the training device, sliced into batches by index.

The whole dataset is a few hundred MB of uint8, so it lives on the device (GPU
memory when there is one) and a batch is one gather plus a normalization: no
per-sample Python, no DataLoader. Bias labels are computed once, here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from lnl.data import colored
from lnl.data.dataset import SPLITS, ColoredMnist

# The official input normalization (ToTensor, then Normalize with these), Sec. "Data" of
# the protocol notes; the network's first layer is a batch norm over the 3 channels.
NORM_MEAN = (0.4914, 0.4822, 0.4465)
NORM_STD = (0.2023, 0.1994, 0.2010)


@dataclass
class TensorSplit:
    x: torch.Tensor      # (N, C, 28, 28) uint8, C = 3 (color) or 1 (gray, expanded at batch time)
    y: torch.Tensor      # (N,) int64
    bias: torch.Tensor   # (N, 3, 14, 14) uint8 color bins, colored.IGNORE_INDEX on background
    color: torch.Tensor  # (N,) int8 mean-color id of each image (-1: unknown)

    def __len__(self) -> int:
        return len(self.y)


class DeviceData:
    """All splits on ``device``; ``gray=True`` replaces images with their gray version
    (:meth:`ColoredMnist.gray`: luma of the colored training images, raw MNIST digits in test).
    ``train_size``, ``test_size`` and ``val_eval_size`` (both validation splits) keep only the first N images
    of their splits (quick runs, tests); the names are the config's. How many training images are held out
    for validation in the first place is the data's business (``Config.val_size``), not this class's.
    ``bias_ignore``: :func:`lnl.data.colored.bias_labels`' rule for the bias labels."""

    def __init__(self, data: ColoredMnist, device: torch.device, *, gray: bool = False,
                 train_size: int | None = None, test_size: int | None = None,
                 val_eval_size: int | None = None, bias_ignore: str = "channel") -> None:
        self.device, self.gray = device, gray
        self.splits: dict[str, TensorSplit] = {}
        limits = {"train": train_size, "test": test_size, "val_biased": val_eval_size,
                  "val_unbiased": val_eval_size}
        for split in SPLITS:
            n = limits.get(split) or len(data.y(split))
            images = data.x(split)[:n]
            bias = colored.bias_labels(images, bias_ignore)  # always from the colored image: the bias is color
            pixels = data.gray(split)[:n, None] if gray else images.transpose(0, 3, 1, 2)
            self.splits[split] = TensorSplit(
                x=torch.from_numpy(np.ascontiguousarray(pixels)).to(device),
                y=torch.from_numpy(data.y(split)[:n].astype(np.int64)).to(device),
                bias=torch.from_numpy(bias).to(device),
                color=torch.from_numpy(data.color(split)[:n].astype(np.int8)).to(device))
        std = torch.tensor(NORM_STD, device=device).view(1, 3, 1, 1)
        mean = torch.tensor(NORM_MEAN, device=device).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std)  # (x / 255 - mean) / std as one multiply-add
        self._shift = mean / std

    def __getitem__(self, split: str) -> TensorSplit:
        return self.splits[split]

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> normalized float32 NCHW network input."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.float() * self._scale - self._shift

    def batches(self, split: str, batch_size: int, generator: torch.Generator | None = None,
                with_index: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield (inputs, labels, bias labels), and with ``with_index`` each image's position in the split
        (for methods that keep per-sample state, e.g. LfF's loss averages); shuffled when ``generator`` is
        given. A final batch of one image is dropped (batch norm cannot train on it).
        """
        part = self.splits[split]
        n = len(part)
        if generator is not None:
            order = torch.randperm(n, generator=generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if generator is not None and len(idx) < 2:
                break
            yield (self.inputs(part.x[idx]), part.y[idx], part.bias[idx], *((idx,) if with_index else ()))
