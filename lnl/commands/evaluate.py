"""``lnl-evaluate``: evaluate finished runs' final checkpoints on differently drawn data.

    lnl-evaluate runs/paper_table/*-cv0.020-* --set unbiased_colors=other_palette --out other.csv
    lnl-evaluate reports/paper_reproduction/baseline100/records/* --set unbiased_colors=uniform_rgb

Each run's network is rebuilt from its record's configuration, loaded from its ``final.pt`` and
evaluated (no training) on the data its configuration names after the ``--set`` overrides, which
may change the data only (``DATA_KEYS``: e.g. how the unbiased splits draw their colors, the bias
level, the data seed). One line per run is printed (accuracy on each split, and the test accuracy
its record holds); ``--out`` also writes them as CSV. Records and checkpoints are only read.
Exit 2 on a bad flag or override, 1 if a run has no final checkpoint.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from lnl.commands import one_line_errors
from lnl.config import ConfigError
from lnl.config_files import parse_pairs
from lnl.records import read_record, write_text_atomic
from lnl.store import checkpoint_store, final_checkpoint_path
from lnl.rescore import DATA_KEYS, EXECUTION_KEYS, evaluate_run, overridden_config

SPLITS = ("val_biased", "val_unbiased", "test")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (each with record.json and final.pt)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help=f"overrides, keys among: {', '.join(DATA_KEYS + EXECUTION_KEYS)}")
    p.add_argument("--splits", nargs="+", default=["val_unbiased", "test"], choices=SPLITS)
    p.add_argument("--out", default=None, help="CSV file for the results (written atomically)")
    return p.parse_args(argv)


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.out and (Path(args.out).is_dir() or not Path(args.out).parent.resolve().is_dir()):
        raise ConfigError(None, f"--out {args.out}: must name a file in an existing folder")
    overrides = parse_pairs(args.set, "--set")
    jobs = []
    for folder in map(Path, args.runs):
        record = read_record(folder)
        if record is None or record.get("status") != "finished" or final_checkpoint_path(folder, record) is None:
            print(f"error: {folder}: not a finished run with its final checkpoint (beside the record or in "
                  f"{checkpoint_store(folder.parent)})", file=sys.stderr)
            return 1
        jobs.append((folder, record, overridden_config(record, overrides)))
    from lnl.accel.workers import apply_share

    rows, data_cache = [], {}
    for i, (folder, record, cfg) in enumerate(jobs):
        if i == 0 or cfg.threads != jobs[i - 1][2].threads:  # the process's thread share, set once
            apply_share(cfg.threads)
        # A planted, altered or truncated checkpoint is a CheckpointError: one line, exit 2 (one_line_errors).
        acc = evaluate_run(folder, cfg, record, args.splits, data_cache)
        row = {"run_id": record["run_id"], "method": cfg.method, "trained_color_var": record["config"]["color_var"],
               "seed": cfg.seed, "overrides": " ".join(f"{k}={v}" for k, v in sorted(overrides.items())),
               **{f"{s}/acc": round(a, 4) for s, a in acc.items()},
               "record_test/acc": (record.get("final") or {}).get("test/acc")}
        rows.append(row)
        print("  ".join(f"{k} {v}" for k, v in row.items() if k != "overrides"), flush=True)
    if args.out:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(args.out, buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
