"""Optuna search per bias level over a sweep YAML's search space.

    lnl-optuna-search --space sweeps/lnl_tune.yaml --color-var 0.02 0.03 0.04 --n-trials 40

One study per bias level (and per method, when the YAML lists several), named
``<sweep>-<method>-cv<level>``; rerunning adds trials to the same studies. At the
end it prints, per study, the best parameters and the command that re-runs them,
and writes them as a config YAML for ``lnl-train --config``.
``--confirm-seeds N`` re-trains each best config with N fresh seeds and prints
mean +- std of the unbiased test accuracy: the number to report (the search
itself only ever looks at validation data).

Storage: ``--storage`` is an SQLAlchemy URL (default ``sqlite:///optuna.db``;
``postgresql+psycopg2://user:pass@host/db`` for many machines) or
``journal:PATH`` for several processes sharing a file system.
"""
from __future__ import annotations

import argparse
import os
import sys

from lnl.commands import at_least, one_line_errors
from lnl.config_files import parse_pairs
from lnl.optuna_storage import DEFAULT_STORAGE, mask_argv, mask_url, open_storage
from lnl.studies import Search, quiet_optuna


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", required=True, help="a sweep YAML (sweeps/*.yaml): the search space")
    p.add_argument("--color-var", type=float, nargs="+", default=None,
                   help="bias levels, one study each (default: the YAML's color_var)")
    p.add_argument("--method", nargs="+", default=None,
                   help="methods, one study each (default: the YAML's method value(s))")
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help="SQLAlchemy URL or journal:PATH (default sqlite:///optuna.db in this folder)")
    p.add_argument("--study-prefix", default=None, help="study name prefix (default: the YAML's name)")
    p.add_argument("--objective", default="val_unbiased/acc",
                   help="validation metric maximized at each trial's best epoch (val_unbiased/acc or val_biased/acc)")
    p.add_argument("--seeds-per-trial", type=int, default=1,
                   help="train each trial with N seeds (seed, seed+1, ...): the objective is their mean "
                        "(the pruner watches the first)")
    p.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median")
    p.add_argument("--seed", type=int, default=None, help="sampler seed (worker k uses seed + k)")
    p.add_argument("--n-trials", type=int, default=20,
                   help="trials this invocation adds to each study, shared by its --n-jobs workers")
    p.add_argument("--max-trials", type=int, default=None,
                   help="cap on each study's total trials across all workers and machines")
    p.add_argument("--timeout", type=float, default=None, help="seconds per study per worker")
    p.add_argument("--n-jobs", type=int, default=1,
                   help="worker processes; each takes cores / N threads and its own cores (lnl.accel.workers)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config values for every trial, e.g. --set epochs=3 train_size=10000")
    p.add_argument("--runs-dir", default="runs/optuna", help="where the trials' run records go")
    p.add_argument("--out", default="optuna_best", help="folder for the best configs (one YAML per study)")
    p.add_argument("--confirm-seeds", type=int, default=0,
                   help="re-train each best config with N fresh seeds and report test accuracy mean +- std")
    p.add_argument("--wandb-mode", default="auto", choices=("auto", "online", "offline", "disabled"))
    p.add_argument("--heartbeat-interval", type=int, default=30, help="seconds (RDB storages)")
    p.add_argument("--grace-period", type=int, default=90,
                   help="seconds without heartbeat after which a trial counts as dead and is retried")
    return p.parse_args(argv)



@one_line_errors
def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args = parse(argv)
    # W&B records the command line of every run; a storage URL's password must not travel with it.
    # args keeps the real URL; sys.argv (also what spawned workers inherit) gets the masked one.
    sys.argv[:] = mask_argv(sys.argv)
    at_least(n_jobs=(args.n_jobs, 1), n_trials=(args.n_trials, 0), seeds_per_trial=(args.seeds_per_trial, 1),
             max_trials=(args.max_trials, 1), timeout=(args.timeout, 1))
    options = {k: v for k, v in vars(args).items() if k not in ("space", "set")}
    search = Search(space_file=args.space, values=dict(parse_pairs(args.set, "--set")), **options)
    studies = search.plan()
    quiet_optuna()
    import optuna

    print(f"storage: {mask_url(args.storage)}")
    try:
        # An RDB storage connects lazily: touch it now, so a wrong or unreachable URL is one line here.
        optuna.get_all_study_summaries(open_storage(args.storage, args.heartbeat_interval, args.grace_period))
    except Exception as err:  # noqa: BLE001 - SQLAlchemy's errors are 100-line traces; say what and where
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        print(f"error: storage (--storage) {mask_url(args.storage)}: cannot open it ({type(err).__name__}: "
              f"{mask_url(first)})", file=sys.stderr)
        return 2
    failed = search.run(studies, search.prepare(studies))
    if failed:
        print(f"warning: {len(failed)} worker(s) exited with {failed}", file=sys.stderr)
    search.summarize(studies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
