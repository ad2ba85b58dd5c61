"""LNL grids from the 100-epoch baselines, one row per setting (λ, μ, μ schedule, epochs) and level, with the
mean over seeds of the two validation objectives next to the unbiased test accuracy and the paper's LNL.

The objective that chooses is the one ``lnl-optuna-search --objective val_unbiased/acc`` maximizes: each run's
best-epoch ``val_unbiased/acc``, averaged over seeds (column "best val"); "final val" is the last epoch's.
Test accuracy is shown, never used: "test `last`" (final epoch, per seed) and "test at pick" (the epoch of
each run's best ``val_unbiased/acc``). Read-only; prints Markdown. From the repository root:

    .venv/bin/python reports/paper_reproduction/lnl_search_gpu/grid_table.py \\
        reports/paper_reproduction/lnl_search_gpu/records reports/paper_reproduction/lnl_search_transfer/records \\
        > reports/paper_reproduction/lnl_search_gpu/grid_table.md
"""
import csv
import statistics as st
import sys
from collections import defaultdict

from lnl.report.load import from_folders
from lnl.report.tables import select_epoch

PAPER = {float(r["color_var"]): float(r["test_acc"])
         for r in csv.DictReader(open("lnl/resources/paper_colored_mnist.csv")) if r["method"] == "lnl"}


def mean_sd(values: list[float]) -> str:
    return f"{st.mean(values):.3f} ± {st.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


rows = defaultdict(dict)  # (σ², λ, μ, schedule, epochs) -> seed -> (final val, best val, test last, test at pick)
for r in from_folders(sys.argv[1:]):
    c = r["config"]
    if r["status"] != "finished" or c["method"] != "lnl":
        continue
    last, picked = (select_epoch(r["epochs"], rule) for rule in ("last", "val_unbiased"))
    key = (c["color_var"], c["lambda"], c["mu"], c["mu_schedule"], c["epochs"])
    rows[key][c["seed"]] = (last["val_unbiased/acc"], picked["val_unbiased/acc"], last["test/acc"], picked["test/acc"])

print("| σ² | λ | μ | μ schedule | epochs | seeds | best val (objective) | final val | test `last`, seeds 0 / 1 / 2 "
      "| test `last` mean ± std | test at pick | paper | Δ `last` / Δ pick |")
print("|---|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
for cv in sorted({k[0] for k in rows}):
    keys = sorted((k for k in rows if k[0] == cv), key=lambda k: -st.mean(v[1] for v in rows[k].values()))
    for rank, key in enumerate(keys):
        seeds = rows[key]
        last = [seeds[s][2] for s in sorted(seeds)]
        picked = st.mean(v[3] for v in seeds.values())
        paper = PAPER[round(cv, 3)]
        mark = "**" if rank == 0 else ""
        print(f"| {cv:.3f} | {key[1]:g} | {key[2]:g} | {key[3]} | {key[4]} | {len(seeds)} "
              f"| {mark}{st.mean(v[1] for v in seeds.values()):.4f}{mark} | {st.mean(v[0] for v in seeds.values()):.4f} "
              f"| {' / '.join(f'{x:.4f}' for x in last)} | {mean_sd(last)} | {picked:.3f} | {paper:.4f} "
              f"| {st.mean(last) - paper:+.3f} / {picked - paper:+.3f} |")
