#!/usr/bin/env python
"""Train one run on Colored MNIST: ``python scripts/train.py --method lnl --color-var 0.02``.

``python scripts/train.py --help`` lists every flag. This is also the program
that the W&B sweep YAMLs in sweeps/ run.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from lnl.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
