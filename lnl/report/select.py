"""Runs selected by configuration: a sweep file names the runs of a system or a study, the store holds them.

``sweep_configs`` turns a grid sweep YAML into one :class:`~lnl.config.Config` per grid point (what
``lnl-run-sweep`` trains and ``wandb agent`` runs); ``select`` finds each point's record in the store by what
the run computes, never by the folder it lies in. A point's record is the one under its run id; failing that,
one whose configuration says the same (:func:`selection_key`): records keep a palette file's path as it was
typed, absolute or relative, which enters the run id, so the key compares such a path by its last two parts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lnl.config import Config, ConfigError
from lnl.search import grid_runs
from lnl.sweep_config import load_sweep


def sweep_configs(sweep_path: str | Path, runs_dir: str | Path, overrides: dict[str, Any] | None = None) -> list[Config]:
    """One validated config per grid point of ``sweep_path`` (seed-major), writing under ``runs_dir``."""
    sweep = load_sweep(sweep_path)
    return [Config.from_dict({**values, **(overrides or {}), "runs_dir": str(runs_dir), "resume": True,
                              "progress": False, "group": sweep.get("name")}).validate()
            for values in grid_runs(sweep)]


def selection_key(cfg: Config) -> str:
    """What a run computes, as text: its identity fields and, for a run that starts from another, that run's key
    (the recipe that trained it may have another name: only its values count)."""
    values: dict[str, Any] = cfg.identity()
    if cfg.init_from is not None:
        values["init_run"] = selection_key(cfg.init_config())
    palette = str(values.get("palette", ""))
    if palette.endswith(".csv"):
        values["palette"] = "/".join(Path(palette).parts[-2:])
    return json.dumps(values, sort_keys=True, default=str)


def index(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records by run id and by :func:`selection_key` (records whose config no longer parses are left out)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        out[record["run_id"]] = record
        try:
            key = selection_key(Config.from_dict({k: v for k, v in record["config"].items() if k != "run_id"}))
        except (ConfigError, TypeError, ValueError):
            continue
        if key not in out or record.get("status") == "finished":
            out[key] = record
    return out


def find(cfg: Config, by: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record of ``cfg``'s run in an :func:`index`, or None."""
    return by.get(cfg.default_run_id()) or by.get(selection_key(cfg))


def pairs(records: list[dict[str, Any]], configs: list[Config]) -> list[tuple[Config, dict[str, Any] | None]]:
    """Each of ``configs`` with its record in ``records`` (None where the store has none)."""
    by = index(records)
    return [(cfg, find(cfg, by)) for cfg in configs]


def select(records: list[dict[str, Any]], configs: list[Config]) -> list[dict[str, Any]]:
    """The records of ``configs``' runs that the store holds, each once, in the sweep's order."""
    found = [record for _, record in pairs(records, configs)]
    seen: set[str] = set()
    return [r for r in found if r is not None and not (r["run_id"] in seen or seen.add(r["run_id"]))]
