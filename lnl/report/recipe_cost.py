"""What a recipe costs per (sigma^2, seed), split into phases, on the machine that ran it (issue 38 item 4).

A system's run may start from a pretrained one (``init_from``: LNL and BlindEye from the Baseline), so its
wall time is two phases: the pretrained run's, then its own; each phase is training plus the evaluation
after every epoch. Each is priced at the median of its epochs (training and evaluation apart) times its
epoch count, so that a pause or a neighbour on a shared machine does not count; the mean over seeds is
reported in minutes. The machine is what the record names: the CPU model with its widest bf16/vector
extension (``env.device_name``, recorded since this table exists; older records say "model not recorded"),
the precision and the thread count, or the GPU. A run resumed on another machine is priced per stretch
(:func:`stretches`) and its row names each machine in order.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["recipe", "method", "color_var", "seeds", "machine", "pretrained", "pretrained_min", "epochs",
           "train_min", "eval_min", "total_min"]
_UNNAMED_CPUS = {"", "x86_64", "aarch64", "i386", "arm64"}  # platform.processor() / machine(): no model


# Records written before they named each machine (``machines``) name only the last. Some GPU runs stopped at a
# deadline were finished on a 2-core CPU: their first epochs ran at GPU speed. Those are recognised by that
# speed: a recorded CPU, and earlier epochs all under GPU_EPOCH_S and at least MOVED_RATIO times faster than
# the rest (a 2-core CPU takes 10 s or more per epoch of these networks; a busy CPU only gets slower).
GPU_EPOCH_S, MOVED_RATIO = 8.0, 5.0
UNRECORDED = "a GPU not recorded (by its epoch times)"


def machine(env: dict[str, Any]) -> str:
    """Where a run ran (its record's ``env``, or an entry of ``machines``), for a reader: e.g.
    ``AMD EPYC (AVX-512 bf16), bf16, 2 threads``."""
    env = env or {}
    if env.get("device", "cpu").startswith("cuda"):
        return f"{env.get('device_name') or 'GPU'}, {env.get('precision', '?')}"
    name = env.get("device_name") or ""
    name = "CPU (model not recorded)" if name in _UNNAMED_CPUS else name
    threads = env.get("threads", "?")
    return f"{name}, {env.get('precision', '?')}, {threads} thread{'' if threads == 1 else 's'}"


def stretches(record: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(machine, epochs) per stretch of ``record`` trained on one machine, in order: from its ``machines``, or
    for an older record the whole run on ``env``'s machine unless its first epochs ran at GPU speed."""
    epochs = record.get("epochs") or []
    history = record.get("machines")
    if history:
        bounds = [1] + [m["from_epoch"] for m in history[1:]] + [len(epochs) + 1]
        parts = [(machine(m), [e for e in epochs if lo <= e["epoch"] < hi])
                 for m, lo, hi in zip(history, bounds, bounds[1:])]
        return [(where, part) for where, part in parts if part]
    env = record.get("env") or {}
    times = [e.get("time/epoch_s", 0.0) for e in epochs]
    if env.get("device", "cpu") == "cpu":
        for k in range(1, len(times)):
            if max(times[:k]) < min(GPU_EPOCH_S, min(times[k:])) and \
                    np.median(times[k:]) >= MOVED_RATIO * np.median(times[:k]):
                return [(UNRECORDED, epochs[:k]), (machine(env), epochs[k:])]
    return [(machine(env), epochs)] if epochs else []


def where(record: dict[str, Any]) -> str:
    """The machine of a run, or its machines in order (``A, then B``): seeds that moved alike share a row."""
    return ", then ".join(name for name, _ in stretches(record))


def phase_minutes(record: dict[str, Any]) -> tuple[float, float]:
    """(training, evaluation) minutes of ``record``'s epochs: per stretch on one machine, the median per epoch
    times their count; evaluation counts the scored epochs only (``eval_every`` may skip some: 0 s recorded)."""
    parts = stretches(record)
    if not parts:
        return float("nan"), float("nan")
    train = sum(float(np.median([e.get("time/epoch_s", 0.0) for e in p])) * len(p) for _, p in parts)
    scored = [[e["time/eval_s"] for e in p if e.get("time/eval_s")] for _, p in parts]
    evaluation = sum(float(np.median(s)) * len(s) for s in scored if s)
    return train / 60, evaluation / 60


def recipe_cost(recipes: dict[str, list[dict[str, Any]]], store: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (recipe, method, sigma^2, machine) of the finished runs of each recipe (``recipes``: its name
    -> the records its sweep file selects): the mean over seeds of the pretrained phase's minutes (that run
    found in ``store`` by ``init.from_run``; NaN when it is not there), the run's own training and evaluation
    minutes, and the total. ``pretrained`` names the method started from, and its machine where that differs."""
    by_id = {r["run_id"]: r for r in store}
    rows = []
    for recipe, records in recipes.items():
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in records:
            if r.get("status") == "finished" and r.get("epochs"):
                c = r["config"]
                groups.setdefault((c["method"], round(float(c["color_var"]), 3), where(r)), []).append(r)
        for (method, cv, ran_on), runs in sorted(groups.items()):
            rows.append(_row(recipe, method, cv, ran_on, runs, by_id))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(recipe: str, method: str, cv: float, machine_name: str, runs: list[dict[str, Any]],
         by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    own = np.array([phase_minutes(r) for r in runs])
    starts = [by_id.get((r.get("init") or {}).get("from_run")) for r in runs]
    named = next((r["config"].get("init_from") for r in runs if r["config"].get("init_from")), "")
    pre = [sum(phase_minutes(p)) if p else float("nan") for p in starts] if named else [0.0] * len(runs)
    elsewhere = sorted({where(p) for p in starts if p and where(p) != machine_name})
    pre_min = float(np.mean(pre))
    return {"recipe": recipe, "method": method, "color_var": cv, "seeds": len(runs), "machine": machine_name,
            "pretrained": named + (f", on {' / '.join(elsewhere)}" if elsewhere else ""), "pretrained_min": pre_min,
            "epochs": int(np.median([len(r["epochs"]) for r in runs])),
            "train_min": float(own[:, 0].mean()), "eval_min": float(own[:, 1].mean()),
            "total_min": pre_min + float(own.sum(axis=1).mean())}


def markdown(table: pd.DataFrame) -> str:
    """The table for a page: minutes per (sigma^2, seed), phases apart."""
    lines = ["Minutes per (σ², seed) on the machine that ran it, mean over seeds: the pretrained phase (the run it "
             "starts from, training and evaluation), then its own epochs' training and evaluation; each phase "
             "priced at its median epoch.", "",
             "| recipe | system | σ² | seeds | machine | pretrained phase | own epochs | training | evaluation | "
             "total |", "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for row in table.itertuples():
        pre = "—" if not row.pretrained else ("not in store" if np.isnan(row.pretrained_min)
                                              else f"{row.pretrained_min:.1f} ({row.pretrained})")
        total = "—" if np.isnan(row.total_min) else f"{row.total_min:.1f}"
        lines.append(f"| {row.recipe} | {row.method} | {row.color_var:.3f} | {row.seeds} | {row.machine} | {pre} | "
                     f"{row.epochs} | {row.train_min:.1f} | {row.eval_min:.1f} | {total} |")
    return "\n".join(lines) + "\n"
