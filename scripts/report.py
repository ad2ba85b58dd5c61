#!/usr/bin/env python
"""Comparison tables and figures from run records (or from W&B), in one folder with a README.md.

    python scripts/report.py --runs runs/ --out reports/my_report/
    python scripts/report.py --wandb ENTITY/PROJECT --sweep SWEEP_ID --out reports/from_wandb/
    python scripts/report.py --runs runs/optuna --optuna-storage sqlite:///optuna.db --out reports/search/

Open ``<out>/README.md``: every table (one per model-selection rule: last,
val_biased, val_unbiased) and every figure. ``--publish-wandb`` also logs them to
a W&B run of job type ``report``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lnl.report import load  # noqa: E402
from lnl.report.build import build_report, command_line, publish_wandb  # noqa: E402
from lnl.report.tables import RULES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--runs", nargs="+", help="folders searched recursively for record.json files")
    src.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs of a W&B project instead")
    p.add_argument("--sweep", nargs="+", default=None, help="with --wandb: only these sweep ids")
    p.add_argument("--group", default=None, help="with --wandb: only this group")
    p.add_argument("--out", required=True, help="report folder (created)")
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
    p.add_argument("--wandb-mode", default="auto", choices=("auto", "online", "offline"))
    p.add_argument("--wandb-project", default=None)
    args = p.parse_args(argv)

    if args.runs:
        missing = [f for f in args.runs if not Path(f).is_dir()]
        if missing:
            print(f"error: not a folder: {', '.join(missing)}", file=sys.stderr)
            return 2
        records = load.from_folders(args.runs)
    else:
        records = load.from_wandb(args.wandb, args.sweep, args.group)
    if not records:
        print("error: no run records found", file=sys.stderr)
        return 1
    studies = []
    if args.optuna_storage:
        import optuna

        from lnl.search import open_storage

        storage = open_storage(args.optuna_storage)
        names = sorted({r["config"]["study"] for r in records if r["config"].get("study")})
        known = {s.study_name for s in optuna.get_all_study_summaries(storage)}
        studies = [optuna.load_study(study_name=n, storage=storage) for n in names if n in known]
    try:
        notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else None
        written = build_report(records, args.out, error=args.error, primary=args.primary, studies=studies,
                               title=args.title, command=command_line(), samples=not args.no_samples, notes=notes,
                               calibration=load.from_folders(args.calibration) if args.calibration else None)
    except (OSError, UnicodeDecodeError, ValueError) as err:  # a missing notes file, the paper's CSV, ...
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"report: {len(records)} runs -> {Path(args.out) / 'README.md'} ({len(written)} files)")
    if args.publish_wandb:
        info = publish_wandb(Path(args.out), written, records, project=args.wandb_project, mode=args.wandb_mode)
        where = f"offline in {info['dir']} (upload: wandb sync {info['dir']})" if info["mode"] == "offline" \
            else f"run {info['id']}"
        print(f"report: published to W&B {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
