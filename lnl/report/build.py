"""Assemble a report folder: tables (Markdown, LaTeX, CSV), figures (PNG, PDF) and README.md.

``build_report(records, out)`` writes everything and returns the list of files;
``scripts/report.py`` is its command line, ``publish_wandb`` mirrors it to W&B.
"""
from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from lnl.report import figures, recipe_cost, render, tables
from lnl.selection import RULES


def _sample_data(records: list[dict[str, Any]], color_var: float, log: Any) -> Any:
    """Training and test images of the dataset the runs used at ``color_var`` (None if unavailable)."""
    from lnl.data.dataset import load_generated

    cfg = next((r["config"] for r in records if round(float(r["config"]["color_var"]), 3) == color_var
                and r["config"].get("data_source", "generated") == "generated"), None)
    if cfg is None:
        return None
    legacy = "strokes" not in cfg  # records from before data format 2: graded strokes, the first palette
    palette = "v1" if legacy and cfg.get("palette", "default") == "default" else cfg.get("palette", "default")
    try:
        data = load_generated(color_var, palette, cfg.get("data_seed", 0), cfg.get("val_size", 5000),
                              cache_dir=cfg.get("cache_dir", "data"), data_dir=cfg.get("data_dir"),
                              strokes=cfg.get("strokes", "graded"),
                              color_noise=cfg.get("color_noise", "per_channel_var"),
                              unbiased_colors=cfg.get("unbiased_colors", "palette"),
                              color_bounds=cfg.get("color_bounds", "clip"))
    except Exception as err:  # noqa: BLE001 - the figure is optional; say why it is missing
        log(f"report: no sample-image figure ({type(err).__name__}: {err})")
        return None
    return (data.x("train")[:3000], data.y("train")[:3000]), (data.x("test")[:3000], data.y("test")[:3000])


