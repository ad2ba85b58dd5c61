"""Comparison tables: load -> select -> aggregate -> render (small functions over pandas).

Model selection is an explicit, named rule. Each rule picks an epoch within a run
and, when a method has several configurations at a bias level (a sweep or a
study), a configuration by the same validation signal:

============  ==============================  =============================================
rule          epoch of each run               configuration among several
============  ==============================  =============================================
last          the final epoch                 highest mean final ``val_biased/acc``
val_biased    best ``val_biased/acc``         highest mean best ``val_biased/acc``
val_unbiased  best ``val_unbiased/acc``       highest mean best ``val_unbiased/acc``
============  ==============================  =============================================

``val_unbiased`` uses held-out training images recolored at random, i.e. it
assumes access to unbiased validation data; ``last`` and ``val_biased`` do not.
No rule ever looks at the test set. Ties go to the earliest epoch.

Only runs with status ``finished`` enter the numbers; the others are counted and
listed by :func:`status_table`.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lnl.selection import RULE_METRIC, select_epoch

RULE_TEXT = {
    "last": "final epoch of each run (configuration: best mean final val_biased/acc)",
    "val_biased": "epoch with the best biased validation accuracy (no unbiased data used)",
    "val_unbiased": "epoch with the best unbiased validation accuracy "
                    "(uses unbiased held-out data: an oracle-style rule)",
}
PAPER_CSV = Path(__file__).resolve().parent.parent / "resources" / "paper_colored_mnist.csv"
METHOD_ORDER = ("baseline", "blind_eye", "gray", "lnl")  # the paper's order (Fig. 4)


def _not_configuration() -> frozenset[str]:
    """Config keys that describe the experimental condition (seed, method, bias level) or do not change
    what a run computes (the config's own ``identity=False`` fields): not part of a configuration.
    Derived from :class:`lnl.config.Config`, so a new field can't be forgotten here."""
    import dataclasses

    from lnl.config import Config
    from lnl.config_values import public_name as _public

    return frozenset({"seed", "method", "color_var"} | {_public(f.name) for f in dataclasses.fields(Config)
                                                        if not f.metadata.get("identity", True)})


_NOT_CONFIGURATION = _not_configuration()


def paper_results() -> pd.DataFrame:
    """The official numbers (authors' README table of the paper's Fig. 4): method, color_var, test_acc."""
    try:
        df = pd.read_csv(PAPER_CSV)
        df["color_var"] = df["color_var"].round(3)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"the paper's numbers {PAPER_CSV} are missing or unreadable ({type(err).__name__}); "
                         "reinstall the package (pip install -e .)") from None
    return df


def configuration_key(config: dict[str, Any]) -> str:
    """Identity of a configuration: every run-defining key except seed, method and bias level, leaving
    out values equal to the config's default. A record written before a field existed ran with that
    field's default (the rule lnl.config's run ids follow), so it groups with newer runs of the same
    configuration instead of splitting a method's seeds in two."""
    values = {k: v for k, v in config.items() if k not in _NOT_CONFIGURATION and v != _DEFAULTS.get(k, _MISSING)}
    if config.get("init_from"):  # the recipe of the run it starts from (not an identity field: the run id
        values["init_recipe"] = config.get("init_recipe") or config.get("recipe")  # hashes its start instead)
    if str(values.get("palette", "")).endswith(".csv"):  # a palette file, typed absolute or relative
        values["palette"] = "/".join(Path(values["palette"]).parts[-2:])
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _defaults() -> dict[str, Any]:
    from lnl.config import Config

    return Config().to_dict()


_MISSING = object()
_DEFAULTS = _defaults()


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in records:
        c = r["config"]
        rows.append({"run_id": r["run_id"], "method": c["method"], "color_var": round(float(c["color_var"]), 3),
                     "seed": c.get("seed"), "status": r.get("status"), "reason": r.get("reason"),
                     "configuration": configuration_key(c), "study": c.get("study"), "trial": c.get("trial"),
                     "epochs_completed": len(r.get("epochs") or [])})
    return pd.DataFrame(rows, columns=["run_id", "method", "color_var", "seed", "status", "reason",
                                       "configuration", "study", "trial", "epochs_completed"])


def epochs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in records:
        c = r["config"]
        for e in r.get("epochs") or []:
            rows.append({"run_id": r["run_id"], "method": c["method"], "color_var": round(float(c["color_var"]), 3),
                         "seed": c.get("seed"), "status": r.get("status"), **e})
    return pd.DataFrame(rows)


