#!/usr/bin/env python
"""Optuna search per bias level over a sweep YAML's search space.

Same as ``lnl-optuna-search`` and ``python -m lnl.commands.optuna_search``; the command lives in
lnl/commands/optuna_search.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.optuna_search import main

if __name__ == "__main__":
    raise SystemExit(main())
