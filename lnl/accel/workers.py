"""Training processes that share one machine: each takes its share of the CPU cores.

A sweep is judged by trials per hour. Two trainings on one machine that each take
torch's default thread count (every core) oversubscribe it: measured on 2 cores, one
epoch that takes 64 s alone took 222 s beside another job, 3.5x slower where a fair
half of the machine would be 2x. So every worker that knows how many workers share
its machine takes ``cores // workers`` threads (at least 1), and, when it also knows
its own index, is pinned to its own block of cores (no migrations, no cache fights).

Who sets what:

- ``lnl-run-sweep --jobs N`` (:func:`lnl.accel.pool.train_pool`) and ``lnl-optuna-search --n-jobs N`` start N
  processes and give each ``LNL_WORKERS=N`` and ``LNL_WORKER_INDEX=k`` (:func:`worker_env`).
- Several ``wandb agent`` processes started by hand: export ``LNL_WORKERS=N`` (and,
  optionally, ``LNL_WORKER_INDEX=k`` per agent, 0-based, to pin it) before each.
- An explicit ``--threads`` always wins.

The engine calls :func:`apply_share` once per run, before any tensor work, and writes
what it chose into the run record (``env.workers``).
"""
from __future__ import annotations

import os
from typing import Any, Optional

from lnl.errors import UserError

WORKERS_ENV = "LNL_WORKERS"
WORKER_INDEX_ENV = "LNL_WORKER_INDEX"


class WorkerEnvError(UserError):
    """A bad ``LNL_WORKERS`` / ``LNL_WORKER_INDEX`` value (one line, names the variable)."""


def available_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def thread_share(workers: int, cores: Optional[int] = None) -> int:
    """Threads for one of ``workers`` processes on ``cores`` cores: ``cores // workers``, at least 1."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    cores = len(available_cores()) if cores is None else cores
    return max(1, cores // workers)


def core_block(index: int, workers: int, cores: list[int]) -> Optional[list[int]]:
    """Worker ``index``'s own cores: the ``index``-th of ``workers`` equal contiguous blocks of
    ``cores`` (the first ``len(cores) % workers`` blocks get one core more). None when there are more workers than cores
    (then no pinning: the scheduler spreads them better than a shared pin would)."""
    if not 0 <= index < workers or workers > len(cores):
        return None
    base, extra = divmod(len(cores), workers)
    start = index * base + min(index, extra)
    size = base + (1 if index < extra else 0)
    return cores[start:start + size]


def workers_from_env(environ: Optional[dict[str, str]] = None) -> tuple[int, Optional[int]]:
    """``(workers, index)`` from ``LNL_WORKERS`` / ``LNL_WORKER_INDEX`` (``(1, None)`` when unset).

    Raises :class:`WorkerEnvError` for a value that is not a whole number in range."""
    env = os.environ if environ is None else environ
    workers, index = 1, None
    raw = env.get(WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise WorkerEnvError(f"{WORKERS_ENV} must be a whole number >= 1 (workers sharing this machine); "
                                 f"got {raw!r}")
        workers = int(raw)
    raw = env.get(WORKER_INDEX_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) >= workers:
            raise WorkerEnvError(f"{WORKER_INDEX_ENV} must be a whole number in 0..{workers - 1} "
                                 f"({WORKERS_ENV}={workers}); got {raw!r}")
        index = int(raw)
    return workers, index


def worker_env(workers: int, index: int) -> dict[str, str]:
    """Environment for worker ``index`` of ``workers`` started by this harness. OMP/MKL get the
    thread share too, so libraries that size their pools at import time agree with torch."""
    threads = str(thread_share(workers))
    return {WORKERS_ENV: str(workers), WORKER_INDEX_ENV: str(index), "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads}


def apply_share(threads: Optional[int] = None) -> dict[str, Any]:
    """Set this process's torch threads (and CPU affinity, when its index is known) and say what was set.

    ``threads`` (the config's ``--threads``) wins; else ``LNL_WORKERS`` decides the share; else torch
    keeps its default. Returns ``{"workers", "index", "threads", "cores", "source"}`` for the record."""
    import torch

    workers, index = workers_from_env()
    cores = available_cores()
    pinned = None
    if threads:
        source = "--threads"
    elif workers > 1:
        source = WORKERS_ENV
        threads = thread_share(workers, len(cores))
        block = core_block(index, workers, cores) if index is not None else None
        if block and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, block)
            pinned = block
    else:
        source = "torch default"
    if threads:
        torch.set_num_threads(threads)
    return {"workers": workers, "index": index, "threads": torch.get_num_threads(),
            "cores": pinned if pinned is not None else cores, "source": source}

