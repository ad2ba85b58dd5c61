"""A study's own comparison: its sweep file's axes as rows, seeds pooled.

A study sweep varies a few settings (its ``values`` lists) over seeds; this table shows, per combination of
the varied settings (seed excluded), how many seeds finished, the unbiased test accuracy under ``last`` and at
each run's best ``val_unbiased`` epoch, and the final ``val_unbiased/acc``, the validation number a choice
between the rows may use (never the test set).
"""
from __future__ import annotations

import statistics as st
from typing import Any

from lnl.analysis.paper import paper
from lnl.config import Config
from lnl.selection import select_epoch


def axes(sweep: dict[str, Any]) -> list[str]:
    """The parameters a sweep varies, seed excluded, in the file's order."""
    return [k for k, spec in sweep["parameters"].items() if isinstance(spec, dict) and "values" in spec and k != "seed"]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{st.mean(values):.3f}" + (f" ± {st.stdev(values):.3f}" if len(values) > 1 else "")


def markdown(sweep: dict[str, Any], found: list[tuple[Config, dict[str, Any] | None]]) -> str:
    """The comparison table of a study (``found``: each grid point's config and record)."""
    names = axes(sweep)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    first: dict[tuple, Config] = {}
    for cfg, record in found:
        key = tuple(str(cfg.to_dict()[k]) for k in names)
        first.setdefault(key, cfg)
        if record is not None and record.get("status") == "finished":
            groups.setdefault(key, []).append(record)
    lines = ["| " + " | ".join(names + ["n", "test (`last`)", "test (`val_unbiased` pick)",
                                        "final val_unbiased", "paper"]) + " |",
             "|" + "---|" * len(names) + "---:|" * 5]
    for key, cfg in first.items():
        recs = groups.get(key, [])
        last = [select_epoch(r["epochs"], "last")["test/acc"] for r in recs]
        pick = [select_epoch(r["epochs"], "val_unbiased")["test/acc"] for r in recs]
        val = [r["epochs"][-1]["val_unbiased/acc"] for r in recs]
        ref = paper().get((cfg.method, round(cfg.color_var, 3)))
        total = sum(1 for c, _ in found if tuple(str(c.to_dict()[k]) for k in names) == key)
        lines.append("| " + " | ".join(list(key) + [f"{len(recs)}/{total}", _mean_sd(last), _mean_sd(pick),
                                                    _mean_sd(val), "—" if ref is None else f"{ref:.4f}"]) + " |")
    return "\n".join(lines) + "\n"
