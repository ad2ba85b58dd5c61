"""A search over bias levels: plan the studies of a sweep YAML, run workers, summarize, confirm.

``lnl-optuna-search`` is the command line over this module (:mod:`lnl.commands.optuna_search`);
the Optuna pieces it combines (space, storage, objective, one worker's loop) are in
:mod:`lnl.search`.

* :meth:`Search.plan`: one :class:`Study` per (method, bias level) of the YAML, named
  ``<sweep>-<method>-cv<level>``, so a rerun adds trials to the same studies. Values given
  with ``--set`` are fixed for every trial and leave the search space.
* :meth:`Search.prepare`: creates each study once, before any worker starts (parallel
  creation races on the tables), fails the trials of dead workers and returns each
  study's cap on trials.
* :func:`worker` is one worker process (several with ``n_jobs``, each on its share of the
  cores, :mod:`lnl.accel.workers`).
* :meth:`Search.summarize` writes each best configuration as a YAML for ``lnl-train
  --config``; :meth:`Search.confirm` re-trains it with fresh seeds: their unbiased test
  accuracy (mean +- std) is the number to report, the search itself only sees validation data.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing as mp
import os
import statistics
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from lnl.config import Config, ConfigError
from lnl.optuna_storage import DEFAULT_STORAGE, counted_trials, experimental_ok, open_storage
from lnl.search import (Objective, best_trial_config, create_study, make_pruner, make_sampler, run_worker,
                        space_from_sweep, study_name)
from lnl.sweep_config import for_condition, load_sweep

Log = Callable[[str], None]


@dataclasses.dataclass
class Study:
    """One study of a search: its name, the values every trial shares and the searched space."""

    name: str
    method: str
    color_var: float
    fixed: dict[str, Any]
    space: dict[str, Any]


@dataclasses.dataclass
class Search:
    """Every option of a search (the flags of ``lnl-optuna-search``); picklable for worker processes."""

    space_file: str
    color_var: Optional[list[float]] = None
    method: Optional[list[str]] = None
    storage: str = DEFAULT_STORAGE
    study_prefix: Optional[str] = None
    objective: str = "val_unbiased/acc"
    sampler: str = "tpe"
    pruner: str = "median"
    seed: Optional[int] = None
    n_trials: int = 20
    max_trials: Optional[int] = None
    timeout: Optional[float] = None
    n_jobs: int = 1
    seeds_per_trial: int = 1  # objective: mean over this many seeds of each run's best-epoch metric
    values: dict[str, Any] = dataclasses.field(default_factory=dict)  # --set: fixed for every trial
    runs_dir: str = "runs/optuna"
    out: str = "optuna_best"
    confirm_seeds: int = 0
    wandb_mode: str = "auto"
    heartbeat_interval: int = 30
    grace_period: int = 90

    def overrides(self) -> dict[str, Any]:
        """Config values of every trial; unknown keys and bad values raise ConfigError here."""
        values = {**self.values, "runs_dir": self.runs_dir, "wandb_mode": self.wandb_mode, "progress": False}
        Config.from_dict(values)
        return values

    def plan(self, log: Log = print) -> list[Study]:
        """The studies, in order; raises SweepError, SearchSpaceError or ConfigError on a bad input."""
        sweep = load_sweep(self.space_file)
        params = sweep["parameters"]
        if self.method:
            methods = list(self.method)
        elif "values" in params.get("method", {}):
            methods = list(params["method"]["values"])
        else:
            methods = [params.get("method", {}).get("value", Config().method)]
        levels = self.color_var or [params.get("color_var", {}).get("value", Config().color_var)]
        prefix = self.study_prefix or sweep.get("name", Path(self.space_file).stem)
        pinned = set(self.overrides()) & set(params)
        if pinned:
            log(f"--set fixes {', '.join(sorted(pinned))}: not searched")
        studies = []
        for method in methods:
            for cv in levels:
                Config.from_dict({"method": method, "color_var": cv}).validate()  # the one place values are checked
                fixed, space = space_from_sweep(for_condition(sweep, cv, method))
                _check_bounds(method, cv, fixed, space)
                studies.append(Study(study_name(prefix, method, cv), method, cv, fixed,
                                     {k: v for k, v in space.items() if k not in pinned}))
        return studies

    def epochs(self, studies: list[Study]) -> int:
        return int(self.overrides().get("epochs", studies[0].fixed.get("epochs", Config().epochs)))

    def prepare(self, studies: list[Study], log: Log = print) -> dict[str, int | None]:
        """Create (or load) every study and return its cap: trials so far + n_trials, at most max_trials."""
        import optuna

        storage = open_storage(self.storage, self.heartbeat_interval, self.grace_period)
        caps: dict[str, int | None] = {}
        for st in studies:
            study = create_study(storage, st.name, sampler=make_sampler(self.sampler, st.space, self.seed),
                                 pruner=make_pruner(self.pruner, self.epochs(studies)),
                                 attrs={"space": str(self.space_file), "objective": self.objective,
                                        "method": st.method, "color_var": st.color_var})
            with experimental_ok():
                optuna.storages.fail_stale_trials(study)  # a dead worker's trial is not "so far": it is retried
            cap = counted_trials(study) + self.n_trials
            caps[st.name] = cap if self.max_trials is None else min(cap, self.max_trials)
            log(f"study {st.name}: {counted_trials(study)} trials so far, running up to {caps[st.name]}")
        return caps

    def run(self, studies: list[Study], caps: dict[str, int | None]) -> list[int]:
        """Run the workers (in this process when n_jobs is 1); the exit codes of those that failed."""
        if self.n_jobs == 1:
            worker(self, studies, caps, 0)
            return []
        ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
        procs = [ctx.Process(target=worker, args=(self, studies, caps, k)) for k in range(self.n_jobs)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        return [p.exitcode for p in procs if p.exitcode != 0]

    def summarize(self, studies: list[Study], log: Log = print) -> list[dict[str, Any]]:
        """Per study: trial counts, the best trial (written to ``out/<study>.yaml``), confirmation."""
        import optuna
        from optuna.trial import TrialState

        storage = open_storage(self.storage, self.heartbeat_interval, self.grace_period)
        rows = []
        for st in studies:
            study = optuna.load_study(study_name=st.name, storage=storage)
            trials = study.get_trials(deepcopy=False)
            counts = {s.name.lower(): sum(t.state == s for t in trials) for s in
                      (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING,
                       TrialState.WAITING)}
            best_cfg = best_trial_config(study, self.objective_for(st))
            log(f"\n== {st.name}: {len(trials)} trials ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})")
            row = {"study": st.name, "method": st.method, "color_var": st.color_var, **counts}
            rows.append(row)
            if best_cfg is None:
                log("   no completed trial yet")
                continue
            best = study.best_trial
            path = self._write_best(st.name, best, best_cfg)
            log(f"   best {self.objective} = {best.value:.4f} (trial {best.number}, epoch "
                f"{best.user_attrs.get('best_epoch', '?')})")
            for key, value in best.params.items():
                log(f"   {key:>14} = {value}")
            log(f"   re-run: lnl-train --config {path}")
            row.update(best_value=best.value, best_trial=best.number, config=str(path),
                       **{f"param/{k}": v for k, v in best.params.items()})
            if self.confirm_seeds:
                row.update(self.confirm(best_cfg, st.name, log))
        return rows

    def objective_for(self, st: Study) -> Objective:
        """The Optuna objective of one study: its fixed values and space, this search's overrides."""
        return Objective(st.fixed, st.space, self.overrides(), st.name, self.objective, self.seeds_per_trial)

    def _write_best(self, name: str, best: Any, best_cfg: dict[str, Any]) -> Path:
        path = Path(self.out) / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (f"# Best configuration of Optuna study {name} (trial {best.number}):\n"
                  f"# {self.objective} at its best epoch = {best.value:.4f} (validation data only).\n"
                  f"# Re-run: lnl-train --config {path}\n")
        path.write_text(header + yaml.safe_dump(best_cfg, sort_keys=False))
        return path

    def confirm(self, best_cfg: dict[str, Any], name: str, log: Log = print) -> dict[str, Any]:
        """Re-train the best config with fresh seeds; the test accuracy to report is their mean +- std."""
        from lnl.training.loop import train

        seeds = [100 + i for i in range(self.confirm_seeds)]  # not the search's seed
        accs = []
        for seed in seeds:
            cfg = Config.from_dict({**best_cfg, "seed": seed, "runs_dir": str(Path(self.runs_dir) / "confirm"),
                                    "group": name, "job_type": "confirm", "study": name, "progress": False,
                                    "wandb_mode": self.wandb_mode, "resume": True})
            result = train(cfg)
            if result.test_acc is not None and math.isfinite(result.test_acc):
                accs.append(result.test_acc)
        mean = statistics.fmean(accs) if accs else float("nan")
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        log(f"   confirmed over seeds {seeds}: unbiased test accuracy {mean:.4f} +- {std:.4f} (std, n={len(accs)})")
        return {"confirm_test_acc_mean": mean, "confirm_test_acc_std": std, "confirm_n": len(accs)}


