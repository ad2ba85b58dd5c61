"""A recipe beside the headline, per level and seed, held to issue 38's criterion.

A faster recipe (``sweeps/fast.yaml``, recipe ``fast``) must not change what the headline measures: its LNL
3-seed mean is at or above the headline's minus :data:`LNL_MARGIN`, and its Baseline, a calibration row, is
within :data:`BASELINE_TOLERANCE` of the headline's Baseline, at every level it covers. Values are unbiased test
accuracies at the epoch the headline's rule (``last``) selects; nothing here is chosen on them.
"""
from __future__ import annotations

import statistics as st
from typing import Any, Iterable

from lnl.analysis.headline import PAPER_METHODS, seed_values, systems_of

LNL_MARGIN = 0.005
BASELINE_TOLERANCE = 0.01
JUDGED = {"lnl", "baseline"}  # the systems the criterion holds a level to
RULE = "last"


def rows(candidate: list[dict[str, Any]], reference: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (system, σ²) the candidate's finished runs cover: per-seed values of both recipes, their
    means and n, the difference, and whether the criterion holds there (None for systems it does not cover,
    or while either side has fewer than 3 seeds)."""
    mine, theirs = seed_values(candidate, RULE), seed_values(reference, RULE)
    out = []
    for name, method in systems_of(PAPER_METHODS + tuple(sorted({m for m, _ in mine}))):
        for (m, cv), seeds in sorted(mine.items()):
            if m != method:
                continue
            ref = theirs.get((m, cv), {})
            mean, ref_mean = st.mean(seeds.values()), (st.mean(ref.values()) if ref else None)
            diff = None if ref_mean is None else mean - ref_mean
            out.append({"system": name, "method": method, "color_var": cv, "seeds": dict(sorted(seeds.items())),
                        "reference_seeds": dict(sorted(ref.items())), "mean": mean, "reference": ref_mean,
                        "diff": diff, "meets": _meets(method, diff, len(seeds), len(ref))})
    return out


def _meets(method: str, diff: float | None, n: int, n_ref: int) -> bool | None:
    if diff is None or n < 3 or n_ref < 3:
        return None
    if method == "lnl":
        return diff >= -LNL_MARGIN
    if method == "baseline":
        return abs(diff) <= BASELINE_TOLERANCE
    return None


def verdict(table: list[dict[str, Any]], name: str, levels: Iterable[float] = ()) -> str:
    """One sentence: where ``name`` misses the criterion, else the levels where it meets it and those not yet
    judged. A level is met only when every system the criterion names (:data:`JUDGED`) is judged there and
    holds: an LNL row alone, or a Baseline row alone, says nothing of the level. ``levels``: the σ² the
    candidate's sweep covers, so that a level without any finished run is named as not yet judged."""
    failed = [r for r in table if r["meets"] is False]
    if failed:
        return f"`{name}` misses the criterion at " + ", ".join(
            f"{r['system']} σ² {r['color_var']:.3f} ({r['diff']:+.4f})" for r in failed) + "."
    met_by_level: dict[float, set[str]] = {}
    for r in table:
        met_by_level.setdefault(round(r["color_var"], 3), set()).update([r["method"]] if r["meets"] else [])
    met = sorted(cv for cv, methods in met_by_level.items() if methods >= JUDGED)
    pending = sorted(({round(cv, 3) for cv in levels} | set(met_by_level)) - set(met))
    waiting = "σ² " + ", ".join(f"{cv:.3f}" for cv in pending)
    if not met:
        return (f"`{name}` cannot be judged yet: the criterion needs 3 seeds of LNL and Baseline on both sides"
                + (f" ({waiting})." if pending else "."))
    text = f"`{name}` meets the criterion at σ² " + ", ".join(f"{cv:.3f}" for cv in met)
    return text + (f"; {waiting} not yet judged (fewer than 3 seeds of LNL or Baseline on a side)." if pending else ".")


def markdown(table: list[dict[str, Any]], name: str, reference: str = "headline") -> str:
    """Per (system, σ²): each seed of both recipes, the means, the difference and the criterion."""
    lines = [f"Criterion: LNL's 3-seed mean ≥ the {reference}'s − {LNL_MARGIN}; Baseline within ±{BASELINE_TOLERANCE} "
             f"of the {reference}'s (a calibration row). Unbiased test accuracy at each run's final epoch.", "",
             f"| system | σ² | {name} per seed | {name} mean | {reference} per seed | {reference} mean | Δ | criterion |",
             "|---|---:|---|---:|---|---:|---:|---|"]
    for r in table:
        per = ", ".join(f"s{s} {v:.4f}" for s, v in r["seeds"].items())
        ref_per = ", ".join(f"s{s} {v:.4f}" for s, v in r["reference_seeds"].items()) or "—"
        ref = "—" if r["reference"] is None else f"{r['reference']:.4f}"
        diff = "—" if r["diff"] is None else f"{r['diff']:+.4f}"
        meets = {True: "met", False: "**missed**", None: "—"}[r["meets"]]
        lines.append(f"| {r['system']} | {r['color_var']:.3f} | {per} | {r['mean']:.4f} | {ref_per} | {ref} | "
                     f"{diff} | {meets} |")
    return "\n".join(lines) + "\n"
