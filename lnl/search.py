"""Optuna search over the same sweep YAMLs the W&B agents read.

* :func:`space_from_sweep` maps a sweep's W&B parameter declarations to Optuna
  distributions (constants stay fixed values); parameters it can't map raise
  :class:`SearchSpaceError` naming them. The ranges exist only in sweeps/*.yaml.
* One study per (sweep, method, bias level), named ``<sweep>-<method>-cv<level>``
  (e.g. ``lnl_tune-lnl-cv0.020``), so a rerun adds trials to the same study.
* Each trial is a full :func:`lnl.train` run (its own run record and W&B run, in
  W&B group = study name, job type ``optuna-trial``). The objective is a
  validation metric (default ``val_unbiased/acc``) at the trial's best epoch; its
  per-epoch values go to the pruner. The test set never takes part.
* :func:`run_worker` is one worker process. Workers on any number of machines
  share a study through its storage (:mod:`lnl.optuna_storage`); a lock held
  while a trial is created makes the cap on the study's trials exact. With RDB storages, heartbeats let a
  worker notice a trial whose worker died: the trial is marked failed and its
  parameters are run again (Optuna's ``RetryHeartbeatStaleTrialCallback``).
"""
from __future__ import annotations

import hashlib
import itertools
import math
import uuid
import time
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from lnl.config import Config, ConfigError
from lnl.training.loop import StopRun, train
from lnl.errors import UserError
from lnl.optuna_storage import counted_trials, experimental_ok, open_storage, study_lock

class SearchSpaceError(UserError):
    pass


# ---------------------------------------------------------------------------------------
# search space
def _kind(spec: dict[str, Any]) -> str:
    from lnl.sweep_config import _spec_kind

    return _spec_kind(spec)


