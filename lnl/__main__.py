"""``python -m lnl [flags]``: train one run (same as ``python scripts/train.py``)."""
from lnl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
