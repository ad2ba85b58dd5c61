"""Each system against the paper at the same *Baseline accuracy*, not at the same σ².

How σ² maps onto the colour jitter is uncertain (the authors never published their generator), and our
100-epoch Baseline sits above the paper's row at every σ²: at one σ² our data are less biased than the
authors'. The Baseline's unbiased accuracy measures how biased a data set is, so this compares each system
where the two Baselines are equally fooled: at every σ² we have, our system's mean beside the paper's system at
the Baseline accuracy ours reached, read off the paper's seven (Baseline, system) pairs by linear
interpolation (outside their range, the nearest segment's line, marked extrapolated). A comparison of curves,
not a result at any one σ² of the paper's.
"""
from __future__ import annotations

import statistics as st
from typing import Any, Iterable

from lnl.analysis.headline import seed_values, systems_of
from lnl.analysis.paper import LEVELS, paper


def paper_at(method: str, baseline_acc: float) -> tuple[float, bool]:
    """The paper's ``method`` accuracy at a given Baseline accuracy, and whether that is an extrapolation."""
    ref = paper()
    points = sorted((ref[("baseline", cv)], ref[(method, cv)]) for cv in LEVELS)
    inside = points[0][0] <= baseline_acc <= points[-1][0]
    pairs = list(zip(points, points[1:]))
    # outside the paper's range: the nearest segment's line (the curves flatten toward 1, so this is the
    # cautious extrapolation; the line through the end points would ask more of ours)
    (x0, y0), (x1, y1) = next(((a, b) for a, b in pairs if a[0] <= baseline_acc <= b[0]),
                              pairs[0] if baseline_acc < points[0][0] else pairs[-1])
    return y0 + (y1 - y0) * (baseline_acc - x0) / (x1 - x0), not inside


def table(records: list[dict[str, Any]], rule: str = "last",
          systems: Iterable[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Per system (not the Baseline, nor one the paper did not run) and σ² where both ran: our Baseline's and
    system's means, n, the paper's system at our Baseline's accuracy, whether that is extrapolated, and the
    paper's system at equal σ². ``systems``: (name, method) pairs, the paper's four by default."""
    values = seed_values(records, rule)
    out = []
    for name, method in systems if systems is not None else systems_of():
        if method == "baseline" or (method, LEVELS[0]) not in paper():
            continue
        for cv in LEVELS:
            base, mine = values.get(("baseline", cv)), values.get((method, cv))
            if not base or not mine:
                continue
            base_mean = st.mean(base.values())
            ref, extrapolated = paper_at(method, base_mean)
            out.append({"system": name, "method": method, "color_var": cv, "baseline": base_mean,
                        "ours": st.mean(mine.values()), "n": len(mine), "paper_at_baseline": ref,
                        "extrapolated": extrapolated, "paper_at_level": paper().get((method, cv))})
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| system | σ² | our Baseline | ours (`last`) | paper at that Baseline accuracy | Δ at equal Baseline "
             "| Δ at equal σ² |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        note = " (extrap.)" if r["extrapolated"] else ""
        lines.append(f"| {r['system']} | {r['color_var']:.3f} | {r['baseline']:.3f} | {r['ours']:.3f} ({r['n']}) | "
                     f"{r['paper_at_baseline']:.3f}{note} | {r['ours'] - r['paper_at_baseline']:+.3f} | "
                     f"{r['ours'] - r['paper_at_level']:+.3f} |")
    return "\n".join(lines) + "\n"
