"""lnl: Learning Not to Learn (Kim et al., CVPR 2019) on Colored MNIST, as an experiment harness.

``lnl.train(config) -> RunResult`` trains one run; ``lnl.Config`` describes it.
"""
from __future__ import annotations

__version__ = "0.1.0"

import lnl.train as _train_module  # noqa: F401  (load the submodule before binding the function name)
from lnl.config import Config, ConfigError, parse_args
from lnl.engine import StopRun, train
from lnl.records import RunResult

__all__ = ["Config", "ConfigError", "RunResult", "StopRun", "parse_args", "train", "__version__"]
