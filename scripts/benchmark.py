#!/usr/bin/env python
"""Training speed: our path against a reference pipeline in the manner of the authors' code.

    python scripts/benchmark.py                       # CPU: throughput, 60k-image epochs, peak memory
    python scripts/benchmark.py --ablation            # + what each optimization contributes
    python scripts/benchmark.py --accuracy-epochs 3   # + test accuracy: fast path vs fp32 plain path
    python scripts/benchmark.py --one-pass-epochs 3   # + test accuracy: two-pass vs one-pass LNL step
    python scripts/benchmark.py --device cuda --json bench.json

Both pipelines run in this process on the same machine with the paper's network
sizes, batch 128 and the same number of warm-up and timed steps; timing rounds
alternate between pipelines and the median round is reported. The reference
(lnl.reference) uses a per-sample Dataset with ToTensor + Normalize, a per-sample
PIL resize for the bias labels, a default DataLoader, three head modules with
their own optimizers, fp32 NCHW and the official two-pass LNL step. Ours is the
training core itself (lnl.methods on lnl.data.tensors). Our baseline step runs
without the bias probe, like the reference's.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lnl.config import Config  # noqa: E402
from lnl.data.dataset import ColoredMnist, load_generated  # noqa: E402
from lnl.data.tensors import DeviceData  # noqa: E402
from lnl.cuda_graphs import graphed_step  # noqa: E402
from lnl.engine import (autocast_factory, cpu_has_fast_bf16, cpu_kernels_status, prepare_model,  # noqa: E402
                        resolve_precision)
from lnl.methods import METHODS  # noqa: E402
from lnl.reference import OfficialColoredMnist, ReferenceLNL  # noqa: E402


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
    cfg = Config(method=kind, precision=precision, channels_last=channels_last, compile=compile,
                 cuda_graphs=cuda_graphs, lnl_step=lnl_step, bias_probe=False, cpu_kernels=cpu_kernels)
    torch.manual_seed(0)
    dd = DeviceData(data, device)
    model = prepare_model(cfg, device)
    method = METHODS.get(kind)(cfg, model, autocast_factory(device, precision), compile=compile)
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


PRECISION_VARIANTS = [("fp32 plain (NCHW)", {"precision": "fp32", "channels_last": False, "cpu_kernels": False}),
                      ("fast path", {"precision": "auto", "channels_last": True, "cpu_kernels": True})]
STEP_VARIANTS = [("two-pass (official)", {"lnl_step": "two_pass"}), ("one-pass", {"lnl_step": "one_pass"})]


def accuracy_check(epochs: int, cache_dir: str, device: str, seeds: list[int], methods: tuple[str, ...],
                   variants: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Same seeds, same short budget (the reproduction recipe at sigma^2 = 0.020): the unbiased test
    accuracy of each variant, per method and seed."""
    from lnl.engine import train

    rows = []
    for method in methods:
        for seed in seeds:
            for name, extra in variants:
                tag = "-".join(f"{k}={v}" for k, v in extra.items())
                cfg = Config.from_dict({"recipe": "reproduction", "method": method, "color_var": 0.02,
                                        "epochs": epochs, "seed": seed, "cache_dir": cache_dir, "device": device,
                                        "progress": False, "wandb_mode": "disabled", "runs_dir": "runs/benchmark",
                                        "run_id": f"acc-{method}-{tag}-e{epochs}-s{seed}", **extra})
                result = train(cfg)
                rows.append({"method": method, "variant": name, "seed": seed, "epochs": epochs,
                             "test_acc": result.test_acc,
                             "epoch_s": float(np.mean([e["time/epoch_s"] for e in result.epochs]))})
    return rows


