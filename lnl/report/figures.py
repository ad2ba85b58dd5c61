"""Report figures (matplotlib/seaborn, written as PNG and PDF).

Each function takes data already selected by :mod:`lnl.report.tables`, draws one
figure and returns the paths it wrote.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401  (MaxNLocator)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .tables import pooled_confusion  # noqa: E402

METHOD_COLORS = {"baseline": "#d62728", "gray": "#7f7f7f", "lnl": "#1f77b4", "blind_eye": "#9467bd"}


def _save(fig: plt.Figure, out: Path, stem: str, pdf: bool = True) -> list[Path]:
    """The figure as PNG (for pages) and, with ``pdf``, as PDF (for papers)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png"] + ([out / f"{stem}.pdf"] if pdf else [])
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    if pdf:  # no creation date: a rebuilt report only changes where the figures do
        fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
    return paths


def _color(method: str, i: int) -> str:
    return METHOD_COLORS.get(method, sns.color_palette("tab10")[i % 10])


def confusion_grid(selected: pd.DataFrame, rule: str, out: Path, stem: str = "confusion_grid",
                   pdf: bool = True) -> list[Path]:
    """Row-normalized unbiased-test confusion matrices, methods (rows) x bias levels (columns).

    Each panel sums the matrices of the selected runs (all seeds) before normalizing.
    Cells of 10% or more are annotated in percent.
    """
    cells = selected.dropna(subset=["confusion"])
    methods = list(dict.fromkeys(cells["method"]))
    levels = sorted(cells["color_var"].unique())
    if not methods:
        return []
    size = 2.6
    fig, axes = plt.subplots(len(methods), len(levels), figsize=(size * len(levels) + 1.2, size * len(methods) + 0.8),
                             squeeze=False)
    cmap = sns.color_palette("rocket_r", as_cmap=True)
    for i, method in enumerate(methods):
        for j, cv in enumerate(levels):
            ax = axes[i, j]
            group = cells[(cells["method"] == method) & (cells["color_var"] == cv)]
            if group.empty:
                ax.axis("off")
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
                continue
            cm = pooled_confusion(group)
            norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
            annot = np.where(norm >= 0.1, np.char.mod("%d", np.rint(norm * 100).astype(int)), "")
            sns.heatmap(norm, ax=ax, vmin=0, vmax=1, cmap=cmap, cbar=False, square=True, annot=annot, fmt="",
                        annot_kws={"fontsize": 6}, linewidths=0.2, linecolor="white")
            acc = np.trace(cm) / max(cm.sum(), 1)
            ax.set_title(f"{method}, σ²={cv:.3f}\nacc {acc:.3f} (n={len(group)})", fontsize=8)
            ax.set_xlabel("predicted" if i == len(methods) - 1 else "", fontsize=7)
            ax.set_ylabel("true digit" if j == 0 else "", fontsize=7)
            ax.tick_params(labelsize=6, length=0)
    fig.suptitle(f"Unbiased test confusion matrices (row-normalized, % shown where ≥ 10), selection `{rule}`",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out, stem, pdf)


