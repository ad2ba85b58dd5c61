"""What ``lnl-run-sweep`` runs, in which order, and what it will cost.

A sweep's grid points become :class:`~lnl.config.Config` objects; each has a deterministic run id, so the
runs folder (the store) says which are finished. :func:`plan` orders what is left in two waves: first the
pretrained runs that others start from (``init_from``; each once, however many runs share it), then the
runs themselves, so that N workers never wait on one baseline that a single worker trains.
:func:`estimate_s` prices a run from the finished records of the same method on the same kind of device.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lnl.config import Config
from lnl.config_values import to_bool
from lnl.accel.pool import train_pool
from lnl.records import RECORD, read_record
from lnl.report.load import from_folders
from lnl.report.select import find, index

DONE = ("finished", "diverged")


@dataclass
class Job:
    cfg: Config
    state: str            # the record's status, or "new"
    epochs_done: int
    dependency: bool      # a pretrained run that another run of the sweep starts from
    recorded_as: str | None = None  # the id of the store's record, when it differs from the computed one

    @property
    def run_id(self) -> str:
        return self.cfg.default_run_id()


def _job(cfg: Config, by: dict[str, dict[str, Any]], dependency: bool = False) -> Job:
    record = read_record(Path(cfg.runs_dir) / cfg.default_run_id()) or find(cfg, by) or {}
    epochs = record.get("epochs") if isinstance(record.get("epochs"), list) else []
    recorded = record.get("run_id")
    return Job(cfg, str(record.get("status", "new")), len(epochs), dependency,
               recorded if recorded and recorded != cfg.default_run_id() else None)


def plan(configs: list[Config], by: dict[str, dict[str, Any]] | None = None) -> tuple[list[Job], list[Job]]:
    """(every run of the sweep with its state, the jobs to run in order: unfinished dependencies first).
    ``by``: the store's records (:func:`lnl.report.select.index`), to find runs recorded under another id."""
    by = by or {}
    jobs = [_job(cfg, by) for cfg in configs]
    seen = {job.run_id for job in jobs}
    deps: list[Job] = []
    for job in jobs:
        if job.cfg.init_from is None or job.state in DONE:
            continue
        pre = job.cfg.init_config()
        if pre.default_run_id() not in seen:
            seen.add(pre.default_run_id())
            deps.append(_job(pre, by, dependency=True))
    first = {job.run_id for job in jobs if any(
        j.cfg.init_from and j.cfg.init_config().default_run_id() == job.run_id for j in jobs)}
    ordered = [j for j in deps if j.state not in DONE] + \
        [j for j in jobs if j.state not in DONE and j.run_id in first] + \
        [j for j in jobs if j.state not in DONE and j.run_id not in first]
    return jobs, ordered


def _device_kind(cfg: Config) -> str:
    if cfg.device != "auto":
        return cfg.device.split(":")[0]
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def epoch_seconds(records: list[dict[str, Any]], machine: str | None = None) -> dict[tuple[str, str], float]:
    """Median seconds per epoch (training plus evaluation) of finished full-data records, per (method, device
    kind): what an epoch costs on the machines that trained the store. With ``machine`` (a device name as
    records keep it, e.g. ``AMD EPYC (AVX-512 bf16)``), a (method, kind) that machine has timed is priced from
    its own records alone: the store mixes CPUs 2-4x apart, and a dry run prices the machine it runs on."""
    per: dict[tuple[str, str], list[float]] = {}
    mine: dict[tuple[str, str], list[float]] = {}
    for rec in records:
        cfg, timings, env = rec.get("config") or {}, rec.get("timings") or {}, rec.get("env") or {}
        if rec.get("status") != "finished" or cfg.get("train_size") or not timings.get("epoch_s"):
            continue
        key = (cfg.get("method"), str(env.get("device", "cpu")).split(":")[0])
        seconds = [a + b for a, b in zip(timings["epoch_s"], timings.get("eval_s") or [0] * len(timings["epoch_s"]))]
        per.setdefault(key, []).append(statistics.median(seconds))
        if machine and env.get("device_name") == machine:
            mine.setdefault(key, []).append(statistics.median(seconds))
    return {key: statistics.median(mine.get(key) or values) for key, values in per.items()}


def estimate_s(job: Job, per_epoch: dict[tuple[str, str], float]) -> float | None:
    """Seconds left for ``job`` (its own epochs only; a dependency is priced as its own job), or None."""
    seconds = per_epoch.get((job.cfg.method, _device_kind(job.cfg)))
    return None if seconds is None else seconds * max(job.cfg.epochs - job.epochs_done, 0)


def cost_line(todo: list[Job], per_epoch: dict[tuple[str, str], float], jobs: int) -> str:
    """One line: the estimated cost of ``todo`` in hours (serial, and with ``jobs`` workers when > 1)."""
    if not todo:
        return "nothing to train"
    known = [s for s in (estimate_s(j, per_epoch) for j in todo) if s is not None]
    unknown = len(todo) - len(known)
    if not known:
        return f"no estimate: no finished record has timed {'these methods' if len(todo) > 1 else 'this method'} on this kind of device"
    total_h = sum(known) / 3600
    text = f"estimated {total_h:.1f} h of training for {len(known)} run(s)"
    if jobs > 1:
        text += f" (≈ {total_h / jobs:.1f} h wall with {jobs} workers if they scale; on a CPU they share its cores)"
    if unknown:
        text += f"; {unknown} run(s) of a method/device no finished record has timed"
    return text + (" (median epoch time of the finished records per method and device kind, this machine's own "
                   "where it has timed the method)")


def train_waves(configs: list[Config], todo: list[Job], args: Any) -> int:
    """Train ``todo`` in two waves (what other runs start from, then the rest) and say what is left."""
    start = time.perf_counter()
    deadline = time.time() + args.deadline_s if args.deadline_s else None
    failed: list[str] = []
    starts = {j.cfg.init_config().default_run_id() for j in todo if j.cfg.init_from}
    first = [j for j in todo if j.dependency or j.run_id in starts]  # what the others start from
    for wave in (first, [j for j in todo if j not in first]):
        if wave:
            failed += train_pool([(k, j.cfg) for k, j in enumerate(wave, 1)], len(wave), args.jobs, deadline)
    left = sum(j.state not in DONE for j in plan(configs, index(load_records(args.runs_dir)))[0])
    print(f"sweep done in {time.perf_counter() - start:.0f}s; records under {args.runs_dir}/*/{RECORD}"
          + (f"; {len(failed)} run(s) failed: {', '.join(failed)}" if failed else "")
          + (f"; {left} run(s) still to train (run again to resume)" if left else ""))
    return 1 if failed else 0


def load_records(runs_dir: str) -> list:
    """The store's records (for timing estimates); none if the folder does not exist yet."""
    return from_folders([runs_dir], warn=lambda _: None) if Path(runs_dir).is_dir() else []


def same_value(value: object, text: str) -> bool:
    """A config value equals a ``--filter`` value given as text, read as ``--set`` reads it (``0.02`` matches
    ``0.020``, ``false`` matches ``False``)."""
    if str(value) == text:
        return True
    if isinstance(value, bool):
        try:
            return value == to_bool(text)
        except ValueError:
            return False
    try:
        return float(value) == float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