def selected_runs(records: list[dict[str, Any]], rule: str) -> pd.DataFrame:
    """One row per finished run: the selected epoch, its test accuracy and selection score."""
    rows = []
    for r in records:
        if r.get("status") != "finished":
            continue
        chosen = select_epoch(r.get("epochs") or [], rule)
        if chosen is None:
            continue
        c = r["config"]
        rows.append({"run_id": r["run_id"], "method": c["method"], "color_var": round(float(c["color_var"]), 3),
                     "seed": c.get("seed"), "configuration": configuration_key(c), "epoch": chosen["epoch"],
                     "score": chosen.get(RULE_METRIC[rule]), "test_acc": chosen["test/acc"],
                     "confusion": (r.get("confusion") or {}).get(str(int(chosen["epoch"])))})
    return pd.DataFrame(rows, columns=["run_id", "method", "color_var", "seed", "configuration", "epoch", "score",
                                       "test_acc", "confusion"])


def choose_configurations(selected: pd.DataFrame) -> pd.DataFrame:
    """Per (method, color_var), keep the runs of the configuration with the highest mean score."""
    if selected.empty:
        return selected
    means = selected.groupby(["method", "color_var", "configuration"], as_index=False)["score"].mean()
    means = means.sort_values(["method", "color_var", "score", "configuration"], ascending=[True, True, False, True])
    best = means.drop_duplicates(["method", "color_var"])[["method", "color_var", "configuration"]]
    return selected.merge(best, on=["method", "color_var", "configuration"])


def aggregate(selected: pd.DataFrame, error: str = "std") -> pd.DataFrame:
    """mean, std (ddof=1), sem and n of test accuracy per (method, color_var)."""
    if error not in ("std", "sem"):
        raise ValueError("error must be 'std' or 'sem'")
    if selected.empty:
        return pd.DataFrame(columns=["method", "color_var", "mean", "std", "sem", "n", "error"])
    g = selected.groupby(["method", "color_var"])["test_acc"]
    out = g.agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else float("nan"), n="count").reset_index()
    out["sem"] = out["std"] / np.sqrt(out["n"])
    out["error"] = out[error]
    return out


def comparison(records: list[dict[str, Any]], rule: str, error: str = "std") -> pd.DataFrame:
    """Long table: method, color_var, mean, error, n, paper, diff (ours - paper); every (method, level)
    that appears in our runs or in the paper is a row, missing values stay NaN."""
    chosen = choose_configurations(selected_runs(records, rule))
    stats = aggregate(chosen, error)
    paper = paper_results().rename(columns={"test_acc": "paper"})
    runs = runs_frame(records)
    ours_methods = set(runs["method"])
    levels = sorted(set(runs["color_var"]) | set(paper["color_var"]))
    methods = [m for m in METHOD_ORDER if m in ours_methods] + sorted(ours_methods - set(METHOD_ORDER))
    grid = pd.DataFrame([(m, cv) for m in methods for cv in levels], columns=["method", "color_var"])
    out = grid.merge(stats, on=["method", "color_var"], how="left").merge(paper, on=["method", "color_var"],
                                                                          how="left")
    out["diff"] = out["mean"] - out["paper"]
    out["rule"] = rule
    out["error_kind"] = error
    out["n"] = out["n"].fillna(0).astype(int)
    # Runs attempted per cell: those of the chosen configuration (finished or not); for a cell with
    # no finished run, every run attempted there.
    keys = chosen[["method", "color_var", "configuration"]].drop_duplicates()
    of_chosen = runs.merge(keys, on=["method", "color_var", "configuration"])
    attempted = of_chosen.groupby(["method", "color_var"]).size().rename("runs").reset_index()
    everything = runs.groupby(["method", "color_var"]).size().rename("all_runs").reset_index()
    out = out.merge(attempted, on=["method", "color_var"], how="left").merge(everything, on=["method", "color_var"],
                                                                             how="left")
    out["runs"] = out["runs"].fillna(out["all_runs"])
    out["runs"] = out["runs"].fillna(0).astype(int)
    return out[["rule", "method", "color_var", "mean", "error", "error_kind", "n", "runs", "paper", "diff"]]


def prefix_is_a_run(config: dict[str, Any]) -> bool:
    """Whether a run's first L epochs are exactly what an L-epoch run of the same configuration computes:
    true when no schedule depends on the run's length (a step or constant lr, a constant reversal scale);
    a cosine lr or DANN's ramp of mu stretch over the whole run, so their prefixes are not shorter runs."""
    return config.get("lr_schedule", "step") != "cosine" and config.get("mu_schedule", "constant") == "constant"


