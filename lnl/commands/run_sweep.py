"""Run a grid sweep YAML locally, resumably: finished runs are skipped.

    lnl-run-sweep sweeps/paper_table.yaml --runs-dir runs/paper_table --set recipe=official_short
    lnl-run-sweep sweeps/paper_table.yaml --filter method=lnl color_var=0.02 --dry-run
    lnl-run-sweep sweeps/paper_table.yaml --shard 1/3      # this machine's third of the grid
    lnl-run-sweep sweeps/paper_table.yaml --jobs 2         # two runs at a time, a core share each
    lnl-run-sweep sweeps/headline.yaml --runs-dir results --dry-run   # what is missing, and its cost
    lnl-run-sweep sweeps/headline.yaml --device cuda --jobs 16 --deadline-s 540   # a GPU lent for minutes

The same YAML that ``wandb agent`` runs (sweeps/paper_table.yaml), without a W&B
server: the grid is the product of every ``values`` list; constants are fixed.
Each run has a deterministic id (method, bias level, seed, config hash), so a
re-launch resumes killed runs from their checkpoint and skips finished ones
(as DomainBed's sweep does). Runs are ordered seed-major, so a partial sweep
already covers every cell once. ``--jobs N`` trains N runs at a time in a local
process pool, each process with its share of the cores (lnl.accel.workers); a run that
fails is reported and the others go on. Runs that others start from (``init_from``)
are trained first, each once, then the rest (lnl.runner).

On one GPU, ``--device cuda --jobs N`` runs N processes side by side; start the CUDA
MPS daemon first (``nvidia-cuda-mps-control -d``) so that they share the card's
multiprocessors instead of taking turns (measured on an H200: 16 processes trained
about 1.7x the images per second of one). ``--deadline-s S`` stops every run still
training S seconds after the start, at the end of its current epoch: its record
says ``stopped`` and its checkpoint stays, so the next invocation, here or on any
machine with the same store, resumes it.
"""
from __future__ import annotations

import argparse
import sys

from lnl.commands import at_least, one_line_errors
from lnl.config import ConfigError
from lnl.config_files import parse_pairs
from lnl.runner import cost_line, epoch_seconds, load_records, plan, same_value, train_waves
from lnl.report.select import index, sweep_configs
from lnl.training.device import cpu_model


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a grid sweep YAML, e.g. sweeps/paper_table.yaml")
    p.add_argument("--runs-dir", default="runs/sweep", help="where the run records go")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values of every run")
    p.add_argument("--filter", nargs="*", default=[], metavar="KEY=VALUE", help="only runs with these values")
    p.add_argument("--shard", default=None, metavar="I/N", help="run only the I-th of N interleaved parts")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs at a time (processes; each takes cores / N threads)")
    p.add_argument("--device", default=None, help="device of every run (auto, cpu, cuda, cuda:1, ...)")
    p.add_argument("--deadline-s", type=float, default=None, metavar="S",
                   help="stop every run still training S seconds from now after its current epoch (it resumes "
                        "next time); start none after that")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs and their state, and the estimated cost of what is missing; train nothing")
    return p.parse_args(argv)


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    at_least(jobs=(args.jobs, 1), deadline_s=(args.deadline_s, 1))
    overrides = parse_pairs(args.set, "--set")
    if args.device:
        overrides["device"] = args.device
    wanted = parse_pairs(args.filter, "--filter")
    every = sweep_configs(args.sweep, args.runs_dir, overrides)
    configs = [cfg for cfg in every if all(same_value(cfg.to_dict().get(k), v) for k, v in wanted.items())]
    if wanted and not configs:  # a typo in a key or value would otherwise be "nothing to train"
        raise ConfigError(None, f"--filter {' '.join(args.filter)} matches none of the {len(every)} runs in "
                                f"{args.sweep} (keys are config keys, e.g. method=gray color_var=0.02)")
    if args.shard:
        i, n = _shard(args.shard)
        if i is None:
            print(f"error: --shard must be I/N with 1 <= I <= N; got {args.shard!r}", file=sys.stderr)
            return 2
        configs = configs[i - 1::n]
    store = load_records(args.runs_dir)
    jobs, todo = plan(configs, index(store))
    done = sum(j.state in ("finished", "diverged") for j in jobs)
    deps = [j for j in todo if j.dependency]
    print(f"{len(configs)} runs in {args.sweep} ({done} done, {len(configs) - done} to run"
          + (f", after {len(deps)} pretrained run(s) they start from" if deps else "") + f") -> {args.runs_dir}")
    print(cost_line(todo, epoch_seconds(store, cpu_model()), args.jobs))
    if args.dry_run:
        for job in deps + jobs:
            print(f"  {job.state:<9} {job.recorded_as or job.run_id}"
                  + ("  (pretrained: others start from it)" if job.dependency else ""))
        return 0
    return train_waves(configs, todo, args)


def _shard(text: str) -> tuple[int | None, int]:
    """``"I/N"`` -> (I, N) when 1 <= I <= N, else (None, 0)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        return None, 0
    return (i, n) if 1 <= i <= n else (None, 0)


if __name__ == "__main__":
    raise SystemExit(main())
