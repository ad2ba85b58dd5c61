"""Run a grid sweep YAML locally, resumably: finished runs are skipped.

    lnl-run-sweep sweeps/paper_table.yaml --runs-dir runs/paper_table --set recipe=official_short
    lnl-run-sweep sweeps/paper_table.yaml --filter method=lnl color_var=0.02 --dry-run
    lnl-run-sweep sweeps/paper_table.yaml --shard 1/3      # this machine's third of the grid
    lnl-run-sweep sweeps/paper_table.yaml --jobs 2         # two runs at a time, a core share each

The same YAML that ``wandb agent`` runs (sweeps/paper_table.yaml), without a W&B
server: the grid is the product of every ``values`` list; constants are fixed.
Each run has a deterministic id (method, bias level, seed, config hash), so a
re-launch resumes killed runs from their checkpoint and skips finished ones
(as DomainBed's sweep does). Runs are ordered seed-major, so a partial sweep
already covers every cell once. ``--jobs N`` trains N runs at a time in a local
process pool, each process with its share of the cores (lnl.workers); a run that
fails is reported and the others go on.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lnl.config import Config, ConfigError, parse_pairs
from lnl.records import RECORD, read_record
from lnl.search import SearchSpaceError, grid_runs
from lnl.sweep_config import SweepError, load_sweep
from lnl.pool import train_pool


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a grid sweep YAML, e.g. sweeps/paper_table.yaml")
    p.add_argument("--runs-dir", default="runs/sweep", help="where the run records go")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values of every run")
    p.add_argument("--filter", nargs="*", default=[], metavar="KEY=VALUE", help="only runs with these values")
    p.add_argument("--shard", default=None, metavar="I/N", help="run only the I-th of N interleaved parts")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs at a time (processes; each takes cores / N threads)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state; train nothing")
    args = p.parse_args(argv)
    if args.jobs < 1:
        print(f"error: --jobs must be >= 1; got {args.jobs}", file=sys.stderr)
        return 2
    try:
        sweep = load_sweep(args.sweep)
        runs = grid_runs(sweep)
        overrides = parse_pairs(args.set, "--set")
        wanted = parse_pairs(args.filter, "--filter")
        configs = []
        for values in runs:
            cfg = Config.from_dict({**values, **overrides, "runs_dir": args.runs_dir, "resume": True,
                                    "progress": False, "group": sweep.get("name")}).validate()
            public = cfg.to_dict()
            if all(str(public.get(k)) == v or _same_number(public.get(k), v) for k, v in wanted.items()):
                configs.append(cfg)
    except (SweepError, SearchSpaceError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.shard:
        i, n = _shard(args.shard)
        if i is None:
            print(f"error: --shard must be I/N with 1 <= I <= N; got {args.shard!r}", file=sys.stderr)
            return 2
        configs = configs[i - 1::n]
    states = [(cfg, (read_record(Path(cfg.runs_dir) / cfg.default_run_id()) or {}).get("status", "new"))
              for cfg in configs]
    done = sum(s in ("finished", "diverged") for _, s in states)
    print(f"{len(configs)} runs in {args.sweep} ({done} done, {len(configs) - done} to run) -> {args.runs_dir}")
    if args.dry_run:
        for cfg, state in states:
            print(f"  {state:<9} {cfg.default_run_id()}")
        return 0
    start = time.perf_counter()
    todo = [(k, cfg) for k, (cfg, state) in enumerate(states, 1) if state not in ("finished", "diverged")]
    failed = train_pool(todo, len(states), args.jobs)
    print(f"sweep done in {time.perf_counter() - start:.0f}s; records under {args.runs_dir}/*/{RECORD}"
          + (f"; {len(failed)} run(s) failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _shard(text: str) -> tuple[int | None, int]:
    """``"I/N"`` -> (I, N) when 1 <= I <= N, else (None, 0)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        return None, 0
    return (i, n) if 1 <= i <= n else (None, 0)


def _same_number(value: object, text: str) -> bool:
    try:
        return float(value) == float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
