"""A/B of each CPU kernel alone (issue 17): our fast-path step with all kernels, then with one kernel
switched to its eager ops, interleaved rounds (lnl.accel.bench.measure_all), median images/s.

    .venv/bin/python benchmarks/kernel_ab.py STEPS ROUNDS OUT.json baseline,lnl

It switches a kernel off by wrapping the function the model or the losses call (a measurement
script, not a library feature). The committed cpu_2core_kernel_ab.json was measured with the
bn_relu.c kernel still present (commit 07f6b40); it has since been dropped, so no bn_relu row now."""
import json
import sys

import torch
import lnl.models as M
from lnl.accel import kernels
from lnl.accel.bench import bench_data, measure_all, ours
from lnl.training.device import cpu_model
from lnl.training.device import resolve_precision

off = set()
pool, lok = M.max_pool_relu, kernels.losses_ok
M.max_pool_relu = lambda x, fused=True: pool(x, fused=fused and "pool_relu" not in off)
kernels.losses_ok = lambda *a, **k: "bias_losses" not in off and lok(*a, **k)
dev = torch.device("cpu")
data = bench_data("data", 0.02)
fast = resolve_precision("auto", dev)
variants = [("all kernels", set()), ("without pool_relu", {"pool_relu"}), ("all kernels again", set()),
            ("without bias_losses", {"bias_losses"}), ("no kernels", {"pool_relu", "bias_losses"})]
out = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "precision": fast, "rows": []}
for kind in sys.argv[4].split(","):
    pipes = []
    for name, disabled in variants:
        step, make = ours(kind, data, dev, precision=fast, channels_last=True)
        def wrapped(b, step=step, disabled=disabled):
            off.clear(); off.update(disabled); step(b)
        pipes.append((name, wrapped, make))
    res = measure_all(pipes, dev, warmup=8, steps=int(sys.argv[1]), repeats=int(sys.argv[2]), epoch=False)
    ref = res["all kernels"]["images_per_s"]
    for name, r in res.items():
        row = {"step": kind, "variant": name, "images_per_s": r["images_per_s"], "rounds": r["images_per_s_rounds"],
               "all_kernels_speedup_over_this": ref / r["images_per_s"]}
        out["rows"].append(row); print(row, flush=True)
json.dump(out, open(sys.argv[3], "w"), indent=1)
