"""Benchmark machinery: timed training steps of our path and of a reference pipeline in the manner of
the authors' code, alone or as several worker processes sharing the machine.

``scripts/benchmark.py`` is the command line over this module. Both pipelines use the paper's network
sizes and batch 128. The reference (:mod:`lnl.accel.reference`) uses a per-sample Dataset with ToTensor +
Normalize, a per-sample PIL resize for the bias labels, a default DataLoader, three head modules with
their own optimizers, fp32 NCHW and the official two-pass LNL step. Ours is the training core itself
(:mod:`lnl.methods` on :mod:`lnl.data.tensors`); our baseline step runs without the bias probe, like
the reference's.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import threading
import time
from typing import Any, Callable

import numpy as np
import torch

from lnl.config import Config
from lnl.accel.cuda_graphs import graphed_step
from lnl.data.dataset import ColoredMnist, load_generated
from lnl.data.tensors import DeviceData
from lnl.training.build import build_training
from lnl.training.device import resolve_precision
from lnl.accel.reference import OfficialColoredMnist, ReferenceLNL


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak, or the process's resident set sampled every 5 ms."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak_mb = device, 0.0

    @staticmethod
    def _rss_mb() -> float:
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._stop = threading.Event()
        self.peak_mb = self._rss_mb()

        def sample() -> None:
            while not self._stop.wait(0.005):
                self.peak_mb = max(self.peak_mb, self._rss_mb())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Batches:
    """An endless stream of batches from a pipeline (restarts its epoch iterator when it runs out)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make, self.it = make, make()

    def next(self) -> Any:
        try:
            return next(self.it)
        except StopIteration:
            self.it = self.make()
            return next(self.it)


def timed_steps(step: Callable[[Any], None], batches: Batches, device: torch.device, steps: int,
                batch_size: int = 128) -> float:
    """images/s over ``steps`` steps (data loading included)."""
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step(batches.next())
    sync(device)
    return steps * batch_size / (time.perf_counter() - t)


def epoch_time(step: Callable[[Any], None], make: Callable[[], Any], device: torch.device) -> tuple[float, int]:
    """Wall time of one full pass over the benchmark's 60,000 images."""
    sync(device)
    t, n = time.perf_counter(), 0
    for batch in make():
        step(batch)
        n += 1
    sync(device)
    return time.perf_counter() - t, n


