#!/usr/bin/env python
"""Train one run on Colored MNIST (also the program of the W&B sweep YAMLs in sweeps/).

Same as ``lnl-train`` and ``python -m lnl.commands.train``; the command lives in
lnl/commands/train.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.train import main

if __name__ == "__main__":
    raise SystemExit(main())
