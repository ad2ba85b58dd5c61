"""The headline table: each system per σ², ours as mean ± std over seeds (n) beside the paper.

The systems are the methods the sweep file names (``sweeps/headline.yaml``: the paper's four; a method the
paper did not run gets a row of ours without the paper's and the difference lines). Rows come from the runs
the sweep file selects, finished runs only, one value per
seed under a selection rule (:func:`lnl.selection.select_epoch`): ``last``, the final epoch, which uses
no unbiased data and is the headline's rule; ``val_unbiased``, each run's epoch of best unbiased validation
accuracy, kept in the CSV for comparison.
"""
from __future__ import annotations

import io
import statistics as st
from typing import Any, Iterable

from lnl.analysis.paper import LEVELS, paper
from lnl.selection import select_epoch

PAPER_METHODS = ("baseline", "blind_eye", "gray", "lnl")  # the LNL paper's four systems (Fig. 4)
RULES = ("last", "val_unbiased")
CSV_COLUMNS = ("system", "rule", "color_var", "mean", "std", "n", "paper", "diff")


# each method's ``bias_knowledge`` -> (verb for one system, for several, the rest of the clause)
_KNOWLEDGE = {"labels": ("trains", "train", "against each pixel's colour label (bias labels)"),
              "input": ("knows", "know", "that colour is the bias and sees gray images"),
              "none": ("uses", "use", "no bias labels")}


def systems_of(methods: Iterable[str] = PAPER_METHODS) -> tuple[tuple[str, str], ...]:
    """(display name, method) per method, in the given order (each class's ``display_name``)."""
    from lnl.methods import METHODS  # lazily: the registry imports torch and every method

    return tuple((METHODS.get(m).display_name or m, m) for m in dict.fromkeys(methods))


def and_list(names: list[str]) -> str:
    """``["A"]`` -> ``"A"``; ``["A", "B", "C"]`` -> ``"A, B and C"``: system names in a sentence."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def bias_knowledge(systems: Iterable[tuple[str, str]] | None = None) -> str:
    """One sentence: what each system knows of the bias (each method's ``bias_knowledge``), e.g. "BlindEye
    and LNL train against each pixel's colour label (bias labels); Gray knows ...; Baseline uses no bias labels"."""
    from lnl.methods import METHODS

    groups: dict[str, list[str]] = {}
    for name, method in systems or systems_of():
        groups.setdefault(METHODS.get(method).bias_knowledge, []).append(name)
    parts = []
    for kind, (one, several, rest) in _KNOWLEDGE.items():
        names = sorted(groups.get(kind, []))
        if names:
            who = and_list(names)
            parts.append(f"{who} {one if len(names) == 1 else several} {rest}")
    return "What each system knows of the bias: " + "; ".join(parts) + "."


def seed_values(records: list[dict[str, Any]], rule: str) -> dict[tuple[str, float], dict[int, float]]:
    """(method, σ²) -> seed -> unbiased test accuracy at the epoch ``rule`` selects, finished runs only."""
    out: dict[tuple[str, float], dict[int, float]] = {}
    for rec in records:
        if rec.get("status") != "finished":
            continue
        cfg = rec["config"]
        chosen = select_epoch(rec["epochs"], rule)
        if chosen is not None and chosen.get("test/acc") is not None:
            out.setdefault((cfg["method"], round(float(cfg["color_var"]), 3)), {})[int(cfg["seed"])] = \
                float(chosen["test/acc"])
    return out


def rows(records: list[dict[str, Any]], systems: Iterable[tuple[str, str]] | None = None,
         rules=RULES) -> list[dict[str, Any]]:
    """One row per (system, rule, σ²): mean, std (None for n < 2), n, the paper's value and the difference.
    ``systems``: (name, method) pairs in table order, the paper's four by default."""
    out = []
    chosen = tuple(systems) if systems is not None else systems_of()
    for rule in rules:
        values = seed_values(records, rule)
        for name, method in chosen:
            for cv in LEVELS:
                seeds = list(values.get((method, cv), {}).values())
                ref = paper().get((method, cv))
                mean = st.mean(seeds) if seeds else None
                out.append({"system": name, "rule": rule, "color_var": cv, "mean": mean,
                            "std": st.stdev(seeds) if len(seeds) > 1 else None, "n": len(seeds), "paper": ref,
                            "diff": None if mean is None or ref is None else mean - ref})
    return out


def to_csv(table: list[dict[str, Any]]) -> str:
    """``headline.csv``: the columns of :data:`CSV_COLUMNS`, numbers to 4 places, empty where missing."""
    def text(key: str, value: Any) -> str:
        if value is None:
            return ""
        if key == "color_var":
            return f"{value:.3f}"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    buf = io.StringIO()
    buf.write(",".join(CSV_COLUMNS) + "\n")
    for row in table:
        buf.write(",".join(text(k, row[k]) for k in CSV_COLUMNS) + "\n")
    return buf.getvalue()


def names(table: list[dict[str, Any]]) -> list[str]:
    """The systems of a table of :func:`rows`, in its order."""
    return list(dict.fromkeys(r["system"] for r in table))


def markdown(table: list[dict[str, Any]], rule: str = "last") -> str:
    """Systems as rows (ours, then the paper and the difference where the paper ran the system), σ² as
    columns, under one rule."""
    def cell(row: dict[str, Any]) -> str:
        if row["mean"] is None:
            return "—"
        spread = f" ± {row['std']:.3f}" if row["std"] is not None else ""
        return f"{row['mean']:.3f}{spread} ({row['n']})"

    lines = ["| system | | " + " | ".join(f"σ² {cv:.3f}" for cv in LEVELS) + " |",
             "|---|---|" + "---:|" * len(LEVELS)]
    for name in names(table):
        mine = {r["color_var"]: r for r in table if r["system"] == name and r["rule"] == rule}
        lines.append(f"| **{name}** | ours | " + " | ".join(cell(mine[cv]) for cv in LEVELS) + " |")
        if all(mine[cv]["paper"] is None for cv in LEVELS):
            continue
        lines.append("| | paper | " + " | ".join("—" if mine[cv]["paper"] is None else f"{mine[cv]['paper']:.3f}"
                                                 for cv in LEVELS) + " |")
        lines.append("| | Δ | " + " | ".join("—" if mine[cv]["diff"] is None else f"{mine[cv]['diff']:+.3f}"
                                             for cv in LEVELS) + " |")
    return "\n".join(lines) + "\n"
