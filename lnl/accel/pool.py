"""Train many runs on one machine in a local process pool (``lnl-run-sweep --jobs N``).

N slots, one fresh process per run: each process takes its slot's share and block of the cores
(:func:`lnl.accel.workers.worker_env`, applied by the engine). A run that fails, and a process that dies
(``kill -9``, out of memory), is reported and its slot trains the next run: nothing waits on a dead
process, and a slot index never exceeds the pool.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from typing import Optional

from lnl.config import Config, ConfigError
from lnl.accel.workers import worker_env


def train_pool(todo: list[tuple[int, Config]], total: int, jobs: int, deadline: float | None = None) -> list[str]:
    """Train the numbered configs ``todo`` (k of ``total``) with ``jobs`` processes, each on its share of
    the cores (in this process when ``jobs`` is 1). A run that fails is reported and the others go on;
    returns the ids of those that failed. ``deadline`` (a ``time.time()``): runs still training then stop
    after their current epoch (status ``stopped``, checkpoint kept); none starts after it."""
    start = time.perf_counter()
    if jobs == 1:
        return [rid for rid in (_train_one(k, total, cfg, start, deadline) for k, cfg in todo) if rid]
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    slots = min(jobs, len(todo))
    queue, running, failed = list(todo), {}, []
    while queue or running:
        for slot in range(slots):
            if slot not in running and queue:
                k, cfg = queue.pop(0)
                proc = ctx.Process(target=_slot_main, args=(slot, jobs, k, total, cfg, start, deadline))
                proc.start()
                running[slot] = (proc, cfg.default_run_id())
        for slot, (proc, run_id) in list(running.items()):
            proc.join(timeout=0.2)
            if proc.exitcode is None:
                continue
            del running[slot]
            if proc.exitcode != 0:
                if proc.exitcode < 0:
                    print(f"error: {run_id}: its process died (signal {-proc.exitcode}); re-run the sweep to "
                          "resume it", file=sys.stderr, flush=True)
                failed.append(run_id)
    return failed


def _slot_main(slot: int, jobs: int, k: int, total: int, cfg: Config, start: float, deadline: float | None) -> None:
    """One run in a fresh process on slot ``slot``'s share of the cores; exit status 1 if it failed."""
    os.environ.update(worker_env(jobs, slot))
    raise SystemExit(1 if _train_one(k, total, cfg, start, deadline) else 0)


def _train_one(k: int, total: int, cfg: Config, start: float, deadline: float | None = None) -> Optional[str]:
    """Train one run; its id if it failed (the error is printed, the pool goes on)."""
    from lnl.training.loop import StopRun, train  # in the pool process: torch loads after the core share is set

    run_id = cfg.default_run_id()
    if deadline is not None and time.time() >= deadline:
        print(f"[{k}/{total}] {run_id}: not started (deadline reached)", flush=True)
        return None

    def stop_at_deadline(epoch: int, metrics: dict) -> None:
        if deadline is not None and time.time() >= deadline:
            raise StopRun("stopped", f"deadline reached after epoch {epoch}; resume it with the same command")

    print(f"\n[{k}/{total}] {run_id} ({time.perf_counter() - start:.0f}s so far)", flush=True)
    try:
        train(cfg, on_epoch=stop_at_deadline if deadline is not None else None)
    except ConfigError as err:
        print(f"error: {run_id}: {err}", file=sys.stderr, flush=True)
        return run_id
    except Exception as err:  # noqa: BLE001 - one broken run must not stop a pool of others
        print(f"error: {run_id} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return run_id
    return None
