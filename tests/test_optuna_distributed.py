"""Several worker processes on one Optuna study: journal file, SQLite and PostgreSQL storages.

The PostgreSQL cases need a server: ``.ci/run`` installs PostgreSQL from Debian,
starts it on loopback and sets ``LNL_TEST_POSTGRES_URL``; without it they are skipped.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import Lines, REPO

POSTGRES = os.environ.get("LNL_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="LNL_TEST_POSTGRES_URL not set (see .ci/run)")


def storage_for(kind: str, tmp_path: Path) -> str:
    if kind == "journal":
        return f"journal:{tmp_path / 'journal.log'}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    return POSTGRES


def optuna_storage(spec: str):
    from lnl.optuna_storage import open_storage

    return open_storage(spec)


def search_cmd(storage: str, prefix: str, cache_dir: Path, *extra: str, epochs: int = 1, train_size: int = 600):
    return [sys.executable, str(REPO / "scripts" / "optuna_search.py"), "--space", str(REPO / "sweeps/lnl_tune.yaml"),
            "--color-var", "0.02", "--storage", storage, "--study-prefix", prefix, "--sampler", "random",
            "--pruner", "none", "--heartbeat-interval", "1", "--grace-period", "3",
            "--set", f"epochs={epochs}", f"train_size={train_size}", "test_size=300", "val_eval_size=300", "warmup_epochs=0",
            f"cache_dir={cache_dir}", *extra]


def records_of(runs_dir: Path, study: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs_dir.glob(f"{study}-*trial*/record.json"))]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", pytest.param("postgres", marks=[needs_postgres, pytest.mark.postgres])])
def test_two_workers_share_one_study_up_to_the_cap(kind, cache_dir, tmp_path):
    storage, prefix = storage_for(kind, tmp_path), f"dist{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    proc = subprocess.run(search_cmd(storage, prefix, cache_dir, "--n-jobs", "2", "--n-trials", "6",
                                     "--max-trials", "6", "--wandb-mode", "disabled"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = f"{prefix}-lnl-cv0.020"
    trials = optuna.load_study(study_name=name, storage=optuna_storage(storage)).get_trials()
    assert sorted(t.number for t in trials) == list(range(6))  # contiguous, total = cap
    assert all(t.state == TrialState.COMPLETE for t in trials)
    records = records_of(tmp_path / "runs/optuna", name)
    assert sorted(r["config"]["trial"] for r in records) == list(range(6))  # each trial recorded exactly once
    ran = [int(n) for n in re.findall(r"\[worker \d\] .*: ran (\d+) trials", proc.stdout)]
    assert len(ran) == 2 and sum(ran) == 6 and min(ran) >= 1  # both workers did work
    print(f"{kind}: 2 workers, {len(trials)} trials in {time.perf_counter() - started:.1f}s")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=[needs_postgres, pytest.mark.postgres])])
def test_killed_worker_trial_is_failed_and_its_parameters_retried(kind, cache_dir, tmp_path):
    storage, prefix = storage_for(kind, tmp_path), f"kill{uuid.uuid4().hex[:8]}"
    name = f"{prefix}-lnl-cv0.020"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    started = time.perf_counter()
    victim = subprocess.Popen(search_cmd(storage, prefix, cache_dir, "--n-trials", "1", "--wandb-mode", "offline",
                                         epochs=4, train_size=3000),
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = Lines(victim)
    lines.until("epoch 1/4", timeout=300)  # printed once epoch 1 is saved: the event the worker reports
    assert victim.poll() is None, "the worker ended before it could be killed"
    victim.send_signal(signal.SIGKILL)  # mid-trial: epoch 1 of 4 is done
    victim_out = "".join(lines.until(None, timeout=60))
    victim.wait(timeout=60)
    time.sleep(4.5)  # not a poll: Optuna's rule itself is time, > the grace period (3 s) without a heartbeat
    # --max-trials 1: the study holds one trial; the new worker only finishes what is queued. The retry's
    # budget (--set, not a searched parameter) is the smallest: the victim only needed to live past epoch 1.
    proc = subprocess.run(search_cmd(storage, prefix, cache_dir, "--n-trials", "1", "--max-trials", "1",
                                     "--wandb-mode", "offline"),
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = optuna.load_study(study_name=name, storage=optuna_storage(storage)).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    killed, retry = trials
    assert retry.system_attrs["failed_trial"] == 0 and retry.user_attrs["retry_of"] == 0
    assert retry.params == killed.params
    record = records_of(tmp_path / "runs/optuna", name)[-1]
    assert record["config"]["trial"] == 1 and record["status"] == "finished"
    assert {k: record["config"][k] for k in killed.params} == killed.params
    if kind == "postgres":  # the password never leaves the storage URL
        secret = re.search(r"://[^:]+:([^@]+)@", POSTGRES).group(1)
        assert secret not in proc.stdout + proc.stderr + victim_out
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        assert "***@" in proc.stdout
    print(f"{kind}: kill + retry in {time.perf_counter() - started:.1f}s")