def build_report(records: list[dict[str, Any]], out: str | Path, *, error: str = "std", primary: str = "last",
                 studies: list[Any] | None = None, title: str = "Colored MNIST report",
                 command: str | None = None, samples: bool = True, notes: str | None = None,
                 calibration: list[dict[str, Any]] | None = None, log: Any = print, pdf: bool = True) -> list[Path]:
    """Write tables, figures and README.md for ``records`` into ``out``; return the written paths.
    ``pdf``: each figure also as PDF, beside its PNG.

    ``calibration``: records of Baseline/Gray runs under several readings of sigma^2; adds the
    calibration table (``calibration.csv`` and a README section)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    written: list[Path] = []
    if not records:
        raise ValueError("no run records to report on")

    runs, tabs, md_tables, study_tab = _write_tables(records, out, error, written)
    problems = tables.status_table(records)
    selected = tables.choose_configurations(tables.selected_runs(records, primary))
    written += figures.confusion_grid(selected, primary, fig_dir, pdf=pdf)
    written += figures.accuracy_vs_bias(tabs[primary], primary, fig_dir, pdf=pdf)
    written += figures.training_curves(tables.epochs_frame(records), fig_dir, pdf=pdf)
    levels = sorted(runs["color_var"].unique())
    sample = _sample_data(records, levels[0], log) if levels and samples else None
    if sample is not None:
        written += figures.sample_images(*sample, levels[0], fig_dir, pdf=pdf)
    for study in studies or []:
        try:
            written += figures.optuna_figures(study, fig_dir, pdf=pdf)
        except Exception as err:  # noqa: BLE001 - e.g. too few trials for importances
            log(f"report: no Optuna figures for {study.study_name} ({type(err).__name__}: {err})")

    sections = _optional_sections(records, selected, calibration, out, written, primary)
    readme = _readme(title, records, runs, md_tables, problems, study_tab, written, out, primary, error, command,
                     notes, sections)
    (out / "README.md").write_text(readme)
    written.append(out / "README.md")
    return written


def _write_tables(records: list[dict[str, Any]], out: Path, error: str, written: list[Path]) -> tuple[Any, ...]:
    """The comparison tables per selection rule (Markdown, LaTeX, one long CSV), the runs and the studies
    tables, written into ``out`` and appended to ``written``."""
    runs = tables.runs_frame(records)
    tabs = {rule: tables.comparison(records, rule, error) for rule in RULES}
    md_tables = {rule: render.to_markdown(tab) for rule, tab in tabs.items()}
    for rule, tab in tabs.items():
        for suffix, text in (("md", md_tables[rule]), ("tex", render.to_latex(tab))):
            path = out / f"table_{rule}.{suffix}"
            path.write_text(text)
            written.append(path)
    pd.concat(tabs.values(), ignore_index=True).to_csv(out / "results.csv", index=False, float_format="%.6f")
    runs.to_csv(out / "runs.csv", index=False)
    written += [out / "results.csv", out / "runs.csv"]
    study_tab = tables.studies_table(records)
    if not study_tab.empty:
        study_tab.to_csv(out / "studies.csv", index=False)
        written.append(out / "studies.csv")
    return runs, tabs, md_tables, study_tab


def _optional_sections(records: list[dict[str, Any]], selected: pd.DataFrame,
                       calibration: list[dict[str, Any]] | None, out: Path, written: list[Path],
                       primary: str) -> dict[str, tuple[str, str | None]]:
    """The README's optional tables, heading -> (intro, Markdown or None); each also written as CSV."""
    per_digit = _csv_section(tables.per_class(selected), out / "per_class.csv", render.per_class_markdown, written,
                             float_format="%.6f")
    calibrated = _csv_section(tables.calibration(calibration) if calibration else None, out / "calibration.csv",
                              render.calibration_markdown, written)
    speed = _csv_section(tables.time_to_accuracy(records), out / "time_to_accuracy.csv",
                         render.time_to_accuracy_markdown, written, float_format="%.6f")
    by_recipe: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_recipe.setdefault(r["config"].get("recipe") or "(none)", []).append(r)
    phases = _csv_section(recipe_cost.recipe_cost(by_recipe, records), out / "recipe_cost.csv", recipe_cost.markdown,
                          written, float_format="%.3f")
    return {
        "Per-digit accuracy": (f"Unbiased test accuracy per digit (selection `{primary}`, seeds pooled, the weakest "
                               "digit in bold): the confusion grid's diagonal, as numbers.", per_digit),
        "Calibration: which reading of σ² matches the paper": (
            "Decided on the Baseline and Gray rows only (never on LNL's); see `sweeps/calibration.yaml`.", calibrated),
        "Time to accuracy": ("", speed),
        "Minutes per phase": ("Per recipe, as each run recorded it (`recipe`; runs with no recipe: `(none)`).",
                              phases),
    }


def _csv_section(table: pd.DataFrame | None, path: Path, render: Any, written: list[Path],
                 float_format: str | None = None) -> str | None:
    """An optional table: written to ``path`` (CSV) and rendered as Markdown, or None when there is none."""
    if table is None or table.empty:
        return None
    table.to_csv(path, index=False, float_format=float_format)
    written.append(path)
    return render(table)