def quiet_optuna() -> None:
    """Optuna's and SQLAlchemy's per-trial INFO lines off: the workers print their own."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)


def worker(search: Search, studies: list[Study], caps: dict[str, int | None], index: int) -> None:
    """Body of one worker process: the studies one after another, on its share of the cores."""
    if search.n_jobs > 1:
        from lnl.accel.workers import worker_env

        os.environ.update(worker_env(search.n_jobs, index))  # read by the engine (lnl.accel.workers.apply_share)
    quiet_optuna()
    for st in studies:
        n = run_worker(search.storage, st.name, search.objective_for(st), cap=caps[st.name], timeout=search.timeout,
                       heartbeat_interval=search.heartbeat_interval, grace_period=search.grace_period,
                       sampler=search.sampler, pruner=search.pruner, epochs=search.epochs(studies),
                       seed=None if search.seed is None else search.seed + index,
                       log=lambda msg: print(f"[worker {index}] {msg}", flush=True))
        print(f"[worker {index}] {st.name}: ran {n} trials", flush=True)


def _check_bounds(method: str, cv: float, fixed: dict[str, Any], space: dict[str, Any]) -> None:
    """Every searched parameter's bounds (or choices) must make a valid config, so a space whose learning
    rate can be negative is refused up front instead of failing every trial (ConfigError, one line)."""
    base = {**fixed, "method": method, "color_var": cv}
    for name, dist in space.items():
        values = getattr(dist, "choices", None) or (dist.low, dist.high)
        for value in values:
            try:
                Config.from_dict({**base, name: value}).validate()
            except ConfigError as err:
                raise ConfigError(name, f"the search space allows {value!r}, which is invalid: {err}") from None
