"""Create one W&B sweep per bias level from a sweep YAML and print the agent command for each.

    lnl-create-sweeps sweeps/lnl_tune.yaml --color-var 0.02 0.03 0.04 --project P
    lnl-create-sweeps sweeps/lnl_tune.yaml --color-var 0.02 --dry-run   # offline: print configs

Bias level is an experimental condition, not a hyperparameter: each level gets its
own sweep (named e.g. ``lnl_tune-cv0.020``), so each search optimizes for its level.
Launch agents from the repository root: the YAMLs' program is scripts/train.py.
"""
import argparse
import os
import sys


import yaml

from lnl.commands import one_line_errors
from lnl.config import Config
from lnl.sweep_config import for_condition, load_sweep


@one_line_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="a sweep YAML, e.g. sweeps/lnl_tune.yaml")
    parser.add_argument("--color-var", type=float, nargs="+", default=None,
                        help="bias levels; one sweep each (default: the level in the YAML)")
    parser.add_argument("--method", default=None, help="fix the method (default: as in the YAML)")
    parser.add_argument("--project", default=os.environ.get("WANDB_PROJECT", "lnl"))
    parser.add_argument("--entity", default=os.environ.get("WANDB_ENTITY"))
    parser.add_argument("--dry-run", action="store_true", help="print the sweep configs; create nothing")
    args = parser.parse_args(argv)
    base = load_sweep(args.sweep)  # a SweepError or ConfigError is one line, exit 2 (one_line_errors)
    levels = args.color_var or [None]
    for cv in levels:  # Config.validate is the one place values are checked
        Config.from_dict({"color_var": cv} if cv is not None else {}).validate()
    configs = [for_condition(base, cv, args.method) for cv in levels]
    if args.dry_run:
        for cfg in configs:
            print(f"# sweep {cfg.get('name')} (project {args.project}) -- dry run, nothing created")
            print(yaml.safe_dump(cfg, sort_keys=False).rstrip())
            print("---")
        return 0
    import wandb

    for cfg in configs:
        try:
            sweep_id = wandb.sweep(sweep=cfg, project=args.project, entity=args.entity)
        except Exception as err:  # noqa: BLE001 - report and stop: nothing useful to do offline
            print(f"error: could not create sweep {cfg.get('name')}: {err} "
                  "(is W&B reachable and are you logged in? --dry-run works offline)", file=sys.stderr)
            return 1
        entity = args.entity or wandb.Api().default_entity
        print(f"{cfg.get('name')}: wandb agent {entity}/{args.project}/{sweep_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
