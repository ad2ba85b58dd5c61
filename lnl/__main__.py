"""``python -m lnl [flags]``: train one run (same as ``lnl-train`` and ``python scripts/train.py``)."""
from lnl.commands.train import main

if __name__ == "__main__":
    raise SystemExit(main())
