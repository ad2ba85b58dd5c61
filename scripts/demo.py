#!/usr/bin/env python
"""`make demo`: baseline and LNL at sigma^2 = 0.020 side by side, then a report.

Same as ``lnl-demo`` and ``python -m lnl.commands.demo``; the command lives in
lnl/commands/demo.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
