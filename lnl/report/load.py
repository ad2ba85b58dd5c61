"""Run records in, from a folder of ``record.json`` files or from a W&B project.

Both sources yield the same schema (see :mod:`lnl.records`): ``run_id``,
``status``, ``config``, ``epochs`` (one metrics dict per epoch), ``confusion``
(unbiased-test confusion matrix per epoch, keyed by epoch number as a string)
and ``final``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

from lnl.records import EPOCH_KEYS, RECORD



def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def record_problem(record: Any) -> str | None:
    """Why ``record`` cannot enter a report (a wrong-typed field, a malformed confusion matrix), or None.
    Checked once here, so the tables and figures can trust every field they read."""
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict) or "run_id" not in record:
        return "not a run record of this harness"
    cfg = record["config"]
    if not isinstance(cfg.get("method"), str):
        return f"config.method is {type(cfg.get('method')).__name__}, not text"
    if not _number(cfg.get("color_var")):
        return f"config.color_var is {cfg.get('color_var')!r}, not a number"
    if not isinstance(cfg.get("seed", 0), int) or isinstance(cfg.get("seed", 0), bool):
        return f"config.seed is {cfg.get('seed')!r}, not a whole number"
    epochs = record.get("epochs", [])
    if not isinstance(epochs, list) or not all(isinstance(e, dict) and _number(e.get("epoch")) for e in epochs):
        return "epochs is not a list of per-epoch metrics dicts with an epoch number"
    for key in ("test/acc", "val_unbiased/acc", "val_biased/acc"):
        if any(e.get(key) is not None and not _number(e.get(key)) for e in epochs):
            return f"an epoch's {key} is not a number"
    confusion = record.get("confusion", {})
    if not isinstance(confusion, dict):
        return "confusion is not a mapping of epoch -> matrix"
    for epoch, matrix in confusion.items():
        if not (isinstance(matrix, list) and matrix and all(isinstance(row, list) and len(row) == len(matrix)
                                                            and all(_number(v) for v in row) for row in matrix)):
            return f"the confusion matrix of epoch {epoch} is not a square matrix of counts"
    if not isinstance(record.get("status", ""), str) or not isinstance(record.get("final") or {}, dict):
        return "status or final has the wrong type"
    return None


def from_folders(folders: Iterable[str | Path], warn: Any = None, strict: bool = False) -> list[dict[str, Any]]:
    """Every run under the given folders (``record.json``, recursively), once each, sorted by run id.

    An unreadable or malformed record (a truncated copy, a hand edit, a wrong-typed field:
    :func:`record_problem`) is skipped with a warning naming the file and the reason, so one bad file
    never hides every other run; ``strict=True`` makes it a ValueError naming the file instead.

    A run id names one run (it is a hash of the run's identity), so a run found twice (a
    pretrained baseline copied next to the runs that start from it, two overlapping folders)
    counts once: the most complete copy wins (``finished`` first, then the most epochs, then the
    latest ``updated_at``, then the first path), and a warning names both copies when their
    final metrics disagree (a stale partial copy, or a hand-edited one).
    """
    warn = warn or (lambda text: print(text, file=sys.stderr))
    by_id: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob(RECORD)):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                if strict:
                    raise ValueError(f"{path}: not a readable run record ({str(err)[:120]})") from None
                warn(f"report: warning: skipping {path}: not a readable run record ({str(err)[:120]})")
                continue
            problem = record_problem(record)
            if problem:
                if strict:
                    raise ValueError(f"{path}: {problem}")
                warn(f"report: warning: skipping {path}: {problem}")
                continue
            record["_source"] = str(path)
            kept = by_id.get(record["run_id"])
            if kept is None:
                by_id[record["run_id"]] = record
                continue
            if (kept.get("final") or {}) != (record.get("final") or {}):
                warn(f"report: warning: run {record['run_id']} is in both {kept['_source']} and {path} with "
                     "different results; keeping the more complete copy")
            if _completeness(record) > _completeness(kept):
                by_id[record["run_id"]] = record
    return sorted(by_id.values(), key=lambda r: r["run_id"])


def _completeness(record: dict[str, Any]) -> tuple[bool, int, str]:
    """Order of preference between two copies of one run (larger wins; ties keep the first found)."""
    epochs = record.get("epochs")
    return (record.get("status") == "finished", len(epochs) if isinstance(epochs, list) else 0,
            str(record.get("updated_at") or ""))


def from_wandb(path: str, sweeps: list[str] | None = None, group: str | None = None,
               api: Any = None) -> list[dict[str, Any]]:
    """Runs of W&B project ``ENTITY/PROJECT`` (optionally only some sweeps or one group) as records.

    The per-epoch confusion matrices live only in local records; from W&B the
    final epoch's matrix comes from the run summary.
    """
    if api is None:
        import wandb

        api = wandb.Api()
    filters: dict[str, Any] = {}
    if sweeps:
        filters["sweep"] = {"$in": list(sweeps)}
    if group:
        filters["group"] = group
    records = []
    for run in api.runs(path, filters=filters or None):
        config = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
        if "method" not in config or "color_var" not in config:
            continue  # not a training run of this harness (e.g. a report run)
        summary = dict(run.summary)
        history = [dict(row) for row in run.history(keys=list(EPOCH_KEYS), pandas=False)]
        epochs = sorted(({k: v for k, v in row.items() if not k.startswith("_")} for row in history
                         if row.get("epoch") is not None), key=lambda e: e["epoch"])
        final = {k: v for k, v in summary.items() if not k.startswith("_") and not isinstance(v, dict)}
        confusion = {}
        if epochs and summary.get("test/confusion") is not None:
            confusion[str(int(epochs[-1]["epoch"]))] = summary["test/confusion"]
        status = summary.get("status") or {"finished": "finished", "crashed": "failed", "failed": "failed",
                                            "running": "running", "killed": "failed"}.get(run.state, run.state)
        records.append({"run_id": run.name or run.id, "status": status, "reason": summary.get("status_reason"),
                        "config": config, "epochs": epochs, "confusion": confusion, "final": final,
                        "wandb": {"id": run.id, "path": "/".join(run.path) if isinstance(run.path, list)
                                  else str(run.path)},
                        "_source": f"wandb:{path}/{run.id}"})
    return sorted(records, key=lambda r: r["run_id"])
