"""``lnl-train`` (also ``python -m lnl``, ``scripts/train.py``): train one run from flags, a YAML and a recipe."""
from __future__ import annotations

import sys
from typing import Sequence

from lnl.commands import one_line_errors
from lnl.flags import parse_args


@one_line_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, train, print the unbiased test accuracy. Exit 2 on a bad config."""
    cfg = parse_args(argv)
    from lnl.data.mnist import MnistUnavailable
    from lnl.training.loop import train

    try:
        result = train(cfg)
    except MnistUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the record says interrupted; --resume continues it
        name = err.args[0] if err.args else "SIGINT"
        print(f"lnl: interrupted ({name}); the last epoch's checkpoint is kept: run again with --resume",
              file=sys.stderr)
        return 128 + (15 if name == "SIGTERM" else 2)
    return 0 if result.status in ("finished", "pruned") else 1


if __name__ == "__main__":
    raise SystemExit(main())
