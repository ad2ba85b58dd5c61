"""Every sweeps/*.yaml, checked with W&B's open-source sweep engine and run as the agent would.

There is no W&B server here, so the test does what the server and ``wandb agent``
do: validate the YAML with the ``sweeps`` package, draw suggestions with
``next_run``, render the agent's argv (``${env} ${interpreter} ${program} ${args}``)
and execute it from the repository root with ``WANDB_MODE=offline``. The budget
is made tiny by fixing a few extra parameters in the sweep before drawing.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, tiny_grid_yaml
from lnl.flags import parse_args
from lnl.sweep_config import agent_command, check_sweep, for_condition, load_sweep, plain, render_args

sweeps = pytest.importorskip("sweeps")
SWEEP_FILES = sorted((REPO / "sweeps").rglob("*.yaml"))  # the studies under sweeps/studies/ too


def engine_config(sweep: dict) -> dict:
    """Strip what sweeps==0.2.0's schema rejects although the W&B server accepts it."""
    cfg = copy.deepcopy(sweep)
    cfg.pop("run_cap", None)
    cfg.get("early_terminate", {}).pop("strict", None)
    return cfg


def draw(sweep: dict, n: int) -> list[dict]:
    """``n`` suggestions from the engine, feeding back finished runs as the server would."""
    cfg = engine_config(sweep)
    runs, out = [], []
    rng = np.random.default_rng(0)
    for i in range(n):
        suggestion = sweeps.next_run(cfg, runs, validate=True)
        if suggestion is None:
            break
        params = {k: plain(v["value"]) for k, v in suggestion.config.items()}
        out.append(params)
        done = sweeps.SweepRun(name=f"run{i}", config=suggestion.config, state=sweeps.RunState.finished)
        done.summary_metrics = {sweep["metric"]["name"]: float(rng.uniform(0.1, 0.9))}  # see notes: set after init
        done.history = [{sweep["metric"]["name"]: done.summary_metrics[sweep["metric"]["name"]], "epoch": 1}]
        runs.append(done)
    return out


def test_there_are_the_three_sweeps():
    assert {p.stem for p in SWEEP_FILES} >= {"paper_table", "lnl_tune", "architecture", "blind_eye_tune"}


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.stem)
def test_sweep_is_valid_for_wandb_and_for_our_config(path):
    sweep = load_sweep(path)
    assert sweeps.schema_violations_from_proposed_config(engine_config(sweep)) == []
    assert check_sweep(sweep) == []
    assert sweep["program"] == "scripts/train.py"
    assert sweep["command"] == ["${env}", "${interpreter}", "${program}", "${args}"]
    # every suggestion parses into a valid config through the same path as the agent's argv
    for params in draw(sweep, 6):
        argv = agent_command(sweep, params, interpreter=sys.executable)
        assert argv[:3] == ["/usr/bin/env", sys.executable, "scripts/train.py"]
        cfg = parse_args(argv[3:])
        for key, value in params.items():
            assert cfg.to_dict()[key] == value


def test_paper_table_grid_is_methods_x_levels_x_seeds():
    sweep = load_sweep(REPO / "sweeps" / "paper_table.yaml")
    combos = {(p["method"], p["color_var"], p["seed"]) for p in draw(sweep, 100)}
    assert len(combos) == 4 * 7 * 3
    assert {c[0] for c in combos} == {"baseline", "lnl", "gray", "blind_eye"}  # the paper's four rows
    assert {c[1] for c in combos} == {0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05}


def test_local_grid_is_the_optuna_grid_seed_major():
    """lnl-run-sweep's runs are the points of the grid Optuna's grid sampler walks (lnl.search.grid_of):
    constants fixed, integer ranges expanded, seeds varying slowest; a continuous parameter is refused."""
    from lnl.search import SearchSpaceError, grid_runs

    sweep = {"parameters": {"method": {"values": ["baseline", "lnl"]}, "epochs": {"value": 2},
                            "seed": {"values": [0, 1]}, "g_depth": {"distribution": "int_uniform", "min": 1,
                                                                    "max": 2}}}
    runs = grid_runs(sweep)
    assert len(runs) == 2 * 2 * 2 and all(r["epochs"] == 2 for r in runs)
    assert [r["seed"] for r in runs] == [0] * 4 + [1] * 4
    assert [(r["method"], r["g_depth"]) for r in runs[:4]] == [("baseline", 1), ("baseline", 2), ("lnl", 1),
                                                                ("lnl", 2)]
    paper = grid_runs(load_sweep(REPO / "sweeps" / "paper_table.yaml"))
    assert len(paper) == 84 and {r["seed"] for r in paper[:28]} == {0}
    sweep["parameters"]["lr"] = {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}
    with pytest.raises(SearchSpaceError, match="'lr': a grid needs categorical or integer"):
        grid_runs(sweep)


