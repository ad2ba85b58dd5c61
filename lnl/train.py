"""``python -m lnl.train [flags]``: train one run (same as ``python scripts/train.py``).

Importing this module does not shadow :func:`lnl.train`: the package binds the
name to the function after importing this module, and the module itself is
callable with the same signature.
"""
from __future__ import annotations

import sys
import types

from lnl.cli import main
from lnl.engine import train

__all__ = ["main", "train"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):  # lnl.train(config) works even if this module is bound
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    raise SystemExit(main())
