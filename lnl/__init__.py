"""lnl: Learning Not to Learn (Kim et al., CVPR 2019) on Colored MNIST, as an experiment harness.

``lnl.train(config) -> RunResult`` trains one run; ``lnl.Config`` describes it; ``lnl-train [flags]``
(or ``python -m lnl``) trains from the command line. Every command is a module of :mod:`lnl.commands`
with a console entry point (``lnl-run-sweep``, ``lnl-optuna-search``, ``lnl-report``, ...).

The names below load on first use, so ``import lnl`` (and the config, the sweep checks and the report
tables) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {"Config": "lnl.config", "ConfigError": "lnl.config", "parse_args": "lnl.flags",
         "StopRun": "lnl.training.loop", "train": "lnl.training.loop", "RunResult": "lnl.records"}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lnl' has no attribute {name!r}")