def test_args_rendering_matches_the_agent():
    assert render_args({"lr": 1e-05, "bias_probe": False, "bias_lr": None, "tags": ["a", "b"],
                        "lambda": np.float64(0.001), "epochs": np.int64(3)}) == \
        ["--lr=1e-05", "--bias_probe=False", "--bias_lr=None", "--tags=['a', 'b']", "--lambda=0.001", "--epochs=3"]


@pytest.mark.slow
def test_create_sweeps_dry_run_prints_one_config_per_level():
    proc = subprocess.run([sys.executable, "scripts/create_sweeps.py", "sweeps/lnl_tune.yaml", "--color-var",
                           "0.02", "0.03", "0.04", "--dry-run"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("# sweep lnl_tune-cv0.0") == 3 and "value: 0.03" in proc.stdout
    bad = subprocess.run([sys.executable, "scripts/create_sweeps.py", "sweeps/lnl_tune.yaml", "--color-var",
                          "-1", "--dry-run"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2


# Study sweeps start their LNL runs from the recipes' 100-epoch Baselines: too long for an agent test, and the
# same program and argv rendering as the top-level files, which run here.
@pytest.mark.slow
@pytest.mark.parametrize("path", sorted((REPO / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_agent_runs_suggestions_offline(path, cache_dir, tmp_path):
    sweep = for_condition(load_sweep(path), color_var=0.02)
    # A tiny budget: extra constant parameters, rendered into the argv like any other.
    tiny = {"epochs": 1, "train_size": 600, "test_size": 300, "val_eval_size": 300, "progress": False,
            "cache_dir": str(cache_dir), "runs_dir": str(tmp_path / "runs")}
    if "init_from" in sweep["parameters"]:  # the run it starts from is tiny too (not the recipe's 100 epochs)
        start = tmp_path / "start.yaml"
        start.write_text("baseline: {epochs: 1, optimizer: sgd, lr: 0.01}\n")
        tiny["init_recipe"] = str(start)
    for key, value in tiny.items():
        sweep["parameters"][key] = {"value": value}
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    first, *later = draw(sweep, 2)
    # Every drawn argv lands in the config with the drawn values; executing one per sweep is enough to show
    # the agent's command runs (each execution is a training subprocess with offline W&B, ~20-30 s here).
    for params in later:
        cfg = parse_args(agent_command(sweep, params, interpreter=sys.executable)[3:])
        assert {k: cfg.to_dict()[k] for k in params} == params
    params = first
    argv = agent_command(sweep, params, interpreter=sys.executable)
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = {json.loads(p.read_text())["run_id"]: json.loads(p.read_text())
               for p in (tmp_path / "runs").glob("*/record.json")}
    cfg = parse_args(argv[3:])
    record = records[cfg.default_run_id()]
    for key, value in params.items():
        assert record["config"][key] == value  # the record holds the swept values
    assert sweep["metric"]["name"] in record["epochs"][-1]  # the sweep's metric is logged under that key
    wandb_dir = Path(record["wandb"]["dir"])
    assert record["wandb"]["mode"] == "offline" and wandb_dir.is_dir()
    assert wandb_dir.parent == tmp_path / "wandb" and list(wandb_dir.glob("run-*.wandb"))


@pytest.mark.slow
def test_local_grid_runner_is_resumable(cache_dir, tmp_path):
    """scripts/run_sweep.py runs a grid YAML without a server and skips finished runs on relaunch."""
    sweep = tiny_grid_yaml(tmp_path / "grid.yaml", "tiny_grid", cache_dir)
    cmd = [sys.executable, "scripts/run_sweep.py", str(sweep), "--runs-dir", str(tmp_path / "runs")]
    dry = subprocess.run(cmd + ["--dry-run"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "4 runs" in dry.stdout and "(0 done, 4 to run)" in dry.stdout
    assert dry.stdout.index("baseline-cv0.020-s0") < dry.stdout.index("gray-cv0.020-s0") \
        < dry.stdout.index("baseline-cv0.020-s1")  # seed-major order
    part = subprocess.run(cmd + ["--filter", "method=gray"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert part.returncode == 0, part.stderr[-2000:]
    assert len(list((tmp_path / "runs").glob("gray-*/record.json"))) == 2
    rest = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "(2 done, 2 to run)" in rest.stdout and rest.stdout.count("\n[") == 2  # only the two new runs
    assert len(list((tmp_path / "runs").glob("*/record.json"))) == 4
