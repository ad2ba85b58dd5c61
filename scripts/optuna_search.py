#!/usr/bin/env python
"""Optuna search per bias level over a sweep YAML's search space.

    python scripts/optuna_search.py --space sweeps/lnl_tune.yaml --color-var 0.02 0.03 0.04 --n-trials 40

One study per bias level (and per method, when the YAML lists several), named
``<sweep>-<method>-cv<level>``; rerunning adds trials to the same studies. At the
end it prints, per study, the best parameters and the command that re-runs them,
and writes them as a config YAML for ``scripts/train.py --config``.
``--confirm-seeds N`` re-trains each best config with N fresh seeds and prints
mean +- std of the unbiased test accuracy: the number to report (the search
itself only ever looks at validation data).

Storage: ``--storage`` is an SQLAlchemy URL (default ``sqlite:///optuna.db``;
``postgresql+psycopg2://user:pass@host/db`` for many machines) or
``journal:PATH`` for several processes sharing a file system.
"""
from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from lnl.config import Config, ConfigError, parse_pairs  # noqa: E402
from lnl.search import (DEFAULT_STORAGE, Objective, SearchSpaceError, best_trial_config, counted_trials,  # noqa: E402
                        create_study, experimental_ok, make_pruner, make_sampler, mask_url, open_storage, run_worker,
                        space_from_sweep, study_name)
