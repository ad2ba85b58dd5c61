"""The suites ``lnl-benchmark`` runs, built on :mod:`lnl.accel.bench`, and the Markdown tables it prints.

* :func:`speed_suite`: our step against the reference, baseline and LNL (images/s, one 60k-image
  epoch, peak memory, the ratio to the reference); with ``ablation``, our step with each
  optimization off or on, cumulatively.
* :func:`accuracy_suite`: the same seeds and short budget trained with several variants (fast path
  vs fp32 plain path, two-pass vs one-pass LNL step): what a speed-up costs in accuracy.
* :func:`workers_suite`: total images/s of N worker processes sharing the machine and the trials
  per hour of a short recipe (:func:`lnl.accel.bench.parallel_throughput`, :func:`lnl.accel.bench.trials_per_hour`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from lnl.accel.bench import measure_all, ours, parallel_throughput, reference, trials_per_hour
from lnl.config import Config
from lnl.data.dataset import ColoredMnist

Log = Callable[[str], None]

PRECISION_VARIANTS = [("fp32 plain (NCHW)", {"precision": "fp32", "channels_last": False, "cpu_kernels": False}),
                      ("fast path", {"precision": "auto", "channels_last": True, "cpu_kernels": True})]
STEP_VARIANTS = [("two-pass (official)", {"lnl_step": "two_pass"}), ("one-pass", {"lnl_step": "one_pass"})]
# What --workers times for trials/hour: a short LNL run on 10,000 images.
TRIAL_RECIPE = {"recipe": "reproduction", "method": "lnl", "color_var": 0.02, "train_size": 10000}


def speed_variants(device: torch.device, fast: str, ablation: bool) -> list[tuple[str, dict[str, Any]]]:
    """Our pipelines to time: the fast path, and with ``ablation`` one optimization at a time
    (cumulative rows from the plain path; the CPU kernels or CUDA graphs last)."""
    variants = [("ours", dict(precision=fast, channels_last=True))]
    if not ablation:
        return variants
    variants += [("ours fp32 NCHW (plain)", dict(precision="fp32", channels_last=False, cpu_kernels=False)),
                 ("ours fp32 channels-last", dict(precision="fp32", channels_last=True, cpu_kernels=False)),
                 ("ours bf16 NCHW", dict(precision="bf16", channels_last=False, cpu_kernels=False)),
                 ("ours + torch.compile", dict(precision=fast, channels_last=True, compile=True)),
                 ("ours one-pass LNL", dict(precision=fast, channels_last=True, lnl_step="one_pass"))]
    if device.type == "cuda":
        variants.append(("ours without CUDA graphs", dict(precision=fast, channels_last=True, cuda_graphs=False)))
    else:
        variants.append(("ours without CPU kernels", dict(precision=fast, channels_last=True, cpu_kernels=False)))
    return variants


def speed_suite(data: ColoredMnist, device: torch.device, variants: list[tuple[str, dict[str, Any]]], *,
                warmup: int, steps: int, repeats: int, epoch: bool, reference_epoch: bool,
                log: Log = print) -> list[dict[str, Any]]:
    """One row per (step kind, pipeline): images/s, epoch seconds, peak memory, ratio to the reference."""
    rows = []
    for kind in ("baseline", "lnl"):
        pipelines = [("reference", *reference(kind, data, device))]
        pipelines += [(name, *ours(kind, data, device, **opts)) for name, opts in variants
                      if not (kind == "baseline" and opts.get("lnl_step") == "one_pass")]
        results = measure_all(pipelines, device, warmup, steps, repeats, epoch,
                              skip_epoch=() if reference_epoch else ("reference",))
        ref = results["reference"]["images_per_s"]
        for name, res in results.items():
            if "error" in res:
                rows.append({"step": kind, "pipeline": name, **res})
                continue
            rows.append({"step": kind, "pipeline": name, **res, "ratio": res["images_per_s"] / ref})
            log(_speed_line(rows[-1]))
    return rows


def accuracy_suite(epochs: int, cache_dir: str, device: str, seeds: list[int], methods: tuple[str, ...],
                   variants: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Same seeds, same short budget (the reproduction recipe at sigma^2 = 0.020): the unbiased test
    accuracy of each variant, per method and seed."""
    from lnl.training.loop import train

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


def accuracy_lines(title: str, rows: list[dict[str, Any]]) -> list[str]:
    """Per seed, then the mean per (method, variant)."""
    lines = [f"\n{title}"]
    lines += [f"  {r['method']:<9} {r['variant']:<20} seed {r['seed']}: {r['test_acc']:.4f} "
              f"({r['epoch_s']:.1f} s/epoch)" for r in rows]
    for method in dict.fromkeys(r["method"] for r in rows):
        for variant in dict.fromkeys(r["variant"] for r in rows):
            accs = [r["test_acc"] for r in rows if r["method"] == method and r["variant"] == variant]
            lines.append(f"  {method:<9} {variant:<20} mean {np.mean(accs):.4f} over {len(accs)} seeds")
    return lines


def workers_suite(workers: list[int], *, cache_dir: str, color_var: float, warmup: int, steps: int,
                  trial_recipe: dict[str, Any] | None, device: str = "cpu",
                  log: Log = print) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(throughput rows, trials/hour rows) for each worker count, each worker on its share of the cores;
    with 2 in ``workers`` also 2 workers without a share (torch's default threads), for comparison.
    ``device='cuda'``: every worker on the one GPU (the reference pipeline too)."""
    rows, trials = [], []
    cases = [(n, True) for n in workers] + ([(2, False)] if 2 in workers else [])
    for kind in ("baseline", "lnl"):
        for pipeline in ("ours", "reference"):
            alone = None
            for n, share in cases:
                row = parallel_throughput(kind, pipeline, n, share=share, cache_dir=cache_dir,
                                          color_var=color_var, warmup=warmup, steps=steps, device=device)
                alone = row["images_per_s"] if (n, share) == (1, True) else alone
                row["ratio_to_one"] = row["images_per_s"] / alone if alone else None
                rows.append(row)
                log(_worker_line(row))
    for n, share in cases if trial_recipe else []:
        trials.append(trials_per_hour(n, trial_recipe, share=share, cache_dir=cache_dir, device=device))
        log(f"trials/hour  workers {n} {'shared' if share else 'unshared'}: "
            f"{trials[-1]['trials_per_hour']:.1f} ({trials[-1]['wall_s']:.1f} s)")
    return rows, trials


def _worker_line(r: dict[str, Any]) -> str:
    ratio = f"x{r['ratio_to_one']:.2f}" if r["ratio_to_one"] else ""
    return (f"{r['step']:<9} {r['pipeline']:<10} workers {r['workers']} {'shared' if r['share'] else 'unshared':<8} "
            f"{r['images_per_s']:>8.0f} img/s total  threads {r['threads']}  {ratio}")


def _speed_line(r: dict[str, Any]) -> str:
    epoch = f"{r['epoch_s']:.2f}s" if "epoch_s" in r else "-"
    return (f"{r['step']:<9} {r['pipeline']:<26} {r['images_per_s']:>8.0f} img/s  epoch {epoch:>7}  "
            f"peak {r['peak_mem_mb']:>7.0f} MB  x{r['ratio']:.2f}")


def speed_table(rows: list[dict[str, Any]]) -> str:
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


def workers_table(rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
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
