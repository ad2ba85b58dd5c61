#!/usr/bin/env python
"""Build (or verify) the Colored MNIST caches.

Same as ``lnl-prepare-data`` and ``python -m lnl.commands.prepare_data``; the command lives in
lnl/commands/prepare_data.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.prepare_data import main

if __name__ == "__main__":
    raise SystemExit(main())
