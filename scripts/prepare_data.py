#!/usr/bin/env python
"""Build (or verify) the Colored MNIST caches: ``python scripts/prepare_data.py --color-var 0.02 0.03``.

Training does this on demand; running it first keeps data preparation out of
timed runs and parallel workers.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lnl.config import PAPER_COLOR_VARS  # noqa: E402
from lnl.data.dataset import load_generated  # noqa: E402
from lnl.data import colored  # noqa: E402
from lnl.data.mnist import MnistUnavailable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--color-var", type=float, nargs="+", default=[0.02],
                        help="bias levels sigma^2 (default 0.02); 'all' levels of the paper with --paper-levels")
    parser.add_argument("--paper-levels", action="store_true", help="all seven levels 0.020 ... 0.050")
    parser.add_argument("--cache-dir", default="data")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST IDX files")
    parser.add_argument("--palette", default="default")
    parser.add_argument("--strokes", default="binary", choices=colored.STROKES)
    parser.add_argument("--color-noise", default="per_channel_var", choices=tuple(colored.COLOR_NOISE))
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--val-size", type=int, default=5000)
    args = parser.parse_args()
    levels = PAPER_COLOR_VARS if args.paper_levels else args.color_var
    for cv in levels:
        if cv <= 0:
            print(f"error: color_var (--color-var): must be > 0; got {cv}", file=sys.stderr)
            return 2
        t = time.perf_counter()
        try:
            data = load_generated(cv, args.palette, args.data_seed, args.val_size, cache_dir=args.cache_dir,
                                  data_dir=args.data_dir, strokes=args.strokes, color_noise=args.color_noise)
        except MnistUnavailable as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except ValueError as err:  # a bad palette file
            print(f"error: palette (--palette): {err}", file=sys.stderr)
            return 2
        sizes = ", ".join(f"{s} {len(data.y(s))}" for s in ("train", "val_biased", "val_unbiased", "test"))
        print(f"color_var {cv:.3f}: {sizes} ({time.perf_counter() - t:.1f}s, cache in {args.cache_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
