#!/usr/bin/env python
"""Comparison tables and figures from run records (or from W&B).

Same as ``lnl-report`` and ``python -m lnl.commands.report``; the command lives in
lnl/commands/report.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.report import main

if __name__ == "__main__":
    raise SystemExit(main())
