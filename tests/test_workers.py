"""Workers sharing one machine take their share of the cores (lnl.accel.workers), in every launcher."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, tiny_grid_yaml
from lnl.accel.workers import WorkerEnvError, core_block, thread_share, worker_env, workers_from_env

CORES = len(os.sched_getaffinity(0))


def test_thread_share_is_cores_over_workers_at_least_one():
    assert [thread_share(n, cores=16) for n in (1, 2, 3, 4, 16, 32)] == [16, 8, 5, 4, 1, 1]
    assert thread_share(2, cores=2) == 1 and thread_share(1, cores=2) == 2
    with pytest.raises(ValueError):
        thread_share(0, cores=2)


def test_core_blocks_partition_the_cores():
    cores = [0, 1, 2, 3, 4, 5, 6]
    blocks = [core_block(k, 3, cores) for k in range(3)]
    assert blocks == [[0, 1, 2], [3, 4], [5, 6]]  # the remainder goes to the first block
    assert core_block(1, 2, [4, 9]) == [9]  # the affinity mask's own core numbers
    assert core_block(0, 3, [0, 1]) is None and core_block(2, 2, [0, 1]) is None


@pytest.mark.parametrize("env, message", [({"LNL_WORKERS": "0"}, "LNL_WORKERS"), ({"LNL_WORKERS": "two"}, "LNL_WORKERS"),
                                          ({"LNL_WORKERS": "2", "LNL_WORKER_INDEX": "2"}, "0..1")])
def test_bad_worker_variables_are_named(env, message):
    with pytest.raises(WorkerEnvError, match=message):
        workers_from_env(env)
    assert workers_from_env({}) == (1, None)
    assert workers_from_env({"LNL_WORKERS": "4", "LNL_WORKER_INDEX": "3"}) == (4, 3)


def test_worker_env_carries_the_share_to_openmp():
    env = worker_env(2, 1)
    assert env["LNL_WORKERS"] == "2" and env["LNL_WORKER_INDEX"] == "1"
    assert env["OMP_NUM_THREADS"] == str(max(1, CORES // 2))


def _train(cache_dir, tmp_path, env_extra, *args):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "scripts/train.py", "--method", "baseline", "--epochs", "1",
                           "--train-size", "500", "--test-size", "200", "--val-eval-size", "200", "--cache-dir", str(cache_dir),
                           "--runs-dir", str(tmp_path / "runs"), "--wandb-mode", "disabled", "--progress", "False",
                           *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_run_takes_its_share_and_records_it(cache_dir, tmp_path):
    """LNL_WORKERS=2 (a hand-started wandb agent): threads = cores // 2, pinned when the index is given."""
    proc = _train(cache_dir, tmp_path, {"LNL_WORKERS": "2", "LNL_WORKER_INDEX": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(next((tmp_path / "runs").glob("*/record.json")).read_text())
    share = record["env"]["workers"]
    assert share["workers"] == 2 and share["index"] == 1 and share["source"] == "LNL_WORKERS"
    assert share["threads"] == record["env"]["threads"] == max(1, CORES // 2)
    if CORES >= 2:
        assert share["cores"] == core_block(1, 2, sorted(os.sched_getaffinity(0)))
    # an explicit --threads wins over the share
    proc = _train(cache_dir, tmp_path, {"LNL_WORKERS": "2"}, "--threads", "1", "--seed", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(next((tmp_path / "runs").glob("*-s1-*/record.json")).read_text())
    assert record["env"]["workers"]["source"] == "--threads" and record["env"]["threads"] == 1


@pytest.mark.slow
def test_a_bad_worker_variable_is_one_line_exit_2(cache_dir, tmp_path):
    proc = _train(cache_dir, tmp_path, {"LNL_WORKERS": "-1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "LNL_WORKERS" in proc.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*/record.json"))


@pytest.mark.slow
def test_run_sweep_jobs_trains_in_a_pool_with_core_shares(cache_dir, tmp_path):
    """--jobs 2: both runs finish, each worker took cores // 2 threads and its own index; a failing run is
    reported and the others go on (exit 1)."""
    sweep = tiny_grid_yaml(tmp_path / "grid.yaml", "tiny_pool", cache_dir)
    runs = tmp_path / "runs"
    # One run of the grid can't start: another process holds its lock (as a second sweep would).
    from lnl.config import Config
    blocked = Config.from_dict({"method": "gray", "seed": 1, "epochs": 1, "train_size": 500, "test_size": 200, "val_eval_size": 200,
                                "cache_dir": str(cache_dir), "wandb_mode": "disabled", "runs_dir": str(runs),
                                "resume": True, "progress": False, "group": "tiny_pool"}).default_run_id()
    runs.mkdir()
    import fcntl
    with open(runs / f".{blocked}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = subprocess.run([sys.executable, "scripts/run_sweep.py", str(sweep), "--runs-dir", str(runs),
                               "--jobs", "2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"1 run(s) failed: {blocked}" in proc.stdout
    records = [json.loads(p.read_text()) for p in runs.glob("*/record.json")]
    assert len(records) == 3 and all(r["status"] == "finished" for r in records)
    shares = [r["env"]["workers"] for r in records]
    assert all(s["workers"] == 2 and s["threads"] == max(1, CORES // 2) for s in shares)
    assert {s["index"] for s in shares} <= {0, 1}
    # relaunched without the lock: only the missing run trains
    proc = subprocess.run([sys.executable, "scripts/run_sweep.py", str(sweep), "--runs-dir", str(runs),
                           "--jobs", "2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "(3 done, 1 to run)" in proc.stdout, proc.stderr[-2000:]
    assert len(list(runs.glob("*/record.json"))) == 4


@pytest.mark.slow  # parallel_throughput starts its worker processes
def test_parallel_throughput_sums_its_workers(cache_dir):
    from lnl.accel.bench import parallel_throughput

    row = parallel_throughput("baseline", "ours", 2, cache_dir=str(cache_dir), warmup=1, steps=3)
    assert row["workers"] == 2 and row["threads"] == [max(1, CORES // 2)] * 2
    # the total over one common window is at most the sum of each worker's own rate
    assert 0.5 * sum(row["per_worker_images_per_s"]) < row["images_per_s"] <= sum(row["per_worker_images_per_s"]) * 1.01
    unshared = parallel_throughput("baseline", "ours", 2, share=False, cache_dir=str(cache_dir), warmup=1, steps=2)
    import torch
    assert unshared["share"] is False and unshared["threads"] == [torch.get_num_threads()] * 2  # torch's default