from lnl.sweep_config import SweepError, for_condition, load_sweep  # noqa: E402


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
    p.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median")
    p.add_argument("--seed", type=int, default=None, help="sampler seed (worker k uses seed + k)")
    p.add_argument("--n-trials", type=int, default=20,
                   help="trials this invocation adds to each study, shared by its --n-jobs workers")
    p.add_argument("--max-trials", type=int, default=None,
                   help="cap on each study's total trials across all workers and machines")
    p.add_argument("--timeout", type=float, default=None, help="seconds per study per worker")
    p.add_argument("--n-jobs", type=int, default=1,
                   help="worker processes; each takes cores / N threads and its own cores (lnl.workers)")
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


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = dict(parse_pairs(args.set, "--set"))
    values.update(runs_dir=args.runs_dir, wandb_mode=args.wandb_mode, progress=False)
    Config.from_dict(values)  # unknown keys and bad values fail here, before any study starts
    return values


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One entry per study: its name, fixed values and Optuna space."""
    sweep = load_sweep(args.space)
    params = sweep["parameters"]
    if args.method:
        methods = args.method
    elif "values" in params.get("method", {}):
        methods = list(params["method"]["values"])
    else:
        methods = [params.get("method", {}).get("value", Config().method)]
    levels = args.color_var or [params.get("color_var", {}).get("value", Config().color_var)]
    prefix = args.study_prefix or sweep.get("name", Path(args.space).stem)
    pinned = set(overrides_from(args)) & set(params)
    if pinned:  # --set fixes a parameter: it leaves the search space
        print(f"--set fixes {', '.join(sorted(pinned))}: not searched")
    studies = []
    for method in methods:
        for cv in levels:
            Config.from_dict({"method": method, "color_var": cv}).validate()  # the one place values are checked
            fixed, space = space_from_sweep(for_condition(sweep, cv, method))
            space = {k: v for k, v in space.items() if k not in pinned}
            studies.append({"name": study_name(prefix, method, cv), "fixed": fixed, "space": space,
                            "method": method, "color_var": cv})
    return studies


def worker_main(args: argparse.Namespace, studies: list[dict[str, Any]], caps: dict[str, int | None],
                index: int) -> None:
    """Body of one worker process: the studies one after another, on its share of the cores."""
    if args.n_jobs > 1:
        from lnl.workers import worker_env

        os.environ.update(worker_env(args.n_jobs, index))  # read by the engine (lnl.workers.apply_share)
    optuna_quiet()
    overrides = overrides_from(args)
    epochs = int(overrides.get("epochs", studies[0]["fixed"].get("epochs", Config().epochs)))
    for st in studies:
        objective = Objective(st["fixed"], st["space"], overrides, st["name"], args.objective)
        seed = None if args.seed is None else args.seed + index
        n = run_worker(args.storage, st["name"], objective, cap=caps[st["name"]], timeout=args.timeout,
                       heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period,
                       sampler=args.sampler, pruner=args.pruner, epochs=epochs, seed=seed,
                       log=lambda msg: print(f"[worker {index}] {msg}", flush=True))
        print(f"[worker {index}] {st['name']}: ran {n} trials", flush=True)


def optuna_quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)


def summarize(args: argparse.Namespace, studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import optuna
    from optuna.trial import TrialState

    storage = open_storage(args.storage, args.heartbeat_interval, args.grace_period)
    overrides = overrides_from(args)
    out = Path(args.out)
    rows = []
    for st in studies:
        study = optuna.load_study(study_name=st["name"], storage=storage)
        trials = study.get_trials(deepcopy=False)
        counts = {s.name.lower(): sum(t.state == s for t in trials) for s in
                  (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)}
        objective = Objective(st["fixed"], st["space"], overrides, st["name"], args.objective)
        best_cfg = best_trial_config(study, objective)
        print(f"\n== {st['name']}: {len(trials)} trials ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})")
        row = {"study": st["name"], "method": st["method"], "color_var": st["color_var"], **counts}
        if best_cfg is None:
            print("   no completed trial yet")
            rows.append(row)
            continue
        best = study.best_trial
        path = out / f"{st['name']}.yaml"
        out.mkdir(parents=True, exist_ok=True)
        header = (f"# Best configuration of Optuna study {st['name']} (trial {best.number}):\n"
                  f"# {args.objective} at its best epoch = {best.value:.4f} (validation data only).\n"
                  f"# Re-run: python scripts/train.py --config {path}\n")
        path.write_text(header + yaml.safe_dump(best_cfg, sort_keys=False))
        print(f"   best {args.objective} = {best.value:.4f} (trial {best.number}, epoch "
              f"{best.user_attrs.get('best_epoch', '?')})")
        for key, value in best.params.items():
            print(f"   {key:>14} = {value}")
        print(f"   re-run: python scripts/train.py --config {path}")
        row.update(best_value=best.value, best_trial=best.number, config=str(path), **{
            f"param/{k}": v for k, v in best.params.items()})
        if args.confirm_seeds:
            row.update(confirm(best_cfg, st["name"], args))
        rows.append(row)
    return rows


def confirm(best_cfg: dict[str, Any], name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Re-train the best config with fresh seeds; the test accuracy to report is their mean +- std."""
    from lnl.engine import train

    seeds = [100 + i for i in range(args.confirm_seeds)]  # not the search's seed
    accs = []
    for seed in seeds:
        cfg = Config.from_dict({**best_cfg, "seed": seed, "runs_dir": str(Path(args.runs_dir) / "confirm"),
                                "group": name, "job_type": "confirm", "study": name, "progress": False,
                                "wandb_mode": args.wandb_mode, "resume": True})
        result = train(cfg)
        if result.test_acc is not None and math.isfinite(result.test_acc):
            accs.append(result.test_acc)
    mean = statistics.fmean(accs) if accs else float("nan")
    std = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(f"   confirmed over seeds {seeds}: unbiased test accuracy {mean:.4f} +- {std:.4f} (std, n={len(accs)})")
    return {"confirm_test_acc_mean": mean, "confirm_test_acc_std": std, "confirm_n": len(accs)}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # W&B records the command line of every run; a storage URL's password must not travel with it.
    # args keeps the real URL; sys.argv (also what spawned workers inherit) gets the masked one.
    sys.argv[:] = [mask_url(a) for a in sys.argv]
    try:
        studies = plan(args)
        overrides_from(args)
    except (SweepError, SearchSpaceError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.n_jobs < 1 or args.n_trials < 0:
        print("error: --n-jobs must be >= 1 and --n-trials >= 0", file=sys.stderr)
        return 2
    optuna_quiet()
    import optuna

    print(f"storage: {mask_url(args.storage)}")
    try:
        storage = open_storage(args.storage, args.heartbeat_interval, args.grace_period)
        # An RDB storage connects lazily: touch it now, so a wrong or unreachable URL is one line here.
        optuna.get_all_study_summaries(storage)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy's errors are 100-line traces; say what and where
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        print(f"error: storage (--storage) {mask_url(args.storage)}: cannot open it ({type(err).__name__}: "
              f"{mask_url(first)})", file=sys.stderr)
        return 2
    caps: dict[str, int | None] = {}
    epochs = int(overrides_from(args).get("epochs", studies[0]["fixed"].get("epochs", Config().epochs)))
    for st in studies:
        # Create each study once, before any worker starts (parallel creation races on the tables).
        study = create_study(storage, st["name"], sampler=make_sampler(args.sampler, st["space"], args.seed),
                             pruner=make_pruner(args.pruner, epochs),
                             attrs={"space": str(args.space), "objective": args.objective,
                                    "method": st["method"], "color_var": st["color_var"]})
        with experimental_ok():
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial is not "so far": it is retried
        cap = counted_trials(study) + args.n_trials
        caps[st["name"]] = cap if args.max_trials is None else min(cap, args.max_trials)
        print(f"study {st['name']}: {counted_trials(study)} trials so far, running up to {caps[st['name']]}")
    del storage
    if args.n_jobs == 1:
        worker_main(args, studies, caps, 0)
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=worker_main, args=(args, studies, caps, k)) for k in range(args.n_jobs)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        failed = [p.exitcode for p in procs if p.exitcode != 0]
        if failed:
            print(f"warning: {len(failed)} worker(s) exited with {failed}", file=sys.stderr)
    summarize(args, studies)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