def _print_accuracy(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    for row in rows:
        print(f"  {row['method']:<9} {row['variant']:<20} seed {row['seed']}: {row['test_acc']:.4f} "
              f"({row['epoch_s']:.1f} s/epoch)")
    for method in dict.fromkeys(r["method"] for r in rows):
        for variant in dict.fromkeys(r["variant"] for r in rows):
            accs = [r["test_acc"] for r in rows if r["method"] == method and r["variant"] == variant]
            print(f"  {method:<9} {variant:<20} mean {np.mean(accs):.4f} over {len(accs)} seeds")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--warmup", type=int, default=10, help="warm-up steps before timing")
    p.add_argument("--steps", type=int, default=40, help="timed steps per round for the throughput")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds; the median is reported")
    p.add_argument("--no-epoch", action="store_true", help="skip the full-epoch (60,000 images) timing")
    p.add_argument("--no-reference-epoch", action="store_true",
                   help="time the full epoch of our pipelines only (the reference's takes minutes)")
    p.add_argument("--ablation", action="store_true", help="also time our path with each optimization off/on")
    p.add_argument("--accuracy-epochs", type=int, default=0,
                   help="also train baseline and LNL this many epochs with the fast and the fp32 plain path")
    p.add_argument("--one-pass-epochs", type=int, default=0,
                   help="also train LNL this many epochs with the two-pass and the one-pass step and compare")
    p.add_argument("--accuracy-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--color-var", type=float, default=0.02)
    p.add_argument("--cache-dir", default="data")
    p.add_argument("--json", default=None, help="write all results to this JSON file")
    args = p.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    fast = resolve_precision("auto", device)
    data = bench_data(args.cache_dir, args.color_var)
    epoch = not args.no_epoch
    env = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
           else platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "fast_precision": fast, "cpu_bf16": cpu_has_fast_bf16(),
           "cpu_kernels": cpu_kernels_status(Config(), device),
           "batch_size": 128, "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats,
           "epoch_images": len(data.y("train"))}
    print(f"benchmark on {env['device_name']} ({device}, {env['threads']} threads, torch {env['torch']}); "
          f"fast path precision {fast}; {args.warmup} warm-up steps, then {args.repeats} interleaved rounds of "
          f"{args.steps} timed steps (median); epoch = "
          f"{env['epoch_images']} images; CPU kernels: {env['cpu_kernels']}", flush=True)

    variants = [("ours", dict(precision=fast, channels_last=True))]
    if args.ablation:
        # Cumulative rows: the plain path, then one optimization at a time (the CPU kernels last).
        variants += [("ours fp32 NCHW (plain)", dict(precision="fp32", channels_last=False, cpu_kernels=False)),
                     ("ours fp32 channels-last", dict(precision="fp32", channels_last=True, cpu_kernels=False)),
                     ("ours bf16 NCHW", dict(precision="bf16", channels_last=False, cpu_kernels=False)),
                     ("ours + torch.compile", dict(precision=fast, channels_last=True, compile=True)),
                     ("ours one-pass LNL", dict(precision=fast, channels_last=True, lnl_step="one_pass"))]
        if device.type == "cuda":
            variants.append(("ours without CUDA graphs", dict(precision=fast, channels_last=True,
                                                              cuda_graphs=False)))
        else:
            variants.append(("ours without CPU kernels", dict(precision=fast, channels_last=True,
                                                              cpu_kernels=False)))
    rows = []
    for kind in ("baseline", "lnl"):
        pipelines = [("reference", *reference(kind, data, device))]
        pipelines += [(name, *ours(kind, data, device, **opts)) for name, opts in variants
                      if not (kind == "baseline" and opts.get("lnl_step") == "one_pass")]
        results = measure_all(pipelines, device, args.warmup, args.steps, args.repeats, epoch,
                              skip_epoch=("reference",) if args.no_reference_epoch else ())
        ref = results["reference"]["images_per_s"]
        for name, res in results.items():
            if "error" in res:
                rows.append({"step": kind, "pipeline": name, **res})
                continue
            rows.append({"step": kind, "pipeline": name, **res, "ratio": res["images_per_s"] / ref})
            print(_row(rows[-1]), flush=True)
    print("\n" + _table(rows))
    accuracy, steps_check = [], []
    if args.accuracy_epochs:
        accuracy = accuracy_check(args.accuracy_epochs, args.cache_dir, str(device), args.accuracy_seeds,
                                  ("baseline", "lnl"), PRECISION_VARIANTS)
        _print_accuracy(f"fast path vs fp32 plain path: sigma^2=0.020, {args.accuracy_epochs} epochs, unbiased "
                        "test accuracy", accuracy)
    if args.one_pass_epochs:
        steps_check = accuracy_check(args.one_pass_epochs, args.cache_dir, str(device), args.accuracy_seeds,
                                     ("lnl",), STEP_VARIANTS)
        _print_accuracy(f"LNL two-pass vs one-pass step: sigma^2=0.020, {args.one_pass_epochs} epochs, unbiased "
                        "test accuracy", steps_check)
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "rows": rows, "accuracy": accuracy,
                                               "one_pass": steps_check}, indent=1))
        print(f"results written to {args.json}")
    return 0


def _row(r: dict[str, Any]) -> str:
    epoch = f"{r['epoch_s']:.2f}s" if "epoch_s" in r else "-"
    return (f"{r['step']:<9} {r['pipeline']:<26} {r['images_per_s']:>8.0f} img/s  epoch {epoch:>7}  "
            f"peak {r['peak_mem_mb']:>7.0f} MB  x{r['ratio']:.2f}")


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| step | pipeline | images/s | epoch (60k images) | peak memory | ours / reference |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['step']} | {r['pipeline']} | failed: {r['error']} | | | |")
            continue
        epoch = f"{r['epoch_s']:.2f} s" if "epoch_s" in r else "-"
        lines.append(f"| {r['step']} | {r['pipeline']} | {r['images_per_s']:.0f} | {epoch} | "
                     f"{r['peak_mem_mb']:.0f} MB | {r['ratio']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