def _epoch_cost_s(record: dict[str, Any]) -> float:
    """Seconds one epoch of ``record`` costs, training and evaluation: the median over its epochs, so that
    a pause or a neighbour on a shared machine does not count."""
    costs = [e.get("time/epoch_s", 0.0) + e.get("time/eval_s", 0.0) for e in record.get("epochs") or []]
    return float(np.median(costs)) if costs else float("nan")


def time_to_accuracy(records: list[dict[str, Any]], metric: str = "val_unbiased/acc") -> pd.DataFrame:
    """Issue 12 item 7: per (method, level, configuration), the fewest epochs whose mean ``metric`` over seeds
    reaches the paper's test accuracy for that row, and what those epochs cost.

    The choice reads validation data only (the paper's number is a fixed target); the test accuracy at the
    chosen length is then reported, mean and std over the same seeds. An L-epoch recipe is read off the
    first L epochs of longer runs, so only configurations whose prefixes *are* shorter runs
    (:func:`prefix_is_a_run`) and with at least two seeds enter. Cost: L x the run's median epoch (training +
    evaluation) plus, for a run started from a pretrained one (``init_from``), that run's whole length at
    its median epoch, when its record is among ``records``; the mean over seeds, in minutes. A row whose
    mean never reaches the target has no length and says how close its best epoch came."""
    by_id = {r["run_id"]: r for r in records}
    paper = {(m, round(cv, 3)): acc for m, cv, acc in paper_results()[["method", "color_var", "test_acc"]].values}
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        c = r["config"]
        if r.get("status") == "finished" and prefix_is_a_run(c):
            groups.setdefault((c["method"], round(float(c["color_var"]), 3), configuration_key(c)), []).append(r)
    rows = []
    for (method, cv, conf), runs in sorted(groups.items()):
        target = paper.get((method, cv))
        if target is None or len(runs) < 2 or method == "baseline":  # the baseline's row is no target to reach
            continue
        length = min(len(r["epochs"]) for r in runs)
        # dtype float: an epoch that was not scored (eval_every) holds None, read as NaN
        curves = np.array([[e.get(metric) for e in r["epochs"][:length]] for r in runs], dtype=float)
        tests = np.array([[e.get("test/acc") for e in r["epochs"][:length]] for r in runs], dtype=float)
        mean_curve = curves.mean(axis=0)
        if np.isnan(mean_curve).all():
            continue
        reached = np.flatnonzero(mean_curve >= target)
        at = int(reached[0]) if reached.size else int(np.nanargmax(mean_curve))
        minutes = []
        for r in runs:
            pre = by_id.get((r.get("init") or {}).get("from_run"))
            pre_s = _epoch_cost_s(pre) * len(pre["epochs"]) if pre else 0.0
            minutes.append(((at + 1) * _epoch_cost_s(r) + pre_s) / 60)
        rows.append({"method": method, "color_var": cv, "configuration": conf, "seeds": len(runs),
                     "reached": bool(reached.size), "epochs": at + 1 if reached.size else None,
                     "best_epoch": None if reached.size else at + 1, "val_mean": float(mean_curve[at]),
                     "test_mean": float(tests[:, at].mean()), "test_std": float(tests[:, at].std(ddof=1)),
                     "paper": target, "minutes": float(np.mean(minutes)),
                     "pretrained": all((r.get("init") or {}).get("from_run") in by_id for r in runs)})
    return pd.DataFrame(rows, columns=["method", "color_var", "configuration", "seeds", "reached", "epochs",
                                       "best_epoch", "val_mean", "test_mean", "test_std", "paper", "minutes",
                                       "pretrained"])


def pooled_confusion(group: pd.DataFrame) -> np.ndarray:
    """The sum of the rows' confusion matrices (true digit x predicted), as floats: the selected epochs of
    one (method, color_var) cell pooled over its seeds, so each digit counts every test image once per seed."""
    return np.sum([np.asarray(c, dtype=float) for c in group["confusion"]], axis=0)


def per_class(selected: pd.DataFrame) -> pd.DataFrame:
    """Each digit's unbiased test accuracy per (method, color_var), from the selected epochs' confusion
    matrices of the chosen configuration (``choose_configurations``) summed over its seeds: the diagonal of
    the confusion grid, as numbers. A method can reach a fair mean while one digit fails: e.g. a digit
    whose training color is dark is learned as "dim", and is missed when the test set shows it bright."""
    cols = ["method", "color_var", "seeds"] + [str(d) for d in range(10)] + ["weakest"]
    rows = []
    for (method, cv), group in selected.dropna(subset=["confusion"]).groupby(["method", "color_var"], sort=True):
        cm = pooled_confusion(group)
        acc = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
        rows.append({"method": method, "color_var": cv, "seeds": len(group),
                     **{str(d): float(a) for d, a in enumerate(acc)}, "weakest": int(np.argmin(acc))})
    return pd.DataFrame(rows, columns=cols)


