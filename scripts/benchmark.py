#!/usr/bin/env python
"""Training speed: our path against a reference pipeline in the authors' manner.

Same as ``lnl-benchmark`` and ``python -m lnl.commands.benchmark``; the command lives in
lnl/commands/benchmark.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
