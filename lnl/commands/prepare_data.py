"""Build (or verify) the Colored MNIST caches: ``lnl-prepare-data --color-var 0.02 0.03``.

Training does this on demand; running it first keeps data preparation out of
timed runs and parallel workers.
"""
from __future__ import annotations

import argparse
import sys
import time

from lnl.commands import one_line_errors
from lnl.config import PAPER_COLOR_VARS, Config
from lnl.data.dataset import load_generated
from lnl.data import colored
from lnl.data.mnist import MnistUnavailable


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--color-var", type=float, nargs="+", default=[0.02],
                        help="bias levels sigma^2 (default 0.02); 'all' levels of the paper with --paper-levels")
    parser.add_argument("--paper-levels", action="store_true", help="all seven levels 0.020 ... 0.050")
    parser.add_argument("--cache-dir", default="data")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST IDX files")
    parser.add_argument("--palette", default="default")
    parser.add_argument("--strokes", default="binary", choices=colored.STROKES)
    parser.add_argument("--color-noise", default="per_channel_var", choices=tuple(colored.COLOR_NOISE))
    parser.add_argument("--unbiased-colors", default="palette", choices=colored.UNBIASED_COLORS)
    parser.add_argument("--color-bounds", default="clip", choices=colored.COLOR_BOUNDS)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--val-size", type=int, default=5000)
    args = parser.parse_args(argv)
    levels = PAPER_COLOR_VARS if args.paper_levels else args.color_var
    for cv in levels:
        cfg = Config.from_dict({"color_var": cv, "palette": args.palette, "strokes": args.strokes,  # one check
                                "color_noise": args.color_noise, "data_seed": args.data_seed,
                                "unbiased_colors": args.unbiased_colors, "color_bounds": args.color_bounds,
                                "val_size": args.val_size, "cache_dir": args.cache_dir,
                                "data_dir": args.data_dir}).validate()
        t = time.perf_counter()
        try:
            data = load_generated(cv, cfg.palette, cfg.data_seed, cfg.val_size, cache_dir=cfg.cache_dir,
                                  data_dir=cfg.data_dir, strokes=cfg.strokes, color_noise=cfg.color_noise,
                                  unbiased_colors=cfg.unbiased_colors, color_bounds=cfg.color_bounds)
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