def space_from_sweep(sweep: dict[str, Any]) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """(fixed values, Optuna distributions) for a sweep's ``parameters``.

    constant -> fixed; categorical -> Categorical; int_uniform -> Int; uniform ->
    Float; q_uniform -> Float/Int with step q; log_uniform (exponent bounds) and
    log_uniform_values -> log Float; q_log_uniform_values with integer bounds and
    q = 1 -> log Int. Normal-family and inverse-log distributions have no Optuna
    counterpart on a bounded domain and are refused.
    """
    fixed: dict[str, Any] = {}
    space: dict[str, BaseDistribution] = {}
    for name, spec in sweep["parameters"].items():
        kind = _kind(spec)
        try:
            if kind == "constant":
                fixed[name] = spec["value"]
            elif kind == "categorical":
                values = list(spec["values"])
                if any(isinstance(v, (list, dict)) for v in values):
                    raise SearchSpaceError("categorical values must be scalars")
                space[name] = CategoricalDistribution(values)
            elif kind == "int_uniform":
                space[name] = IntDistribution(int(spec["min"]), int(spec["max"]))
            elif kind == "uniform":
                space[name] = FloatDistribution(float(spec["min"]), float(spec["max"]))
            elif kind == "q_uniform":
                q = spec.get("q", 1.0)
                if all(float(v).is_integer() for v in (spec["min"], spec["max"], q)) and isinstance(q, int):
                    space[name] = IntDistribution(int(spec["min"]), int(spec["max"]), step=int(q))
                else:
                    low, high, q = float(spec["min"]), float(spec["max"]), float(q)
                    if not math.isclose(((high - low) / q) % 1, 0, abs_tol=1e-9) and \
                            not math.isclose(((high - low) / q) % 1, 1, abs_tol=1e-9):
                        raise SearchSpaceError(f"(max - min) = {high - low} is not a multiple of q = {q}")
                    space[name] = FloatDistribution(low, high, step=q)
            elif kind == "log_uniform":
                space[name] = FloatDistribution(math.exp(float(spec["min"])), math.exp(float(spec["max"])), log=True)
            elif kind == "log_uniform_values":
                space[name] = FloatDistribution(float(spec["min"]), float(spec["max"]), log=True)
            elif kind == "q_log_uniform_values" and spec.get("q", 1) == 1 and \
                    isinstance(spec["min"], int) and isinstance(spec["max"], int):
                space[name] = IntDistribution(spec["min"], spec["max"], log=True)
            else:
                raise SearchSpaceError(f"W&B distribution {kind!r} has no Optuna counterpart")
        except SearchSpaceError as err:
            raise SearchSpaceError(f"parameter {name!r}: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise SearchSpaceError(f"parameter {name!r}: cannot map {spec!r} ({err})") from None
    return fixed, space


def suggest(trial: optuna.Trial, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """Ask the trial for every parameter of ``space``."""
    params: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, IntDistribution):
            params[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            params[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:  # pragma: no cover - space_from_sweep makes only the three kinds
            raise SearchSpaceError(f"parameter {name!r}: unsupported distribution {dist!r}")
    return params


def grid_of(space: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    """The grid a GridSampler walks; only finite (categorical or integer) parameters qualify."""
    grid: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[name] = list(range(dist.low, dist.high + 1, dist.step))
        else:
            raise SearchSpaceError(f"parameter {name!r}: a grid needs categorical or integer parameters, not "
                                   f"{type(dist).__name__} (use wandb agent or lnl-optuna-search with the tpe or "
                                   "random sampler for continuous search)")
    return grid


def grid_runs(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """Every point of a sweep's grid (the one Optuna's grid sampler walks), constants included.

    Seed-major: the seed axis varies slowest, so a partial sweep already covers every cell once;
    the other axes in the YAML's order.
    """
    fixed, space = space_from_sweep(sweep)
    axes = grid_of(space)
    order = sorted(axes, key=lambda k: (k != "seed", list(sweep["parameters"]).index(k)))
    return [{**fixed, **dict(zip(order, combo))} for combo in itertools.product(*(axes[k] for k in order))]


# ---------------------------------------------------------------------------------------
# studies
def study_name(sweep_name: str, method: str, color_var: float) -> str:
    return f"{sweep_name}-{method}-cv{color_var:.3f}"


def make_sampler(kind: str, space: dict[str, BaseDistribution], seed: int | None) -> optuna.samplers.BaseSampler:
    if kind == "tpe":
        with experimental_ok():
            return optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        return optuna.samplers.GridSampler(grid_of(space), seed=seed)
    raise ValueError(f"unknown sampler {kind!r} (tpe, random, grid)")


def make_pruner(kind: str, epochs: int) -> optuna.pruners.BasePruner:
    if kind == "median":
        # No pruning in the first half of a run: early epochs (warm-up, the adversary still
        # untrained) say little about where an LNL run ends up.
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 2))
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {kind!r} (median, hyperband, none)")


def create_study(storage: Any, name: str, *, sampler: Any = None, pruner: Any = None,
                 attrs: dict[str, Any] | None = None) -> optuna.Study:
    """Create the study once (before workers start) or load it; direction: maximize."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=sampler, pruner=pruner)
    if "instance" not in study.user_attrs:
        # Names this study in its storage: a recreated database with the same study name gets another
        # instance id, so its trials' run records never land on (or refuse) the earlier study's.
        study.set_user_attr("instance", uuid.uuid4().hex[:8])
    for key, value in (attrs or {}).items():
        study.set_user_attr(key, value)
    return study


class Objective:
    """One trial = one full training run; returns the objective metric at the best epoch."""

    def __init__(self, fixed: dict[str, Any], space: dict[str, BaseDistribution], overrides: dict[str, Any],
                 study: str, objective: str = "val_unbiased/acc", seeds: int = 1) -> None:
        if not objective.startswith(("val_biased/", "val_unbiased/")):
            raise ValueError(f"objective must be a validation metric (val_biased/... or val_unbiased/...); "
                             f"got {objective!r}: the test set is never used for selection")
        if seeds < 1:
            raise ValueError(f"seeds per trial must be >= 1; got {seeds}")
        self.fixed, self.space, self.overrides = fixed, space, overrides
        self.study, self.objective, self.seeds = study, objective, seeds

    def config(self, trial: optuna.Trial, k: int = 0, *, runs_of: int | None = None) -> Config:
        """The config of the trial's ``k``-th seed run (seed = the configured seed + k). ``runs_of``: the
        run is named after that trial and resumed (a retry continues its dead trial's runs)."""
        params = suggest(trial, self.space)
        instance = trial.study.user_attrs.get("instance")
        number = trial.number if runs_of is None else runs_of
        run_id = f"{self.study}-{instance}-trial{number:04d}" if instance else f"{self.study}-trial{number:04d}"
        values = {**self.fixed, **params, **self.overrides, "study": self.study, "trial": trial.number,
                  "group": self.study}
        if runs_of is not None:
            values["resume"] = True
        if k:
            values["seed"] = int(values.get("seed", Config().seed)) + k
            run_id += f"-seed{k}"
        return Config.from_dict({**values, "run_id": run_id}).validate()

    def __call__(self, trial: optuna.Trial) -> float:
        """Train the trial's seeds one after another; the mean over them of each run's best-epoch
        objective. The pruner sees the first seed's curve only (in a retry: the epochs it trains).

        A retry of a trial whose worker died (heartbeat stale; the same parameters) continues that trial's
        runs: finished seeds are not trained again, a killed one resumes from its last checkpoint. Where
        the dead trial's runs were of another configuration (e.g. another ``--set``), the retry trains its
        own runs from scratch."""
        frozen = trial.study.get_trials(deepcopy=False)[trial.number]  # Optuna 5 wants a FrozenTrial here
        with experimental_ok():
            retry_of = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        if retry_of is not None:
            trial.set_user_attr("retry_of", retry_of)
        bests = [self._run_seed(trial, k, retry_of) for k in range(self.seeds)]
        if self.seeds > 1:
            trial.set_user_attr("seed_values", bests)
        return sum(bests) / len(bests)

    def _run_seed(self, trial: optuna.Trial, k: int, retry_of: int | None = None) -> float:
        cfg = self.config(trial, k, runs_of=retry_of)
        suffix = "" if k == 0 else f"_seed{k}"
        trial.set_user_attr("runs_dir", cfg.runs_dir)

        def report(epoch: int, metrics: dict[str, Any]) -> None:
            value = metrics.get(self.objective)
            if k or value is None or not math.isfinite(value):
                return
            trial.report(value, step=epoch)
            if trial.should_prune():
                raise StopRun("pruned", f"pruned at epoch {epoch}: {self.objective} {value:.4f}")

        try:
            try:
                trial.set_user_attr("run_id" + suffix, cfg.run_id)
                result = train(cfg, on_epoch=report)
            except ConfigError as err:
                if retry_of is None or err.key != "resume":
                    raise
                print(f"trial {trial.number}: not continuing trial {retry_of}'s run ({err}); training afresh",
                      flush=True)
                cfg = self.config(trial, k)
                trial.set_user_attr("run_id" + suffix, cfg.run_id)
                result = train(cfg, on_epoch=report)
        except Exception as err:
            trial.set_user_attr("reason", f"{type(err).__name__}: {err}"[:500])
            raise
        trial.set_user_attr("status" + suffix, result.status)
        if result.status in ("pruned", "diverged"):
            trial.set_user_attr("reason", result.reason or result.status)
            raise optuna.TrialPruned(result.reason or result.status)
        values = [e[self.objective] for e in result.epochs
                  if e.get(self.objective) is not None and math.isfinite(e[self.objective])]
        if not values:
            raise RuntimeError(f"run {cfg.run_id} logged no {self.objective}")
        best = max(values)
        trial.set_user_attr("best_epoch" + suffix, 1 + values.index(best))
        return best


def _worker_study(storage: Any, name: str, objective: Objective, sampler: str, pruner: str, epochs: int,
                  seed: int | None) -> optuna.Study:
    """Study ``name`` as this worker samples and prunes it. A rerun with the same --seed must not replay the
    first run's parameters: the sampler's seed also depends on how many trials the study already holds."""
    if seed is not None:
        existing = len(optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False))
        seed = int(hashlib.sha256(f"{seed}/{existing}".encode()).hexdigest()[:8], 16)
    return optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(sampler, objective.space, seed),
                             pruner=make_pruner(pruner, epochs))


def run_worker(storage_spec: str, name: str, objective: Objective, *, cap: int | None,
               timeout: float | None = None, heartbeat_interval: int = 30, grace_period: int = 90,
               sampler: str = "tpe", pruner: str = "median", epochs: int = 10, seed: int | None = None,
               log: Any = print) -> int:
    """Run trials of study ``name`` until the cap, the timeout or the grid is exhausted.

    Returns the number of trials this worker ran.
    """
    study = _worker_study(open_storage(storage_spec, heartbeat_interval, grace_period), name, objective,
                          sampler, pruner, epochs, seed)
    started, ran = time.monotonic(), 0
    while True:
        if timeout is not None and time.monotonic() - started > timeout:
            log(f"{name}: timeout reached")
            break
        lock = study_lock(storage_spec, name)
        lock.__enter__()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                lock.__exit__(None, None, None)

        try:
            # RDB storages: mark trials of dead workers failed and queue their retries, under the
            # lock, so that the retry is counted before the cap is checked.
            with experimental_ok():
                optuna.storages.fail_stale_trials(study)
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if cap is not None and counted_trials(study) >= cap and not waiting:
                break
            if sampler == "grid" and study.sampler.is_exhausted(study) and not waiting:  # type: ignore[attr-defined]
                break

            def objective_unlocked(trial: optuna.Trial) -> float:
                release()  # the trial exists now: let other workers create theirs
                return objective(trial)

            with experimental_ok():  # the heartbeat thread
                study.optimize(objective_unlocked, n_trials=1, catch=(Exception,), gc_after_trial=True)
            ran += 1
        finally:
            release()
    return ran


def best_trial_config(study: optuna.Study, objective: Objective) -> dict[str, Any] | None:
    """The best trial's config as a YAML-ready dict of run-defining keys (None if no trial completed)."""
    try:
        best = study.best_trial
    except ValueError:
        return None
    values = {**objective.fixed, **best.params, **objective.overrides}
    cfg = Config.from_dict(values).validate()
    return cfg.rerun_values()
