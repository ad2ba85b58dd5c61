"""Training speed: our path against a reference pipeline in the manner of the authors' code.

    lnl-benchmark                       # CPU: throughput, 60k-image epochs, peak memory
    lnl-benchmark --ablation            # + what each optimization contributes
    lnl-benchmark --accuracy-epochs 3   # + test accuracy: fast path vs fp32 plain path
    lnl-benchmark --one-pass-epochs 3   # + test accuracy: two-pass vs one-pass LNL step
    lnl-benchmark --device cuda --json bench.json
    lnl-benchmark --workers 1 2         # N processes at once: total images/s, trials/hour

Both pipelines run in this process with the paper's network sizes, batch 128, the same warm-up and timed steps,
alternating (median reported; :mod:`lnl.accel.bench`). On a CPU it also prints the layout lnl.accel.fast_path picks.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform

import torch

from lnl.accel import cpu_kernels_status, fast_path
from lnl.accel.bench import bench_data
from lnl.accel.bench_suites import (PRECISION_VARIANTS, STEP_VARIANTS, TRIAL_RECIPE, accuracy_lines, accuracy_suite,
                                    speed_suite, speed_table, speed_variants, workers_suite, workers_table)
from lnl.accel.workers import available_cores
from lnl.commands import at_least, one_line_errors
from lnl.config import Config
from lnl.records import write_text_atomic
from lnl.training.build import build_training
from lnl.training.device import cpu_has_fast_bf16, cpu_model, resolve_device, resolve_precision


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto: the GPU when there is one; cuda on a machine without one is refused")
    p.add_argument("--warmup", type=int, default=10, help="warm-up steps before timing")
    p.add_argument("--steps", type=int, default=40, help="timed steps per round for the throughput")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds; the median is reported")
    p.add_argument("--no-epoch", action="store_true", help="skip the full-epoch (60,000 images) timing")
    p.add_argument("--no-reference-epoch", action="store_true", help="skip the reference's epoch (minutes)")
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
    at_least(warmup=(args.warmup, 0), steps=(args.steps, 1), repeats=(args.repeats, 1), trial_epochs=(
        args.trial_epochs, 0), accuracy_epochs=(args.accuracy_epochs, 0), one_pass_epochs=(args.one_pass_epochs, 0),
             workers=(min(args.workers or [1]), 1))
    args.device = resolve_device(args.device).type  # cuda without a GPU: a ConfigError, one line
    with contextlib.suppress(KeyboardInterrupt):
        return workers_main(args) if args.workers else speed_main(args)
    return 130


def speed_main(args: argparse.Namespace) -> int:
    """Ours vs the reference (and the ablation, accuracy checks): the default table."""
    device = torch.device(args.device)
    fast = resolve_precision("auto", device)
    data = bench_data(args.cache_dir, args.color_var)
    env = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
           else platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "fast_precision": fast, "cpu_bf16": cpu_has_fast_bf16(),
           "cpu_kernels": cpu_kernels_status(Config(), device),
           "batch_size": 128, "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats,
           "epoch_images": len(data.y("train"))}
    if device.type == "cpu":  # what lnl.accel.fast_path picks for a run on this CPU (timed once, cached)
        env["fast_path"] = {kind: fast_path.choose(Config(method=kind), device, build_training, fast)[1]
                            for kind in ("baseline", "lnl")}
    print(f"benchmark on {env['device_name']} ({device}, {env['threads']} threads, torch {env['torch']}); "
          f"fast path precision {fast}; {args.warmup} warm-up steps, then {args.repeats} interleaved rounds of "
          f"{args.steps} timed steps (median); epoch = {env['epoch_images']} images; CPU kernels: "
          f"{env['cpu_kernels']}; tuned layout: "
          f"{ {k: v['choice'] for k, v in env.get('fast_path', {}).items()} }", flush=True)
    rows = speed_suite(data, device, speed_variants(device, fast, args.ablation), warmup=args.warmup,
                       steps=args.steps, repeats=args.repeats, epoch=not args.no_epoch,
                       reference_epoch=not args.no_reference_epoch, log=lambda line: print(line, flush=True))
    print("\n" + speed_table(rows))
    checks = {}
    for key, epochs, methods, variants, title in (
            ("accuracy", args.accuracy_epochs, ("baseline", "lnl"), PRECISION_VARIANTS, "fast path vs fp32 plain path"),
            ("one_pass", args.one_pass_epochs, ("lnl",), STEP_VARIANTS, "LNL two-pass vs one-pass step")):
        checks[key] = accuracy_suite(epochs, args.cache_dir, str(device), args.accuracy_seeds, methods,
                                     variants) if epochs else []
        if epochs:
            print("\n".join(accuracy_lines(f"{title}: sigma^2=0.020, {epochs} epochs, unbiased test accuracy",
                                            checks[key])))
    _write_json(args.json, {"env": env, "rows": rows, **checks})
    return 0


def workers_main(args: argparse.Namespace) -> int:
    """``--workers``: total throughput of N processes at once and trials/hour."""
    cores, device = len(available_cores()), args.device
    env = {"device": device, "device_name": torch.cuda.get_device_name(0) if device == "cuda" else cpu_model(),
           "cores": cores, "torch": torch.__version__,
           "fast_precision": resolve_precision("auto", torch.device(device)), "cpu_bf16": cpu_has_fast_bf16(),
           "warmup": args.warmup, "steps": args.steps, "trial_recipe": {**TRIAL_RECIPE, "epochs": args.trial_epochs}}
    print(f"workers benchmark on {env['device_name']} ({cores} cores); each worker: {args.warmup} warm-up steps, "
          f"then {args.steps} timed steps, all started together", flush=True)
    bench_data(args.cache_dir, args.color_var)  # make the cache once, before the workers race for it
    rows, trials = workers_suite(args.workers, cache_dir=args.cache_dir, color_var=args.color_var,
                                 warmup=args.warmup, steps=args.steps,
                                 trial_recipe=env["trial_recipe"] if args.trial_epochs else None, device=device,
                                 log=lambda line: print(line, flush=True))
    print("\n" + workers_table(rows, trials))
    _write_json(args.json, {"env": env, "workers": rows, "trials": trials})
    return 0


def _write_json(path: str | None, results: dict) -> None:
    if path:
        write_text_atomic(path, json.dumps(results, indent=1))
        print(f"results written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
