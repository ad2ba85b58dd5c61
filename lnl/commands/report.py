"""Comparison tables and figures from run records (or from W&B), in one folder with a README.md.

    lnl-report --runs runs/ --out reports/my_report/
    lnl-report --wandb ENTITY/PROJECT --sweep SWEEP_ID --out reports/from_wandb/
    lnl-report --runs runs/optuna --optuna-storage sqlite:///optuna.db --out reports/search/

Open ``<out>/README.md``: every table (one per model-selection rule: last, val_biased, val_unbiased) and
every figure. ``--publish-wandb`` also logs them to a W&B run of job type ``report``; ``--wandb-report
ENTITY/PROJECT`` builds a W&B Report and prints its URL (``--dry-run``: its JSON spec in ``<out>``). ``--sweep-file``
keeps only the runs a sweep file names (by configuration). ``--headline``: the reproduction's front page (lnl.report.page):

    lnl-report --headline sweeps/headline.yaml --studies sweeps/studies --runs results \
        --findings reports/paper_reproduction/findings.yaml --compare sweeps/fast.yaml --out reports/paper_reproduction
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lnl.commands import one_line_errors
from lnl.report import load
from lnl.report.build import build_report, command_line, publish_wandb
from lnl.report.page import page_from_args
from lnl.selection import RULES
from lnl.report.wandb_report import report_from_args
from lnl.optuna_storage import mask_argv, mask_url


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--runs", nargs="+", help="folders searched recursively for record.json files")
    src.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs of a W&B project instead")
    p.add_argument("--sweep", nargs="+", default=None, help="with --wandb: only these sweep ids")
    p.add_argument("--group", default=None, help="with --wandb: only this group")
    p.add_argument("--out", required=True, help="report folder (created)")
    p.add_argument("--strict", action="store_true",
                   help="a malformed record is an error (exit 2, naming the file) instead of skipped with a warning")
    p.add_argument("--sweep-file", default=None, metavar="YAML",
                   help="only the runs this grid sweep file names, selected by configuration")
    p.add_argument("--headline", default=None, metavar="YAML",
                   help="build the front page of the headline sweep file (README.md, headline.csv, figures, a page "
                        "per study) from the store --runs")
    p.add_argument("--studies", default=None, metavar="DIR", help="with --headline: the study sweep files' folder")
    p.add_argument("--findings", default=None, metavar="YAML", help="with --headline: the findings listed on the page")
    p.add_argument("--compare", nargs="+", default=None, metavar="YAML", help="with --headline: sweep files of "
                   "other recipes (sweeps/fast.yaml), each beside the headline per level and seed on <out>/<name>.md")
    p.add_argument("--title", default="Colored MNIST: unbiased test accuracy")
    p.add_argument("--error", choices=("std", "sem"), default="std",
                   help="what ± means: standard deviation over seeds (default) or standard error")
    p.add_argument("--primary", choices=RULES, default="last", help="selection rule of the figures")
    p.add_argument("--optuna-storage", default=None,
                   help="storage of the studies named in the records, for Optuna history/importance figures")
    p.add_argument("--notes", default=None, help="a Markdown file placed at the top of README.md (method notes)")
    p.add_argument("--calibration", nargs="+", default=None, metavar="FOLDER",
                   help="records of Baseline/Gray runs under several readings of sigma^2 (sweeps/calibration.yaml): "
                        "adds the calibration table (ours vs the paper per reading)")
    p.add_argument("--no-samples", action="store_true",
                   help="skip the sample-image figure (it needs the runs' dataset, regenerated if not cached)")
    p.add_argument("--publish-wandb", action="store_true", help="log tables and figures to a W&B 'report' run")
    p.add_argument("--wandb-report", metavar="ENTITY/PROJECT", default=None,
                   help="build a W&B Report (wandb-workspaces) over the runs in this project and print its URL; "
                        "publishes the figures to a 'report' run first")
    p.add_argument("--dry-run", action="store_true",
                   help="with --wandb-report: write the Report's JSON spec to <out>/wandb_report.json; no server")
    p.add_argument("--wandb-mode", default="auto", choices=("auto", "online", "offline"))
    p.add_argument("--wandb-project", default=None)
    return p.parse_args(argv)


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    # Storage URLs may hold a password: nothing this command writes (the page's "Generated by" line, the W&B
    # report run's recorded arguments, the Report spec) may show it, so argv is masked before anything reads it.
    sys.argv[:] = mask_argv(sys.argv)
    args = parse(argv)
    try:
        records = _records(args)
        if args.headline:
            return page_from_args(args, records)
        if not records:
            print("error: no run records found", file=sys.stderr)
            return 1
        notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else None
        written = build_report(records, args.out, error=args.error, primary=args.primary,
                               studies=_studies(args, records), title=args.title, command=command_line(),
                               samples=not args.no_samples, notes=notes,
                               calibration=load.from_folders(args.calibration) if args.calibration else None)
    except (OSError, ValueError) as err:  # the harness's UserErrors, unreadable files: masked, one line
        print(f"error: {mask_url(str(err).splitlines()[0])}", file=sys.stderr)
        return 2
    print(f"report: {len(records)} runs -> {Path(args.out) / 'README.md'} ({len(written)} files)")
    if args.publish_wandb and not args.wandb_report:
        info = publish_wandb(Path(args.out), written, records, project=args.wandb_project, mode=args.wandb_mode)
        where = f"offline in {info['dir']} (upload: wandb sync {info['dir']})" if info["mode"] == "offline" \
            else f"run {info['id']}"
        print(f"report: published to W&B {where}")
    return report_from_args(args, records, written) if args.wandb_report else 0


def _records(args: argparse.Namespace) -> list:
    """The records to report on: from folders (all, or those a sweep file names) or from W&B."""
    if not args.runs:
        return load.from_wandb(args.wandb, args.sweep, args.group)
    missing = [f for f in args.runs if not Path(f).is_dir()]
    if missing:
        raise ValueError(f"not a folder: {', '.join(missing)}")
    records = load.from_folders(args.runs, strict=args.strict)
    if args.sweep_file and not args.headline:
        from lnl.report.select import select, sweep_configs

        records = select(records, sweep_configs(args.sweep_file, args.runs[0]))
    return records


def _studies(args: argparse.Namespace, records: list) -> list:
    if not args.optuna_storage:
        return []
    from lnl.optuna_storage import studies_of

    try:
        return studies_of(records, args.optuna_storage)
    except Exception as err:  # noqa: BLE001 - an unreachable or unreadable storage: one line, no secret
        raise ValueError(f"--optuna-storage {mask_url(args.optuna_storage)}: cannot read its studies "
                         f"({type(err).__name__}: {mask_url(str(err).splitlines()[0])[:200]})") from None


if __name__ == "__main__":
    raise SystemExit(main())
