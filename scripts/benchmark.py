#!/usr/bin/env python
"""Training speed: our path against a reference pipeline in the manner of the authors' code.

    python scripts/benchmark.py                       # CPU: throughput, 60k-image epochs, peak memory
    python scripts/benchmark.py --ablation            # + what each optimization contributes
    python scripts/benchmark.py --accuracy-epochs 3   # + test accuracy: fast path vs fp32 plain path
    python scripts/benchmark.py --one-pass-epochs 3   # + test accuracy: two-pass vs one-pass LNL step
    python scripts/benchmark.py --device cuda --json bench.json
    python scripts/benchmark.py --workers 1 2         # N processes at once: total images/s, trials/hour

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
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lnl.bench import bench_data, cpu_model, measure_all, ours, parallel_throughput, reference, trials_per_hour  # noqa: E402
from lnl.config import Config  # noqa: E402
from lnl.engine import cpu_has_fast_bf16, cpu_kernels_status, resolve_precision  # noqa: E402
from lnl.workers import available_cores  # noqa: E402


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
    p.add_argument("--workers", type=int, nargs="+", default=None, metavar="N",
                   help="instead: total throughput of N worker processes at once (each with its share of the "
                        "cores; N=2 also without sharing, for comparison) and trials/hour of a short recipe")
    p.add_argument("--trial-epochs", type=int, default=1,
                   help="--workers: epochs of the short LNL recipe timed for trials/hour (0: skip)")
    p.add_argument("--json", default=None, help="write all results to this JSON file")
    args = p.parse_args(argv)
    if args.workers:
        return workers_main(args)

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


TRIAL_RECIPE = {"recipe": "reproduction", "method": "lnl", "color_var": 0.02, "train_size": 10000}


def workers_main(args: argparse.Namespace) -> int:
    """``--workers``: the multi-worker table (lnl.bench.parallel_throughput) and trials/hour."""
    cores = len(available_cores())
    if any(n < 1 for n in args.workers):
        print("error: --workers takes whole numbers >= 1", file=sys.stderr)
        return 2
    env = {"device_name": cpu_model(), "cores": cores, "torch": torch.__version__,
           "fast_precision": resolve_precision("auto", torch.device("cpu")), "cpu_bf16": cpu_has_fast_bf16(),
           "warmup": args.warmup, "steps": args.steps, "trial_recipe": {**TRIAL_RECIPE, "epochs": args.trial_epochs}}
    print(f"workers benchmark on {env['device_name']} ({cores} cores); each worker: {args.warmup} warm-up steps, "
          f"then {args.steps} timed steps, all started together", flush=True)
    bench_data(args.cache_dir, args.color_var)  # make the cache once, before the workers race for it
    rows, trials = [], []
    cases = [(n, True) for n in args.workers] + ([(2, False)] if 2 in args.workers else [])
    for kind in ("baseline", "lnl"):
        for pipeline in ("ours", "reference"):
            alone = None
            for n, share in cases:
                row = parallel_throughput(kind, pipeline, n, share=share, cache_dir=args.cache_dir,
                                          color_var=args.color_var, warmup=args.warmup, steps=args.steps)
                alone = row["images_per_s"] if (n, share) == (1, True) else alone
                row["ratio_to_one"] = row["images_per_s"] / alone if alone else None
                rows.append(row)
                print(_worker_row(row), flush=True)
    if args.trial_epochs:
        for n, share in cases:
            trials.append(trials_per_hour(n, env["trial_recipe"], share=share, cache_dir=args.cache_dir))
            print(f"trials/hour  workers {n} {'shared' if share else 'unshared'}: "
                  f"{trials[-1]['trials_per_hour']:.1f} ({trials[-1]['wall_s']:.1f} s)", flush=True)
    print("\n" + _workers_table(rows, trials))
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "workers": rows, "trials": trials}, indent=1))
        print(f"results written to {args.json}")
    return 0


def _worker_row(r: dict[str, Any]) -> str:
    ratio = f"x{r['ratio_to_one']:.2f}" if r["ratio_to_one"] else ""
    return (f"{r['step']:<9} {r['pipeline']:<10} workers {r['workers']} {'shared' if r['share'] else 'unshared':<8} "
            f"{r['images_per_s']:>8.0f} img/s total  threads {r['threads']}  {ratio}")


def _workers_table(rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
    lines = ["| step | pipeline | workers | threads each | total images/s | per worker | vs 1 worker |",
             "|---|---|---:|---|---:|---|---:|"]
    for r in rows:
        label = f"{r['workers']}" + ("" if r["share"] else " (no share: torch default threads)")
        ratio = f"{r['ratio_to_one']:.2f}x" if r["ratio_to_one"] else "-"
        lines.append(f"| {r['step']} | {r['pipeline']} | {label} | {r['threads']} | {r['images_per_s']:.0f} | "
                     f"{', '.join(f'{v:.0f}' for v in r['per_worker_images_per_s'])} | {ratio} |")
    if trials:
        lines += ["", "| workers | wall time | trials/hour |", "|---|---:|---:|"]
        lines += [f"| {t['workers']}{'' if t['share'] else ' (no share)'} | {t['wall_s']:.1f} s | "
                  f"{t['trials_per_hour']:.1f} |" for t in trials]
    return "\n".join(lines)


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
