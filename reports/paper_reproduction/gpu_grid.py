"""The reproduction grid's missing runs on one GPU: several ``lnl-train`` processes at once, until a deadline.

Made for a GPU lent for minutes, not hours. A *chain* is a list of ``lnl-train`` commands that must run
in order (a run that starts from a pretrained baseline trains that baseline first, by run id, inside its
own command); chains run side by side, ``--jobs`` at a time, in the order ``--order`` names (most wanted
first). At ``--deadline-s`` every process still running is stopped: each run keeps its last per-epoch
checkpoint, so ``--resume`` continues it on any machine. ``summary.json`` in ``--log-dir`` says per
command when it started and ended and its exit code; each chain has its log beside it.

Chains (σ² as in the paper, seeds 0 1 2):

* ``official-fp32-s<seed>``: the authors' whole protocol (recipe ``official``: 100 baseline epochs, then
  100 LNL epochs from that checkpoint, momentum restored) in fp32 at σ² = 0.020 (issue 12, item 4).
* ``official-bf16-s<seed>``: the same LNL phase in bf16 at σ² = 0.020; it starts from the 100-epoch bf16
  baselines of ``baseline100/records`` when they are copied into ``--runs-dir`` (else it trains them).
* ``lnl40-cv<σ²>-s<seed>``: the 100-epoch baseline, 40 LNL epochs from it (step at 30) and 20 BlindEye
  epochs (α 0.1, step at 15), as ``reproduce.sh --baseline100`` runs them on a CPU, at σ² 0.025–0.045.
* ``gray-cv<σ²>-s<seed>``: Gray with the authors' 100-epoch schedule at every level.
* ``calibration-<method>-<bounds>-<noise>-cv<σ²>``: the σ² calibration with the authors' 100-epoch schedule
  (NOTES items 2 and 19): Baseline and Gray (one chain each), seed 0, at σ² 0.020 / 0.035 / 0.050, for
  each way the color jitter meets [0, 1] (``--color-bounds``) and each reading of σ² (``--color-noise``)
  not yet run that way (clip × per_channel_var is the grid itself). Judged on the Baseline and Gray rows
  only.
* ``sweep:<yaml>``: every point of a grid sweep YAML (the grid ``lnl-run-sweep`` and Optuna's grid sampler
  walk, seed-major), one run per chain, e.g. ``sweep:reports/paper_reproduction/lnl_search_gpu/space.yaml``.
* ``blind-eye-a0.3``: BlindEye with α 0.3 (the recipe ``official``'s validation choice, NOTES item 20), 20
  epochs (step at 15) from the 100-epoch baselines, at every level and seed (but 0.020 seed 0, which
  ``blind_eye_alpha100/`` had first).
* ``palette-fig9-cv<σ²>-s<seed>``: NOTES item 24's palette (digit 9's mean read off the paper's figure) at
  every level and seed: a 100-epoch Baseline on those data, lnl40's 40 LNL epochs from it, then Gray (run
  from the repository root: the palette is named by its relative path, part of each run's id). Copy the
  runs into ``palette_fig9/records``.

``--only GLOB ...`` keeps the chains whose name matches one of the globs (e.g. ``'lnl40-cv0.045-s[12]'``).

    python reports/paper_reproduction/gpu_grid.py --runs-dir /tmp/runs --jobs 16 --deadline-s 500 \\
        --order official-fp32 official-bf16 lnl40 gray [--device cuda] [--dry-run]

Start the CUDA MPS daemon first (``nvidia-cuda-mps-control -d``) so the processes share the card's
multiprocessors. Measured on an H200 (NOTES.md, items 15 and 21): 16 processes under MPS trained ≈ 220,000
baseline images/s together (≈ 1.7× one process alone), 13 LNL processes ≈ 155,000 (≈ 1.9×); 14 LNL runs of
20 epochs beside two 100-epoch baselines took 138–140 s each (≈ 110,000 LNL images/s together).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lnl.config import parse_pairs

SEEDS = (0, 1, 2)
MISSING_LEVELS = ("0.03", "0.04", "0.025", "0.035", "0.045")  # lnl40/ has 0.020 and 0.050
ALL_LEVELS = ("0.02", "0.025", "0.03", "0.035", "0.04", "0.045", "0.05")
CALIBRATION_LEVELS = ("0.02", "0.035", "0.05")
CALIBRATION_CELLS = (("resample", "per_channel_var"), ("resample", "total_var"), ("clip", "total_var"))


def chains(kind: str) -> list[tuple[str, list[list[str]]]]:
    """The chains of one kind: (name, [lnl-train argv without the shared flags, ...])."""
    official = ["--recipe", "official"]
    if kind in ("official-fp32", "official-bf16"):
        precision = "fp32" if kind == "official-fp32" else "auto"
        return [(f"{kind}-s{s}", [["--method", "lnl", *official, "--precision", precision,
                                   "--color-var", "0.02", "--seed", str(s)]]) for s in SEEDS]
    if kind == "lnl40":
        return [(f"lnl40-cv{cv}-s{s}", [
            ["--method", "lnl", *official, "--precision", "auto", "--epochs", "40", "--lr-step-epochs", "30",
             "--color-var", cv, "--seed", str(s)],
            ["--method", "blind_eye", "--alpha", "0.1", *official, "--precision", "auto", "--epochs", "20",
             "--lr-step-epochs", "15", "--color-var", cv, "--seed", str(s)],
        ]) for cv in MISSING_LEVELS for s in SEEDS]
    if kind == "gray":
        return [(f"gray-cv{cv}-s{s}", [["--method", "gray", *official, "--precision", "auto",
                                        "--color-var", cv, "--seed", str(s)]])
                for cv in ALL_LEVELS for s in SEEDS if (cv, s) != ("0.05", 0)]  # baseline100/ has that one
    if kind == "calibration":
        # one run per chain: Baseline and Gray are independent, so all 18 train side by side
        return [(f"calibration-{method}-{bounds}-{noise}-cv{cv}", [
            ["--method", method, *official, "--precision", "auto", "--color-bounds", bounds, "--color-noise", noise,
             "--color-var", cv, "--seed", "0"]])
            for bounds, noise in CALIBRATION_CELLS for cv in CALIBRATION_LEVELS for method in ("baseline", "gray")]
    if kind == "blind-eye-a0.3":
        return [(f"blind-eye-a0.3-cv{cv}-s{s}", [
            ["--method", "blind_eye", "--alpha", "0.3", *official, "--precision", "auto", "--epochs", "20",
             "--lr-step-epochs", "15", "--color-var", cv, "--seed", str(s)]])
            for s in SEEDS for cv in ALL_LEVELS if (cv, s) != ("0.02", 0)]  # blind_eye_alpha100/ has that one
    if kind == "palette-fig9":
        # NOTES item 24: digit 9's mean read off the paper's figure; new data, so each chain trains its own
        # 100-epoch Baseline, then lnl40's 40 LNL epochs from it, then Gray on the same data
        palette = ["--palette", "reports/paper_reproduction/palette_fig9/palette.csv"]
        common = [*official, "--precision", "auto", *palette]
        return [(f"palette-fig9-cv{cv}-s{s}", [
            ["--method", "baseline", *common, "--color-var", cv, "--seed", str(s)],
            ["--method", "lnl", *common, "--epochs", "40", "--lr-step-epochs", "30", "--color-var", cv, "--seed", str(s)],
            ["--method", "gray", *common, "--color-var", cv, "--seed", str(s)],
        ]) for s in SEEDS for cv in ALL_LEVELS]
    if kind.startswith("sweep:"):
        from lnl.search import grid_runs  # imports Optuna: only this kind needs it
        from lnl.sweep_config import load_sweep

        sweep = load_sweep(kind.split(":", 1)[1])
        return [(f"{sweep.get('name', 'sweep')}-{i:03d}", [[f"--{key}={value}" for key, value in point.items()]])
                for i, point in enumerate(grid_runs(sweep))]
    raise SystemExit(f"gpu_grid: unknown chain kind {kind!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs-dir", required=True)
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--deadline-s", type=float, required=True, help="stop everything this many seconds from now")
    ap.add_argument("--order", nargs="+", default=["official-fp32", "official-bf16", "lnl40", "gray"])
    ap.add_argument("--only", nargs="+", default=None, metavar="GLOB", help="only the chains whose name matches")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", default="1", help="CPU threads per training process")
    ap.add_argument("--cache-dir", default="data")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra lnl-train settings for every command (e.g. val_eval_size=200 for a trial run)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    t0 = time.monotonic()
    shared = ["--runs-dir", args.runs_dir, "--resume", "--wandb-mode", "disabled", "--threads", args.threads,
              "--device", args.device, "--progress", "false", "--cache-dir", args.cache_dir,
              *(["--data-dir", args.data_dir] if args.data_dir else []),
              *(part for key, value in parse_pairs(args.set, "--set").items() for part in ("--" + key, value))]
    todo = [c for kind in args.order for c in chains(kind)
            if args.only is None or any(fnmatch.fnmatchcase(c[0], g) for g in args.only)]
    logs = Path(args.log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        for name, cmds in todo:
            print(name, *(" ".join(c) for c in cmds), sep="\n  ")
        return 0
    summary: list[dict] = []
    running: dict[str, dict] = {}  # chain name -> {"proc", "cmds", "i", "log", "entry"}

    def start_next(name: str, state: dict) -> None:
        cmd = [sys.executable, "-m", "lnl.commands.train", *state["cmds"][state["i"]], *shared]
        entry = {"chain": name, "argv": cmd[3:], "start_s": round(time.monotonic() - t0, 1)}
        summary.append(entry)
        state["entry"] = entry
        state["proc"] = subprocess.Popen(cmd, stdout=state["log"], stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def save() -> None:
        tmp = logs / "summary.json.tmp"
        tmp.write_text(json.dumps({"jobs": args.jobs, "order": args.order, "commands": summary}, indent=1))
        os.replace(tmp, logs / "summary.json")

    queue = list(todo)
    while (queue or running) and time.monotonic() - t0 < args.deadline_s:
        while queue and len(running) < args.jobs:
            name, cmds = queue.pop(0)
            state = {"cmds": cmds, "i": 0, "log": open(logs / f"{name}.log", "ab")}
            running[name] = state
            start_next(name, state)
        for name, state in list(running.items()):
            rc = state["proc"].poll()
            if rc is None:
                continue
            state["entry"].update(end_s=round(time.monotonic() - t0, 1), rc=rc)
            state["i"] += 1  # a failed command does not stop its chain: the next may not need it
            if state["i"] < len(state["cmds"]):
                start_next(name, state)
            else:
                state["log"].close()
                del running[name]
        save()
        time.sleep(1.0)
    for name, state in running.items():  # the deadline: stop what runs; its checkpoint stays
        os.killpg(state["proc"].pid, signal.SIGTERM)
    for name, state in running.items():
        try:
            state["proc"].wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(state["proc"].pid, signal.SIGKILL)
            state["proc"].wait()
        state["entry"].update(end_s=round(time.monotonic() - t0, 1), rc=state["proc"].returncode, stopped=True)
    save()
    done = sum(1 for e in summary if e.get("rc") == 0)
    print(f"gpu_grid: {done} commands finished, {len(running)} chains stopped at the deadline, "
          f"{len(queue)} chains not started, {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