def _readme(title: str, records: list[dict[str, Any]], runs: pd.DataFrame, md_tables: dict[str, str],
            problems: pd.DataFrame, study_tab: pd.DataFrame, written: list[Path], out: Path, primary: str,
            error: str, command: str | None, notes: str | None = None,
            sections: dict[str, tuple[str, str | None]] | None = None) -> str:
    counts = runs["status"].value_counts().to_dict()
    status_text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    epochs = sorted({r["config"].get("epochs") for r in records if r["config"].get("epochs")})
    lines = [f"# {title}", "",
             f"{len(records)} runs ({status_text}); methods: {', '.join(sorted(runs['method'].unique()))}; "
             f"σ²: {', '.join(f'{v:.3f}' for v in sorted(runs['color_var'].unique()))}; "
             f"epochs per run: {', '.join(map(str, epochs))}.",
             f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `{command or 'lnl.report.build_report'}`.", "",
             "Accuracy is on the unbiased test set (MNIST test digits with random colors). No number below "
             "was selected on the test set: each table names its model-selection rule.", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    lines += ["## Results", ""]
    order = [primary] + [r for r in RULES if r != primary]
    for rule in order:
        lines += [md_tables[rule], f"Also as [LaTeX](table_{rule}.tex); all rules in [results.csv](results.csv).",
                  ""]
    for heading, (intro, markdown) in (sections or {}).items():
        if markdown:
            lines += [f"## {heading}", ""] + ([intro, ""] if intro else []) + [markdown]
    lines += ["## Runs that did not finish", ""]
    if problems.empty:
        lines += ["All runs finished.", ""]
    else:
        lines += [f"{len(problems)} runs are not in the numbers above:", "", render.frame_to_markdown(problems)]
    if not study_tab.empty:
        lines += ["## Optuna studies", "", "Best trial by its best-epoch validation metric; pruned includes "
                  "diverged trials, failed includes trials whose worker died.", "",
                  render.frame_to_markdown(study_tab)]
    lines += ["## Figures", ""]
    pngs = [p for p in written if p.suffix == ".png"]
    captions = {
        "confusion_grid": f"Unbiased-test confusion matrices per method and σ² (selection `{primary}`). "
                          "A color-biased model confuses digits whose training colors are alike.",
        "accuracy_vs_color_var": "Unbiased test accuracy vs σ²; dashed: the paper.",
        "training_curves": "Validation accuracies and the bias head's color-bin accuracy per epoch.",
        "samples": "Training vs test coloring.",
    }
    for png in pngs:
        stem = png.stem
        text = captions.get(stem) or stem.replace("_", " ")
        pdf = f" ([PDF]({png.with_suffix('.pdf').relative_to(out).as_posix()}))" if png.with_suffix(".pdf") in written \
            else ""
        lines += [f"### {text}", "", f"![{stem}]({png.relative_to(out).as_posix()}){pdf}", ""]
    lines += ["## Files", ""] + [f"- `{p.relative_to(out).as_posix()}`" for p in sorted(written)] + [""]
    return "\n".join(lines)


def publish_wandb(out: Path, written: list[Path], records: list[dict[str, Any]], project: str | None = None,
                  entity: str | None = None, mode: str = "auto", name: str | None = None) -> dict[str, Any]:
    """Log the tables (wandb.Table) and figures (wandb.Image) to a W&B run of job type ``report``."""
    import wandb

    from lnl.tracking import DEFAULT_PROJECT, resolve_mode

    mode = resolve_mode(mode)
    project = project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    run = wandb.init(project=project, entity=entity, job_type="report", name=name or f"report-{out.name}",
                     mode=mode, config={"runs": len(records), "folder": str(out)},
                     settings=wandb.Settings(silent=True, console="off"))
    payload: dict[str, Any] = {}
    for path in written:
        if path.suffix == ".csv":
            payload[f"tables/{path.stem}"] = wandb.Table(dataframe=pd.read_csv(path))
        elif path.suffix == ".png":
            payload[f"figures/{path.stem}"] = wandb.Image(str(path), caption=path.stem)
    run.log(payload)
    info = {"mode": mode, "id": run.id, "dir": str(Path(run.dir).parent)}
    run.finish()
    return info


def command_line() -> str:
    """This process's command as a reader would type it: ``lnl-report ...`` for the command however it was
    started (console script, ``python -m lnl.commands.report``, ``scripts/report.py``), else ``python argv``."""
    name = Path(sys.argv[0]).stem if sys.argv else ""
    if name in ("report", "lnl-report") and (Path(sys.argv[0]).parent.name in ("commands", "scripts", "bin")
                                             or name == "lnl-report"):
        return " ".join(shlex.quote(a) for a in ["lnl-report", *sys.argv[1:]])
    return " ".join(shlex.quote(a) for a in ["python"] + sys.argv)
