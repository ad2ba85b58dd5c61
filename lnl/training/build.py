"""What a run is built from: its data, its network and method at its precision, its learning-rate schedule
and its batch order. Shared by the loop (:mod:`lnl.training.loop`) and the benchmark (:mod:`lnl.accel.bench`)."""
from __future__ import annotations

import math
import pickle
from typing import Any, Callable

import torch

from lnl.config import Config, ConfigError
from lnl.data import colored
from lnl.data.dataset import ColoredMnist, load_generated, load_official
from lnl.methods import METHODS, Method
from lnl.models import LNLNet, build_model
from lnl.training.device import autocast_factory, resolve_precision


# data
def load_data(cfg: Config) -> ColoredMnist:
    """The run's Colored MNIST; unreadable files (the authors' .npy, a palette CSV) are a ConfigError."""
    if cfg.data_source == "official":
        try:
            return load_official(cfg.data_path, val_size=cfg.val_size, data_seed=cfg.data_seed)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError) as err:
            raise ConfigError("data_path", f"{cfg.data_path}: not a readable file in the authors' format "
                                           f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    try:
        colored.load_palette(cfg.palette)
    except ValueError as err:
        raise ConfigError("palette", str(err)) from None
    return load_generated(cfg.color_var, cfg.palette, cfg.data_seed, cfg.val_size,
                          cache_dir=cfg.cache_dir, data_dir=cfg.data_dir, strokes=cfg.strokes,
                          color_noise=cfg.color_noise, unbiased_colors=cfg.unbiased_colors,
                          color_bounds=cfg.color_bounds)


def prepare_model(cfg: Config, device: torch.device) -> LNLNet:
    """The network of ``cfg`` on ``device``, in the memory format and with the kernels ``cfg`` asks for."""
    model = build_model(cfg.arch, cfg.width, cfg.g_depth, cfg.head_width, cfg.head_bn_init).to(device)
    if cfg.channels_last:
        # f's input batch norm stays NCHW (see models.FeatureExtractor); the rest goes channels-last.
        for part in (model.f.conv1, model.f.conv2, model.g, model.h):
            part.to(memory_format=torch.channels_last)
    model.use_fused_kernels(cfg.cpu_kernels and not cfg.compile)
    return model


def build_training(cfg: Config, device: torch.device) -> tuple[str, Callable[[], Any], LNLNet, Method]:
    """Precision, autocast, network and method of ``cfg`` on ``device``, seeded with ``cfg.seed``
    (the training core's setup, shared by :func:`setup` and :mod:`lnl.accel.bench`)."""
    precision = resolve_precision(cfg.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
        # 'fp32' means fp32: cuDNN would otherwise run fp32 convolutions as TF32 (10-bit mantissa) on
        # Ampere and later GPUs, which the authors' fp32 protocol never saw.
        # (torch's default for matmuls is already fp32; bf16 runs keep cuDNN's default.)
        torch.backends.cudnn.allow_tf32 = precision != "fp32"
        if precision == "fp32":
            torch.backends.cuda.matmul.allow_tf32 = False
    autocast = autocast_factory(device, precision)
    torch.manual_seed(cfg.seed)
    model = prepare_model(cfg, device)
    return precision, autocast, model, METHODS.get(cfg.method)(cfg, model, autocast, compile=cfg.compile)


# learning-rate schedule
def lr_lambda(cfg: Config, steps_per_epoch: int, first_epoch_lr: float | None) -> Callable[[int], float]:
    """The LambdaLR multiplier: :func:`lr_factor`, except that a run started from a pretrained
    optimizer state runs its first epoch at the restored learning rate (see :func:`load_pretrained`)."""
    if first_epoch_lr is None:
        return lambda step: lr_factor(cfg, step, steps_per_epoch)
    first = first_epoch_lr / cfg.lr
    return lambda step: first if step < steps_per_epoch else lr_factor(cfg, step, steps_per_epoch)


def lr_factor(cfg: Config, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at global ``step`` (0-based)."""
    if cfg.lr_schedule == "step":
        return cfg.lr_gamma ** ((step // max(steps_per_epoch, 1)) // cfg.lr_step_epochs)
    if cfg.lr_schedule == "cosine":
        total = max(cfg.epochs * steps_per_epoch, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return 1.0


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The batch order's generator. Wrapped to 64 bits: every seed Config accepts ([0, 2^63)) is valid, and
    the seeds runs have used so far (< 1.8e13, where the product fits) keep their batch orders."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2 ** 64)