def calibration(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Which reading of sigma^2 (``color_noise``) matches the paper, judged on the Baseline and Gray rows.

    One row per (reading, method, color_var): mean unbiased test accuracy at the final epoch over
    the finished runs, the paper's number and the difference. The reading is ``color_noise``, with
    `` + <color_bounds>`` appended when the jitter is not clipped (e.g. ``per_channel_var + resample``).
    LNL runs are ignored on purpose: the data are calibrated on the methods that have no stake in the
    comparison.
    """
    rows = []
    for r in records:
        c = r["config"]
        if r.get("status") != "finished" or c["method"] not in ("baseline", "gray") or not r.get("epochs"):
            continue
        bounds = c.get("color_bounds", "clip")
        reading = c.get("color_noise", "per_channel_var") + ("" if bounds == "clip" else f" + {bounds}")
        rows.append({"color_noise": reading, "method": c["method"],
                     "color_var": round(float(c["color_var"]), 3), "test_acc": select_epoch(r["epochs"], "last")
                     ["test/acc"]})
    cols = ["color_noise", "method", "color_var", "mean", "n", "paper", "diff"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows).groupby(["color_noise", "method", "color_var"], as_index=False)["test_acc"].agg(
        mean="mean", n="count")
    paper = paper_results().rename(columns={"test_acc": "paper"})
    df = df.merge(paper, on=["method", "color_var"], how="left")
    df["diff"] = df["mean"] - df["paper"]
    return df[cols]


def status_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Runs that did not finish (diverged, failed, pruned, running), with their reasons."""
    runs = runs_frame(records)
    return runs[runs["status"] != "finished"][["run_id", "method", "color_var", "seed", "status", "reason"]]


def studies_table(records: list[dict[str, Any]], objective: str = "val_unbiased/acc") -> pd.DataFrame:
    """Per Optuna study: trials by status, and the best trial's value and searched parameters.

    A trial trained with several seeds (``--seeds-per-trial``) has one run per seed (``<trial run id>-seed<k>``):
    it counts once, finished only when all its runs are, and its value is what the study maximized, the mean
    over its runs of each run's best-epoch ``objective``. Runs are grouped by run id, not by the recorded trial
    number: a retried trial continues its dead trial's runs, whose records may carry either number."""
    by_study: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in records:
        study = r["config"].get("study")
        if study and r["config"].get("trial") is not None:
            trial_id = re.sub(r"-seed\d+$", "", r["run_id"])
            by_study.setdefault(study, {}).setdefault(trial_id, []).append(r)
    rows = []
    for study, trials in sorted(by_study.items()):
        firsts = [min(runs, key=lambda r: len(r["run_id"])) for runs in trials.values()]  # each trial's seed-0 run
        statuses = [next((r.get("status") for r in runs if r.get("status") != "finished"), "finished")
                    for runs in trials.values()]
        counts = pd.Series(statuses).value_counts().to_dict()
        keys = [k for k in firsts[0]["config"] if k not in _NOT_CONFIGURATION
                and len({json.dumps(r["config"].get(k), default=str) for r in firsts}) > 1]
        scored = [(float(np.mean([max((e.get(objective) or 0.0) for e in r["epochs"]) for r in runs])), first)
                  for runs, first, status in zip(trials.values(), firsts, statuses)
                  if status == "finished" and all(r.get("epochs") for r in runs)]
        row = {"study": study, "method": firsts[0]["config"]["method"],
               "color_var": round(float(firsts[0]["config"]["color_var"]), 3), "trials": len(trials),
               "seeds": max(len(runs) for runs in trials.values()), "finished": counts.get("finished", 0),
               "pruned": counts.get("pruned", 0) + counts.get("diverged", 0),
               "failed": counts.get("failed", 0) + counts.get("running", 0)}
        if scored:
            value, best = max(scored, key=lambda t: t[0])
            row.update({"best_trial": best["config"]["trial"], f"best {objective}": round(value, 4),
                        "best_params": ", ".join(f"{k}={best['config'][k]}" for k in keys)})
        rows.append(row)
    return pd.DataFrame(rows)


