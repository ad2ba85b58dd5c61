"""The numeric keys' ranges, checked by :meth:`lnl.config.Config.validate`: each bad value raises a
:class:`~lnl.errors.ConfigError` naming its key (one line, exit status 2)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lnl.errors import ConfigError

if TYPE_CHECKING:
    from lnl.config import Config


def check_ranges(cfg: Config) -> None:
    """Raise :class:`ConfigError` for the first numeric value outside its range."""
    positive = {"color_var": cfg.color_var, "lr": cfg.lr, "width": cfg.width}
    if cfg.bias_lr is not None:
        positive["bias_lr"] = cfg.bias_lr
    for key, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(key, f"must be a finite number > 0; got {value}")
    non_negative = {"weight_decay": cfg.weight_decay, "lambda": cfg.lambda_, "mu": cfg.mu, "alpha": cfg.alpha,
                    "hsic_weight": cfg.hsic_weight, "warmup_epochs": cfg.warmup_epochs, "val_size": cfg.val_size,
                    "lr_gamma": cfg.lr_gamma, "eval_every": cfg.eval_every}
    for key, value in non_negative.items():
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(key, f"must be a finite number >= 0; got {value}")
    at_least_one = {"epochs": cfg.epochs, "g_depth": cfg.g_depth, "head_width": cfg.head_width,
                    "lr_step_epochs": cfg.lr_step_epochs}
    for key, value in at_least_one.items():
        if value < 1:
            raise ConfigError(key, f"must be an integer >= 1; got {value}")
    if not (math.isfinite(cfg.gce_q) and 0 < cfg.gce_q <= 1):  # GCE: q in (0, 1] (Zhang & Sabuncu, 2018)
        raise ConfigError("gce_q", f"must be in (0, 1]; got {cfg.gce_q}")
    if not 0 <= cfg.loss_ema < 1:
        raise ConfigError("loss_ema", f"must be in [0, 1); got {cfg.loss_ema}")
    if cfg.batch_size < 2:
        raise ConfigError("batch_size", f"must be >= 2 (batch norm needs 2 samples); got {cfg.batch_size}")
    if not 0 <= cfg.momentum < 1:
        raise ConfigError("momentum", f"must be in [0, 1); got {cfg.momentum}")
    if cfg.warmup_epochs > cfg.epochs:
        raise ConfigError("warmup_epochs", f"must be <= epochs ({cfg.epochs}); got {cfg.warmup_epochs}")
    if cfg.val_size >= 60000:
        raise ConfigError("val_size", f"must be < 60000 (the MNIST training set); got {cfg.val_size}")
    for key in ("seed", "data_seed"):  # numpy and torch seeds: 0 <= seed < 2^63
        if not 0 <= getattr(cfg, key) < 2 ** 63:
            raise ConfigError(key, f"must be an integer in [0, 2^63); got {getattr(cfg, key)}")
    for key in ("train_size", "test_size", "val_eval_size", "threads"):
        value = getattr(cfg, key)
        if value is not None and value < 1:
            raise ConfigError(key, f"must be >= 1 or None; got {value}")
