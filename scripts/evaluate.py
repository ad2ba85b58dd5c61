#!/usr/bin/env python
"""Evaluate finished runs on differently drawn data (no training).

Same as ``lnl-evaluate`` and ``python -m lnl.commands.evaluate``; the command lives in
lnl/commands/evaluate.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
