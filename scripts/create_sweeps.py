#!/usr/bin/env python
"""Create one W&B sweep per bias level from a sweep YAML.

Same as ``lnl-create-sweeps`` and ``python -m lnl.commands.create_sweeps``; the command lives in
lnl/commands/create_sweeps.py (``--help`` lists its flags). Needs the package installed
(``make install`` or ``pip install -e .``).
"""
from lnl.commands.create_sweeps import main

if __name__ == "__main__":
    raise SystemExit(main())