def accuracy_vs_bias(table: pd.DataFrame, rule: str, out: Path, stem: str = "accuracy_vs_color_var",
                     pdf: bool = True) -> list[Path]:
    """Mean test accuracy vs sigma^2 per method with error bands; the paper's numbers dashed."""
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    error_kind = table["error_kind"].iloc[0]
    for i, method in enumerate(dict.fromkeys(table["method"])):
        sub = table[table["method"] == method].sort_values("color_var")
        color = _color(method, i)
        ours = sub.dropna(subset=["mean"])
        if not ours.empty:
            err = ours["error"].fillna(0.0)
            ax.plot(ours["color_var"], ours["mean"], "o-", color=color, label=f"{method} (ours)")
            ax.fill_between(ours["color_var"], ours["mean"] - err, ours["mean"] + err, color=color, alpha=0.2)
        paper = sub.dropna(subset=["paper"])
        if not paper.empty:
            ax.plot(paper["color_var"], paper["paper"], "--", marker="x", color=color, alpha=0.8,
                    label=f"{method} (paper)")
    ax.set_xlabel("color variance σ² (larger = weaker bias)")
    ax.set_ylabel("unbiased test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    band = "± standard deviation" if error_kind == "std" else "± standard error"
    ax.set_title(f"Test accuracy vs bias level (selection `{rule}`, bands {band})", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, stem, pdf)


def training_curves(epochs: pd.DataFrame, out: Path, stem: str = "training_curves", pdf: bool = True) -> list[Path]:
    """Per method: unbiased and biased validation accuracy and bias-head accuracy vs epoch (mean over seeds)."""
    finished = epochs[epochs["status"] == "finished"] if "status" in epochs else epochs
    if finished.empty:
        return []
    metrics = [("val_unbiased/acc", "val_unbiased acc"), ("val_biased/acc", "val_biased acc"),
               ("bias/acc", "bias-head acc\n(color bins, val_unbiased)")]
    methods = list(dict.fromkeys(finished["method"]))
    levels = sorted(finished["color_var"].unique())
    palette = dict(zip(levels, sns.color_palette("viridis", len(levels))))
    fig, axes = plt.subplots(len(metrics), len(methods), figsize=(3.4 * len(methods) + 1, 2.4 * len(metrics)),
                             squeeze=False, sharex=True)
    for j, method in enumerate(methods):
        sub = finished[finished["method"] == method]
        mean = sub.groupby(["color_var", "epoch"], as_index=False)[[m for m, _ in metrics]].mean()
        for i, (metric, label) in enumerate(metrics):
            ax = axes[i, j]
            for cv in levels:
                line = mean[mean["color_var"] == cv]
                if not line.empty:
                    ax.plot(line["epoch"], line[metric], color=palette[cv], label=f"{cv:.3f}")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            if i == 0:
                ax.set_title(method)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == len(metrics) - 1:
                ax.set_xlabel("epoch")
    axes[0, -1].legend(title="σ²", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Training curves (mean over seeds). Does LNL make color unpredictable from the features? "
                 "Compare the bias-head row.", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, stem, pdf)


def sample_images(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], color_var: float,
                  out: Path, stem: str = "samples", pdf: bool = True) -> list[Path]:
    """Training (biased) vs test (unbiased) coloring at one sigma^2, one row per digit."""
    from lnl.tracking import sample_grid

    fig, axes = plt.subplots(1, 2, figsize=(7.5, 5))
    for ax, (images, labels), title in zip(axes, (train, test), ("training set (biased)", "test set (unbiased)")):
        ax.imshow(sample_grid(images, labels, per_class=8), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_yticks(np.arange(10) * 28 + 14, [str(d) for d in range(10)], fontsize=7)
        ax.set_xticks([])
        ax.set_ylabel("digit")
    fig.suptitle(f"Colored MNIST at σ² = {color_var:.3f}: each digit's color in training, random colors in test",
                 fontsize=9)
    fig.tight_layout()
    return _save(fig, out, stem, pdf)


def optuna_figures(study: Any, out: Path, objective: str = "val_unbiased/acc at the best epoch",
                   pdf: bool = True) -> list[Path]:
    """Optimization history and parameter importances of one study (optuna.visualization.matplotlib)."""
    import warnings

    import optuna
    from optuna.visualization import matplotlib as ovm

    paths: list[Path] = []
    safe = study.study_name.replace("/", "_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = ovm.plot_optimization_history(study, target_name=objective)
        ax.figure.set_size_inches(6, 3.6)
        for loc in ("left", "center", "right"):
            ax.set_title("", loc=loc)
        ax.set_title(f"{study.study_name}: optimization history (completed trials)", fontsize=9)
        paths += _save(ax.figure, out, f"optuna_history_{safe}", pdf)
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(completed) >= 2 and len(completed[0].params) >= 1:
            ax = ovm.plot_param_importances(study, target_name=objective)
            ax.figure.set_size_inches(6, 3.6)
            for loc in ("left", "center", "right"):
                ax.set_title("", loc=loc)
            ax.set_title(f"{study.study_name}: parameter importances (fANOVA)", fontsize=9)
            paths += _save(ax.figure, out, f"optuna_importances_{safe}", pdf)
    return paths

