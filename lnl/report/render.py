"""Rendering the report's tables: Markdown and LaTeX for the comparison tables, Markdown for the rest.

The numbers are computed in :mod:`lnl.report.tables`; here they only take their printed form.
"""
from __future__ import annotations

import math

import pandas as pd

from lnl.report.tables import RULE_TEXT


def _fmt(x: float | None, digits: int = 4, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _cell(row: pd.Series) -> str:
    if row["n"] == 0:
        return "—" if row["runs"] == 0 else f"— (0/{row['runs']} finished)"
    err = "n/a" if math.isnan(row["error"]) else f"{row['error']:.4f}"
    done = f"{row['n']}" if row["n"] == row["runs"] else f"{row['n']}/{row['runs']}"
    return f"{row['mean']:.4f} ± {err} (n={done})"


def wide(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the method x sigma^2 view: for each method, rows ours / paper / diff."""
    levels = sorted(table["color_var"].unique())
    header = ["method", ""] + [f"σ²={cv:.3f}" for cv in levels]
    rows = []
    for method in dict.fromkeys(table["method"]):
        sub = table[table["method"] == method].set_index("color_var")
        rows.append([method, "ours"] + [_cell(sub.loc[cv]) for cv in levels])
        if sub["paper"].notna().any():
            rows.append(["", "paper"] + [_fmt(sub.loc[cv, "paper"]) for cv in levels])
            rows.append(["", "ours − paper"] + [_fmt(sub.loc[cv, "diff"], sign=True) for cv in levels])
    return header, rows


def caption(rule: str, error: str) -> str:
    spread = "standard deviation (ddof=1)" if error == "std" else "standard error of the mean"
    return (f"Unbiased test accuracy, model selection `{rule}`: {RULE_TEXT[rule]}. "
            f"Cells: mean ± {spread} over seeds (n = finished runs; n=a/b when only a of the b runs of the "
            f"selected configuration finished). "
            f"Paper: the authors' published numbers (one run each). — : no data.")


def to_markdown(table: pd.DataFrame) -> str:
    rule, error = table["rule"].iloc[0], table["error_kind"].iloc[0]
    header, rows = wide(table)
    lines = [f"**Selection: `{rule}`** — {caption(rule, error)}", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame) -> str:
    rule, error = table["rule"].iloc[0], table["error_kind"].iloc[0]
    header, rows = wide(table)

    def esc(s: str) -> str:
        return (s.replace("±", r"$\pm$").replace("σ²", r"$\sigma^2$").replace("−", "$-$").replace("—", "--")
                .replace("_", r"\_"))

    cols = "ll" + "r" * (len(header) - 2)
    out = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
           " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
    for i, r in enumerate(rows):
        if i and r[0]:
            out.append(r"\midrule")
        out.append(" & ".join(esc(c) for c in r) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{esc(caption(rule, error))}}}",
            rf"\label{{tab:colored-mnist-{rule.replace('_', '-')}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def frame_to_markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_none_\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join("—" if (isinstance(v, float) and math.isnan(v)) or v is None else str(v)
                                       for v in row) + " |")
    return "\n".join(lines) + "\n"


def time_to_accuracy_markdown(table: pd.DataFrame, metric: str = "val_unbiased/acc") -> str:
    lines = [f"Fewest epochs whose mean `{metric}` over seeds reaches the paper's test accuracy (chosen on "
             "validation only), read off the first epochs of runs whose schedules do not depend on their length; "
             "test accuracy at that length; cost = epochs x each run's median epoch, plus its pretrained run's "
             "whole length where that record is here (`pretrained`).", "",
             "| method | σ² | configuration | seeds | epochs | mean val | test (mean ± std) | paper | minutes | "
             "pretrained |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in table.itertuples():
        epochs = str(int(row.epochs)) if row.reached else f"not reached (best mean: epoch {int(row.best_epoch)})"
        lines.append(f"| {row.method} | {row.color_var:.3f} | {row.configuration} | {row.seeds} | {epochs} | "
                     f"{row.val_mean:.4f} | {row.test_mean:.4f} ± {row.test_std:.4f} | {row.paper:.4f} | "
                     f"{row.minutes:.1f} | {'yes' if row.pretrained else 'no'} |")
    return "\n".join(lines) + "\n"


def per_class_markdown(table: pd.DataFrame) -> str:
    lines = ["| method | σ² | seeds | " + " | ".join(f"digit {d}" for d in range(10)) + " |",
             "|---|---:|---:|" + "---:|" * 10]
    for row in table.to_dict("records"):
        cells = [f"**{row[str(d)]:.2f}**" if d == row["weakest"] else f"{row[str(d)]:.2f}" for d in range(10)]
        lines.append(f"| {row['method']} | {row['color_var']:.3f} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def calibration_markdown(table: pd.DataFrame) -> str:
    """The calibration table, one row per (reading, method), and the reading with the smallest mean
    absolute difference from the paper over all its Baseline and Gray cells."""
    if table.empty:
        return "_no finished Baseline or Gray runs_\n"
    levels = sorted(table["color_var"].unique())
    lines = ["| reading of σ² | method | " + " | ".join(f"σ²={v:.3f}" for v in levels) + " | mean abs(ours − paper) |",
             "|---|---|" + "---:|" * (len(levels) + 1)]
    for (noise, method), sub in table.groupby(["color_noise", "method"], sort=True):
        sub = sub.set_index("color_var")
        cells = [f"{sub.loc[v, 'mean']:.3f} ({sub.loc[v, 'diff']:+.3f})" if v in sub.index else "—" for v in levels]
        lines.append(f"| {noise} | {method} | " + " | ".join(cells) + f" | {sub['diff'].abs().mean():.3f} |")
    score = table.groupby("color_noise")["diff"].apply(lambda d: d.abs().mean()).sort_values()
    lines += ["", "Cells: our unbiased test accuracy at the last epoch (difference from the paper). Mean absolute "
              "difference over all Baseline and Gray cells per reading: "
              + ", ".join(f"`{k}` {v:.3f}" for k, v in score.items()) + f"; closest: **`{score.index[0]}`**."]
    return "\n".join(lines) + "\n"