def measure_all(pipelines: list[tuple[str, Callable, Callable]], device: torch.device, warmup: int, steps: int,
                repeats: int, epoch: bool, skip_epoch: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Throughput of every pipeline in ``repeats`` interleaved rounds (median reported, so drifts in
    machine load hit all pipelines alike), then each pipeline's epoch time and peak memory.

    A pipeline that fails during its warm-up (say, a compile mode this machine can't run) is
    reported with its error instead of ending the benchmark."""
    streams = {name: Batches(make) for name, _, make in pipelines}
    failed: dict[str, dict[str, Any]] = {}
    for name, step, _ in pipelines:
        try:
            for _ in range(warmup):
                step(streams[name].next())
        except Exception as err:  # noqa: BLE001 - reported in the table
            failed[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
            print(f"  {name}: failed during warm-up: {failed[name]['error']}", flush=True)
    pipelines = [p for p in pipelines if p[0] not in failed]
    rounds: dict[str, list[float]] = {name: [] for name, _, _ in pipelines}
    for _ in range(repeats):
        for name, step, _ in pipelines:
            rounds[name].append(timed_steps(step, streams[name], device, steps))
    out = {}
    for name, step, make in pipelines:
        with PeakMemory(device) as mem:
            row: dict[str, float] = {"images_per_s": float(np.median(rounds[name])),
                                     "images_per_s_rounds": [round(v, 1) for v in rounds[name]]}
            if epoch and name not in skip_epoch:
                row["epoch_s"], row["epoch_steps"] = epoch_time(step, make, device)
            else:
                timed_steps(step, streams[name], device, steps)
        row["peak_mem_mb"] = mem.peak_mb
        out[name] = row
    return {**out, **failed}


def bench_data(cache_dir: str, color_var: float) -> ColoredMnist:
    """60,000 biased training images (our train split + the held-out val_biased images)."""
    data = load_generated(color_var, cache_dir=cache_dir)
    a = data.arrays
    arrays = dict(a)
    arrays["train_x"] = np.concatenate([a["train_x"], a["val_biased_x"]])
    arrays["train_y"] = np.concatenate([a["train_y"], a["val_biased_y"]])
    arrays["train_color"] = np.concatenate([a["train_color"], a["val_biased_color"]])
    return ColoredMnist(arrays, data.meta)


def ours(kind: str, data: ColoredMnist, device: torch.device, precision: str, channels_last: bool,
         compile: bool = False, lnl_step: str = "two_pass", cuda_graphs: bool = True,
         cpu_kernels: bool = True) -> tuple[Callable, Callable]:
    """Our training step of ``kind`` as the engine builds it (:func:`lnl.training.build.build_training`, seed 0)
    and an endless batch stream; ``precision`` may be 'auto' (resolved as the engine does)."""
    cfg = Config(method=kind, precision=precision, channels_last=channels_last, compile=compile,
                 cuda_graphs=cuda_graphs, lnl_step=lnl_step, bias_probe=False, cpu_kernels=cpu_kernels,
                 fast_path="manual")  # the benchmark times the layout it names
    dd = DeviceData(data, device)
    _, _, model, method = build_training(cfg, device)
    model.train()
    gen = torch.Generator().manual_seed(0)

    def batches() -> Any:
        return iter(dd.batches("train", 128, gen))

    step = graphed_step(method, device, 128, cuda_graphs and not compile)
    return (lambda b: step(*b, 0)), batches


def reference(kind: str, data: ColoredMnist, device: torch.device) -> tuple[Callable, Callable]:
    torch.manual_seed(0)
    ref = ReferenceLNL()
    ref.net.to(device)
    ref.heads.to(device)
    ref.train()
    loader = torch.utils.data.DataLoader(OfficialColoredMnist(data.x("train"), data.y("train")), batch_size=128,
                                         shuffle=True)

    def step(batch: Any) -> None:
        images, color_labels, labels = (t.to(device) for t in batch)
        if kind == "lnl":
            ref.step(images, color_labels, labels)
        else:
            ref.step_baseline(images, labels)

    return step, lambda: iter(loader)


# --- several workers sharing the machine -------------------------------------------------------

def _worker_env(share: bool, workers: int, index: int) -> None:
    """This benchmark process's environment: its share of the cores (as the harness's own workers get it),
    or none at all (torch's default threads), for comparison."""
    from lnl.accel.workers import WORKER_INDEX_ENV, WORKERS_ENV, worker_env

    if share:
        os.environ.update(worker_env(workers, index))
    else:
        for key in (WORKERS_ENV, WORKER_INDEX_ENV):
            os.environ.pop(key, None)


def _worker(kind: str, pipeline: str, workers: int, index: int, share: bool, cache_dir: str,
            color_var: float, warmup: int, steps: int, device_name: str, barrier: Any, results: Any) -> None:
    """One benchmark worker: build its pipeline, warm up, wait for the others, time ``steps`` steps."""
    from lnl.accel.workers import apply_share

    _worker_env(share, workers, index)
    info = apply_share(None)
    device = torch.device(device_name)
    data = bench_data(cache_dir, color_var)
    step, make = (reference(kind, data, device) if pipeline == "reference"
                  else ours(kind, data, device, precision=resolve_precision("auto", device), channels_last=True))
    batches = Batches(make)
    for _ in range(warmup):
        step(batches.next())
    sync(device)
    barrier.wait()
    start = time.perf_counter()
    for _ in range(steps):
        step(batches.next())
    sync(device)
    results.put({"index": index, "images": steps * 128, "start": start, "end": time.perf_counter(),
                 "threads": info["threads"], "cores": info["cores"]})


def _trial_worker(workers: int, index: int, share: bool, cache_dir: str, recipe: dict[str, Any],
                  device_name: str, barrier: Any, results: Any) -> None:
    """One worker training a fixed short recipe end to end (data, epochs, evaluation) after the barrier."""
    from lnl.training.loop import train

    _worker_env(share, workers, index)
    with tempfile.TemporaryDirectory() as runs:
        cfg = Config.from_dict({**recipe, "seed": index, "cache_dir": cache_dir, "runs_dir": runs,
                                "progress": False, "wandb_mode": "disabled", "device": device_name})
        barrier.wait()
        start = time.perf_counter()
        train(cfg)
        results.put({"index": index, "start": start, "end": time.perf_counter()})


def _spawn(target: Callable, workers: int, args: Callable[[int, Any, Any], tuple]) -> list[dict[str, Any]]:
    """Start ``workers`` fresh processes on ``target`` with a shared barrier; their results."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=target, args=args(k, barrier, results)) for k in range(workers)]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join()
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError(f"a benchmark worker failed (exit codes {[p.exitcode for p in procs]})")
    return sorted(out, key=lambda r: r["index"])


def parallel_throughput(kind: str, pipeline: str, workers: int, *, share: bool = True, cache_dir: str = "data",
                        color_var: float = 0.02, warmup: int = 10, steps: int = 40,
                        device: str = "cpu") -> dict[str, Any]:
    """Total training images/s of ``workers`` processes stepping ``pipeline`` (``ours`` or
    ``reference``) at once: all start timing together (a barrier) and the window closes when the last
    ends. ``share=False`` leaves each process at torch's default threads (every core): the
    oversubscription this harness avoids, measured for comparison. ``device='cuda'``: all the workers
    on the one GPU, each with its share of the CPU cores for its data path."""
    rows = _spawn(_worker, workers, lambda k, barrier, results: (
        kind, pipeline, workers, k, share, cache_dir, color_var, warmup, steps, device, barrier, results))
    window = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    return {"step": kind, "pipeline": pipeline, "workers": workers, "share": share,
            "images_per_s": sum(r["images"] for r in rows) / window,
            "per_worker_images_per_s": [round(r["images"] / (r["end"] - r["start"]), 1) for r in rows],
            "threads": [r["threads"] for r in rows], "cores": [r["cores"] for r in rows]}


def trials_per_hour(workers: int, recipe: dict[str, Any], *, share: bool = True,
                    cache_dir: str = "data", device: str = "cpu") -> dict[str, Any]:
    """Trials per hour of ``workers`` processes each training ``recipe`` (a config dict) to the end."""
    rows = _spawn(_trial_worker, workers, lambda k, barrier, results: (
        workers, k, share, cache_dir, recipe, device, barrier, results))
    window = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    return {"workers": workers, "share": share, "wall_s": window, "trials_per_hour": workers * 3600 / window}
