"""The front page's two figures: accuracy against σ² per system, and each system against its Baseline's
accuracy (:mod:`lnl.analysis.equal_baseline`), ours solid and the paper's dashed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lnl.analysis.headline import names
from lnl.analysis.paper import LEVELS, paper


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    """PNG without the matplotlib version in its metadata (a rebuild changes the file only if the plot does)."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return path


def equal_baseline(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """System accuracy against Baseline accuracy, ours (solid) and the paper's (dashed), one panel per system
    of ``rows`` (:func:`lnl.analysis.equal_baseline.table`)."""
    plt = _pyplot()
    ref = paper()
    systems = list(dict.fromkeys((r["system"], r["method"]) for r in rows))
    fig, axes = plt.subplots(1, len(systems), figsize=(3.3 * len(systems), 3.1), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, (name, method) in zip(axes, systems):
        ax.plot([ref[("baseline", cv)] for cv in LEVELS], [ref[(method, cv)] for cv in LEVELS], "o--", color="0.4",
                label="paper")
        mine = [(r["baseline"], r["ours"]) for r in rows if r["method"] == method]
        if mine:
            ax.plot(*zip(*mine), "o-", color="C1" if method == "lnl" else "C0", label="ours")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("Baseline unbiased test accuracy", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("system's unbiased test accuracy", fontsize=8)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def accuracy_figure(table_rows: list[dict[str, Any]], path: str | Path, rule: str = "last") -> Path:
    """Unbiased test accuracy against σ² per system: ours (mean ± std over seeds, solid) and the paper (dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, name in enumerate(names(table_rows)):
        mine = [r for r in table_rows if r["system"] == name and r["rule"] == rule]
        have = [r for r in mine if r["mean"] is not None]
        ax.errorbar([r["color_var"] for r in have], [r["mean"] for r in have],
                    yerr=[r["std"] or 0.0 for r in have], fmt="o-", color=f"C{i}", capsize=2, label=f"{name} (ours)")
        if all(r["paper"] is None for r in mine):
            continue
        ax.plot([r["color_var"] for r in mine], [r["paper"] for r in mine], "s--", color=f"C{i}", alpha=0.6,
                label=f"{name} (paper)")
    ax.set_xlabel("color variance σ²")
    ax.set_ylabel(f"unbiased test accuracy (`{rule}`)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return _save(fig, path)
