"""The default palette against digit 9's mean read off the paper's figure (NOTES item 24), seed by seed.

For every (σ², seed) with a finished run in ``palette_fig9/records``: the same system on the default palette
(the headline's runs: ``lnl40/`` and ``baseline100/``, fixed by folder and settings as in
``headline_table.py``) and on the figure's 9, at the `last` epoch (LNL also at its `val_unbiased` pick),
next to the paper. Then, per σ², the means over the seeds both palettes have, and Gray and LNL against the paper
at equal Baseline accuracy (``iso_baseline.paper_at``) on each palette's own Baseline. Read-only; from the
repository root:

    .venv/bin/python reports/paper_reproduction/palette_fig9/compare.py > reports/paper_reproduction/palette_fig9/compare.md
"""
from __future__ import annotations

import statistics as st
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from headline_table import PAPER, runs_of  # noqa: E402
from iso_baseline import paper_at  # noqa: E402

# (label, method, settings, default palette's folders); the figure's runs are all in palette_fig9/records
SYSTEMS = (
    ("Baseline (100 epochs)", "baseline", {"epochs": 100}, ("lnl40", "baseline100")),
    ("Gray (100 epochs)", "gray", {"epochs": 100}, ("baseline100",)),
    ("LNL λ 0.01, μ 0.1 (40 epochs)", "lnl", {"epochs": 40, "lambda": 0.01, "mu": 0.1}, ("lnl40",)),
)


def both(method: str, settings: dict, folders: tuple) -> tuple[dict, dict]:
    """σ² -> seed -> (last, val_unbiased pick) on the default palette and on the figure's 9."""
    default = runs_of(method, {**settings, "palette": "default"}, folders)
    fig9 = runs_of(method, settings, ("palette_fig9",))
    return default, fig9


def seed_rows() -> list[str]:
    lines = ["| σ² | seed | system | default palette | digit 9 from the figure | Δ | paper |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    for label, method, settings, folders in SYSTEMS:
        default, fig9 = both(method, settings, folders)
        for cv in sorted(fig9):
            for seed in sorted(fig9[cv]):
                new = fig9[cv][seed]
                old = default.get(cv, {}).get(seed)
                pick = method == "lnl"
                fmt = (lambda v: f"{v[0]:.4f} ({v[1]:.4f})") if pick else (lambda v: f"{v[0]:.4f}")
                delta = f"{new[0] - old[0]:+.4f}" if old else "—"
                lines.append(f"| {cv:.3f} | {seed} | {label}{' `last` (pick)' if pick else ''} | "
                             f"{fmt(old) if old else '—'} | {fmt(new)} | {delta} | {PAPER[(method, cv)]:.4f} |")
    return lines


def level_rows() -> list[str]:
    base_default, base_fig9 = both(*SYSTEMS[0][1:])
    lines = ["| σ² | system | seeds | palette | Baseline | system (`last`) | paper's system at that Baseline "
             "| Δ at equal Baseline | Δ at equal σ² |", "|---:|---|---|---|---:|---:|---:|---:|---:|"]
    for label, method, settings, folders in SYSTEMS[1:]:
        sys_default, sys_fig9 = both(method, settings, folders)
        for cv in sorted(sys_fig9):
            seeds = sorted(set(sys_fig9[cv]) & set(base_fig9.get(cv, {})) & set(sys_default.get(cv, {}))
                           & set(base_default.get(cv, {})))
            if not seeds:  # no seed with all four runs: nothing to compare at this level yet
                continue
            for name, base, ours in (("default", base_default, sys_default),
                                     ("digit 9 from the figure", base_fig9, sys_fig9)):
                b = st.mean(base[cv][s][0] for s in seeds)
                m = st.mean(ours[cv][s][0] for s in seeds)
                paper, extrap = paper_at(method, b)
                lines.append(f"| {cv:.3f} | {label} | {' '.join(map(str, seeds))} | {name} | {b:.4f} | {m:.4f} | "
                             f"{paper:.4f}{' (extrap.)' if extrap else ''} | {m - paper:+.4f} | "
                             f"{m - PAPER[(method, cv)]:+.4f} |")
    return lines


def main() -> None:
    print("\n".join(seed_rows() + [""] + level_rows()))


if __name__ == "__main__":
    main()
