"""``make demo`` (``lnl-demo``): baseline and LNL on Colored MNIST at sigma^2 = 0.020, side by side, then a report.

Trains both methods with recipe ``fast`` (lnl/resources/recipes/fast.yaml: the Baseline's short schedule, then
LNL's phase started from that Baseline, as the headline's LNL starts from its 100-epoch one) into runs/demo/,
prints their unbiased test accuracies, and writes reports/demo/README.md.
Paths are relative to the working directory. Re-running it skips finished runs (delete runs/demo/ to train again).

On a CPU without fast bf16 (no AMX or AVX512-BF16: fp32) both runs train on the first 30,000 of the 55,000
training images, to stay within 20 minutes on 2 cores: an fp32 epoch over all 55,000 takes about 54 s
(baseline) and 85 s (LNL) with evaluation on a 2-core AVX2 CPU (AMD EPYC, Zen 3), 30 minutes for the recipe;
on 30,000, scored after the last epoch only, the demo took 18.2 minutes there from a fresh clone.
The numbers each machine gave are in the README's quick start.
"""
from __future__ import annotations

import time
from pathlib import Path

from lnl.commands import one_line_errors
from lnl.analysis.paper import paper
from lnl.config import Config
from lnl.data.dataset import load_generated
from lnl.training.device import resolve_device, resolve_precision
from lnl.training.loop import train
from lnl.report.build import build_report
from lnl.report.load import from_folders

COLOR_VAR = 0.02
RECIPE = "fast"
# Relative to the working directory: ``make demo`` runs from the repository root.
DATA, RUNS, REPORT = Path("data"), Path("runs/demo"), Path("reports/demo")
FP32_CPU_TRAIN_SIZE = 30_000  # see the module doc


def train_size() -> int | None:
    """The demo's training-set size on this machine: all images, or fewer on a CPU that trains in fp32."""
    device = resolve_device("auto")
    return FP32_CPU_TRAIN_SIZE if device.type == "cpu" and resolve_precision("auto", device) == "fp32" else None


def run_config(method: str, size: int | None) -> Config:
    """The demo's run of ``method`` on ``size`` training images (None: all of them)."""
    # Scored after the last epoch only (eval_every 0): the demo prints the last epoch, and scoring the 20,000
    # validation and test images after each of its 27 epochs cost about 2 of its 20 minutes in fp32 on 2 cores.
    return Config.from_dict({"recipe": RECIPE, "method": method, "color_var": COLOR_VAR, "runs_dir": str(RUNS),
                             "cache_dir": str(DATA), "resume": True, "tags": ["demo"], "train_size": size,
                             "eval_every": 0})


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    del argv  # no flags
    start = time.perf_counter()
    t = time.perf_counter()
    load_generated(COLOR_VAR, cache_dir=DATA)
    print(f"demo: Colored MNIST sigma^2={COLOR_VAR:.3f} ready ({time.perf_counter() - t:.1f}s)")
    results = {}
    size = train_size()
    if size:
        print(f"demo: this CPU has no fast bf16 (fp32): training on the first {size:,} training images")
    for method in ("baseline", "lnl"):
        cfg = run_config(method, size)
        print(f"\ndemo: training {method} ({cfg.epochs} epochs)", flush=True)
        results[method] = train(cfg)
    epochs = results["lnl"].epochs[-1]["epoch"] if results["lnl"].epochs else 0
    print(f"\n== Colored MNIST, sigma^2 = {COLOR_VAR:.3f}, recipe {RECIPE}: LNL's {epochs} epochs from the Baseline "
          f"(unbiased test accuracy)")
    print(f"{'method':<10} {'test acc':>9} {'val_unbiased':>13} {'val_biased':>11} {'bias-head acc':>14} "
          f"{'s/epoch':>8} {'paper':>7}")
    for method, res in results.items():
        last = res.epochs[-1] if res.epochs else {}
        per_epoch = sum(e["time/epoch_s"] for e in res.epochs) / max(len(res.epochs), 1)
        print(f"{method:<10} {res.final.get('test/acc', float('nan')):>9.4f} "
              f"{last.get('val_unbiased/acc', float('nan')):>13.4f} {last.get('val_biased/acc', float('nan')):>11.4f} "
              f"{last.get('bias/acc', float('nan')):>14.4f} {per_epoch:>8.1f} "
              f"{paper().get((method, COLOR_VAR), float('nan')):>7.4f}")
    gain = results["lnl"].final.get("test/acc", 0) - results["baseline"].final.get("test/acc", 0)
    print(f"LNL - baseline: {gain:+.4f}")
    written = build_report(from_folders([RUNS]), REPORT, title="Demo: baseline vs LNL at σ² = 0.020",
                           command="make demo (lnl-demo)", log=print)
    print(f"\ndemo: report with {len(written)} files in {REPORT / 'README.md'}; "
          f"total {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
