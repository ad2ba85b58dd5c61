#!/usr/bin/env python
"""Run a grid sweep YAML locally and resumably.

Same as ``lnl-run-sweep`` and ``python -m lnl.commands.run_sweep``; the command lives in
lnl/commands/run_sweep.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.run_sweep import main

if __name__ == "__main__":
    raise SystemExit(main())
