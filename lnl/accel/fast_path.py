"""The CPU fast path chosen per machine: time the layouts at first use, keep the fastest (like cuDNN's
autotuner), cache the choice per CPU.

The fast path's layout choices were tuned on a CPU with AMX bf16, where channels-last convolutions and
the fused C kernels (:mod:`lnl.accel.kernels`) pay. On other CPUs (AVX2 only, fp32) some may not. The
candidates give the same values and gradients (``tests/test_fast_path.py``), so choosing among them
changes speed, never results:

===============  =============  ===========
candidate        channels-last  C kernels
===============  =============  ===========
``cl+kernels``   yes            yes
``cl``           yes            no
``nchw``         no             no (the plain layout)
===============  =============  ===========

``Config.fast_path``: ``tuned`` (default) times every candidate the config allows (``--channels-last
False`` leaves ``nchw`` only, ``--cpu-kernels False`` drops ``cl+kernels``) on a few synthetic
batches of the run's own step and takes the fastest, so the result is never slower than the plain
layout on the machine it runs on; a name forces that candidate; ``manual`` uses ``channels_last`` and
``cpu_kernels`` as given. Precision is not a candidate (bf16 changes the numbers): it stays
``Config.precision``. On a GPU the fields are used as given.

The choice is cached in ``<kernel cache>/fast_path.json`` (:func:`lnl.accel.kernels.cache_dir`), keyed by
the CPU (model name and flags), torch's version, the thread count, the precision and the step's
shape (method, architecture, batch size), and written into the run record (``env.fast_path``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import statistics
import time
import types
from typing import TYPE_CHECKING, Any, Callable

import torch

import lnl.accel.kernels as kernels
from lnl.data.colored import IGNORE_INDEX
from lnl.records import write_json_atomic

if TYPE_CHECKING:
    from lnl.config import Config

# candidate -> (channels_last, cpu_kernels)
CANDIDATES = {"cl+kernels": (True, True), "cl": (True, False), "nchw": (False, False)}
CACHE_FILE = "fast_path.json"
# Timing: warm-up steps per candidate, then ROUNDS interleaved rounds of STEPS steps (median).
WARMUP, STEPS, ROUNDS = 3, 6, 2

Builder = Callable[["Config", torch.device], tuple[str, Any, Any, Any]]


def allowed(cfg: "Config") -> list[str]:
    """The candidates ``cfg``'s layout fields allow, fastest-expected first."""
    return [name for name, (cl, kern) in CANDIDATES.items()
            if (cl <= cfg.channels_last) and (kern <= cfg.cpu_kernels)]


def apply(cfg: "Config", name: str) -> "Config":
    """``cfg`` with the layout fields of candidate ``name``."""
    channels_last, cpu_kernels = CANDIDATES[name]
    return dataclasses.replace(cfg, channels_last=channels_last, cpu_kernels=cpu_kernels)


def choose(cfg: "Config", device: torch.device, build: Builder, precision: str,
           n_train: int | None = None) -> tuple["Config", dict[str, Any]]:
    """(``cfg`` with the chosen layout, what was chosen and how) for a run on ``device`` in ``precision``
    (resolved: 'bf16' or 'fp32'). ``n_train``: the run's training images; no batch the run will see is larger,
    so none is timed larger (a --batch-size of 100,000 on 512 images times batches of 512).

    ``build(cfg, device) -> (precision, autocast, model, method)`` is the engine's
    :func:`lnl.training.build.build_training`, passed in (this module sits below the engine)."""
    if device.type != "cpu" or cfg.fast_path == "manual" or cfg.compile:
        return cfg, {"choice": "manual", "source": "config"}
    if cfg.fast_path in CANDIDATES:
        return apply(cfg, cfg.fast_path), {"choice": cfg.fast_path, "source": "forced"}
    names = allowed(cfg)
    if len(names) == 1:
        return apply(cfg, names[0]), {"choice": names[0], "source": "only candidate allowed"}
    timed = cfg  # what is timed and names the cache entry; the run keeps its own batch size
    if n_train is not None and cfg.batch_size > n_train:
        timed = dataclasses.replace(cfg, batch_size=max(n_train, 1))
    key = cache_key(timed, precision)
    cached = _read_cache().get(key)
    if cached and cached.get("choice") in names and set(names) <= set(cached.get("images_per_s", {})):
        speeds = {n: cached["images_per_s"][n] for n in names}
        choice = max(speeds, key=speeds.get)
        return apply(cfg, choice), {**cached, "choice": choice, "source": "cache"}
    speeds = time_candidates(timed, device, build, names)
    choice = max(speeds, key=speeds.get)
    entry = {"choice": choice, "images_per_s": speeds, "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_cache(key, entry)
    return apply(cfg, choice), {**entry, "source": "tuned now"}


def cache_key(cfg: "Config", precision: str) -> str:
    """What the timing depends on: CPU, torch, threads, precision and the step's shape."""
    parts = [kernels._cpu_id(), torch.__version__, str(torch.get_num_threads()), precision, cfg.method,
             cfg.arch, str(cfg.width), str(cfg.g_depth), str(cfg.head_width), str(cfg.batch_size),
             cfg.lnl_step, str(cfg.bias_probe)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def time_candidates(cfg: "Config", device: torch.device, build: Builder, names: list[str]) -> dict[str, float]:
    """Images/s of the run's training step under each candidate: synthetic batches of the run's batch
    size, warm-up, then interleaved timed rounds (median), so a drift in machine load hits all alike."""
    gen = torch.Generator().manual_seed(0)
    n = cfg.batch_size
    x = torch.rand(n, 3, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    bias = torch.randint(0, 8, (n, 3, 14, 14), generator=gen).masked_fill_(
        torch.rand(n, 3, 14, 14, generator=gen) < 0.7, IGNORE_INDEX).to(torch.uint8)
    epoch = cfg.warmup_epochs  # an epoch of the method's main step (LNL: unlearning, not its warm-up)
    rng = torch.get_rng_state()
    steps = {}
    for name in names:
        _, _, model, method = build(apply(cfg, name), device)
        model.train()
        # A method with per-sample state (LfF) is timed on a split of one batch, each image its own sample.
        method.prepare(types.SimpleNamespace(y=y, bias=bias))
        index = (torch.arange(n),) if method.needs_index else ()
        steps[name] = lambda *args, m=method, i=index: m.step(*args, *i)
        for _ in range(WARMUP):
            steps[name](x, y, bias, epoch)
    rounds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(ROUNDS):
        for name in names:
            start = time.perf_counter()
            for _ in range(STEPS):
                steps[name](x, y, bias, epoch)
            rounds[name].append(STEPS * n / (time.perf_counter() - start))
    torch.set_rng_state(rng)  # the run's own seeding is untouched by the timing
    return {name: round(statistics.median(v), 1) for name, v in rounds.items()}


def _cache_path() -> Any:
    return kernels.cache_dir() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, entry: dict[str, Any]) -> None:
    """Add one entry, atomically (another process sees the old file or the new one; a lost race costs
    one more tuning, never a broken file)."""
    try:
        write_json_atomic(_cache_path(), {**_read_cache(), key: entry})
    except OSError:
        pass  # no cache: the next run tunes again
