"""Train many runs on one machine in a local process pool (``lnl-run-sweep --jobs N``).

Each pool process takes its share of the cores (:func:`lnl.workers.worker_env`, applied by the
engine); a run that fails is reported and the others go on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from typing import Any, Optional

from lnl.config import Config, ConfigError
from lnl.workers import worker_env


def train_pool(todo: list[tuple[int, Config]], total: int, jobs: int, deadline: float | None = None) -> list[str]:
    """Train the numbered configs ``todo`` (k of ``total``) with ``jobs`` processes, each on its share of
    the cores (in this process when ``jobs`` is 1). A run that fails is reported and the others go on;
    returns the ids of those that failed. ``deadline`` (a ``time.time()``): runs still training then stop
    after their current epoch (status ``stopped``, checkpoint kept); none starts after it."""
    start = time.perf_counter()
    if jobs == 1:
        return [rid for rid in (_train_one(k, total, cfg, start, deadline) for k, cfg in todo) if rid]
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    counter = ctx.Value("i", 0)
    with ctx.Pool(min(jobs, len(todo)) or 1, initializer=_init_pool_worker, initargs=(counter, jobs)) as pool:
        results = pool.starmap(_train_one, [(k, total, cfg, start, deadline) for k, cfg in todo], chunksize=1)
    return [rid for rid in results if rid]


def _init_pool_worker(counter: Any, jobs: int) -> None:
    """Pool initializer: this worker's index and its share of the cores (read by the engine)."""
    with counter.get_lock():
        index, counter.value = counter.value, counter.value + 1
    os.environ.update(worker_env(jobs, index))


def _train_one(k: int, total: int, cfg: Config, start: float, deadline: float | None = None) -> Optional[str]:
    """Train one run; its id if it failed (the error is printed, the pool goes on)."""
    from lnl.engine import StopRun, train  # in the pool process: torch loads after the core share is set

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
