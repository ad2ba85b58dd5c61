"""lnl-run-sweep's plan (pretrained runs first, each once; a cost estimate) and its deadline (a run stops after
an epoch with its checkpoint kept, and the next invocation resumes it)."""
from __future__ import annotations

import pytest

import json

from conftest import REPO
from lnl.commands import run_sweep
from lnl.config import Config
from lnl.runner import cost_line, epoch_seconds, estimate_s, plan, same_value


def test_pretrained_runs_come_first_and_once(tmp_path):
    configs = [Config.from_dict({"method": m, "recipe": "headline", "color_var": 0.02, "seed": s,
                                 "runs_dir": str(tmp_path)}) for s in (0, 1) for m in ("lnl", "blind_eye", "gray")]
    jobs, todo = plan(configs)
    assert len(jobs) == 6 and all(j.state == "new" for j in jobs)
    deps = [j for j in todo if j.dependency]
    assert [j.cfg.method for j in deps] == ["baseline", "baseline"]            # one per seed, shared by 2 runs
    assert todo[:2] == deps and len(todo) == 8
    assert {j.cfg.init_config().default_run_id() for j in todo if j.cfg.init_from} == {d.run_id for d in deps}


def test_the_estimate_prices_missing_epochs_from_finished_records(tmp_path):
    cfg = Config.from_dict({"method": "baseline", "epochs": 10, "runs_dir": str(tmp_path)})
    rec = {"status": "finished", "config": {"method": "baseline"}, "env": {"device": "cpu"},
           "timings": {"epoch_s": [10.0, 12.0, 14.0], "eval_s": [2.0, 2.0, 2.0]}}
    per_epoch = epoch_seconds([rec, {**rec, "config": {"method": "baseline", "train_size": 500}}])
    assert per_epoch == {("baseline", "cpu"): 14.0}                           # tiny runs do not count
    _, todo = plan([cfg])
    assert estimate_s(todo[0], per_epoch) == 140.0
    long = Config.from_dict({"method": "baseline", "epochs": 900, "runs_dir": str(tmp_path)})
    assert cost_line(plan([long])[1], per_epoch, 1).startswith("estimated 3.5 h of training for 1 run(s)")
    assert cost_line(plan([long])[1], {}, 1).startswith("no estimate")


def test_the_estimate_prefers_the_records_of_the_machine_it_runs_on():
    def rec(name, seconds):
        return {"status": "finished", "config": {"method": "lnl"}, "env": {"device": "cpu", "device_name": name},
                "timings": {"epoch_s": [seconds] * 3}}
    store = [rec("fast CPU", 10.0), rec("fast CPU", 10.0), rec("slow CPU", 30.0)]
    assert epoch_seconds(store) == {("lnl", "cpu"): 10.0}                   # all machines: the store's median
    assert epoch_seconds(store, "slow CPU") == {("lnl", "cpu"): 30.0}       # the one it runs on
    assert epoch_seconds(store, "a CPU never timed") == {("lnl", "cpu"): 10.0}


def test_a_filter_value_is_read_as_set_reads_it():
    assert same_value(0.02, "0.020") and same_value(3, "3") and same_value("lnl", "lnl")
    assert same_value(False, "false") and same_value(False, "False") and same_value(True, "yes")
    assert not same_value(False, "true") and not same_value(True, "maybe") and not same_value(0.02, "0.03")


def test_dry_run_lists_the_dependencies_and_trains_nothing(tmp_path, capsys):
    code = run_sweep.main([str(REPO / "sweeps" / "headline.yaml"), "--runs-dir", str(tmp_path), "--dry-run",
                           "--filter", "method=lnl", "color_var=0.02", "seed=0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 runs in" in out and "after 1 pretrained run(s)" in out
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert "(pretrained: others start from it)" in lines[0] and lines[0].split()[1].startswith("baseline-cv0.020-s0")
    assert lines[1].split()[1].startswith("lnl-cv0.020-s0") and not list(tmp_path.iterdir())
    assert run_sweep.main([str(REPO / "sweeps" / "headline.yaml"), "--deadline-s", "0"]) == 2


def test_a_run_past_the_deadline_stops_with_its_checkpoint_and_resumes(tiny_config, monkeypatch, tmp_path):
    from lnl.accel import pool

    cfg = tiny_config(method="baseline", epochs=2, resume=True)
    clock = iter([0.0] + [100.0] * 50)  # the start check, then every later look is past the deadline
    monkeypatch.setattr(pool.time, "time", lambda: next(clock))
    assert pool.train_pool([(1, cfg)], 1, 1, deadline=50.0) == []
    run_dir = tmp_path / "runs" / cfg.default_run_id()
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "stopped" and len(record["epochs"]) == 1 and "deadline" in record["reason"]
    assert (run_dir / "checkpoint.pt").is_file()
    monkeypatch.undo()
    assert pool.train_pool([(1, cfg)], 1, 1) == []                       # resumed, not restarted
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "finished" and [e["epoch"] for e in record["epochs"]] == [1, 2]


def _spawned_workers(parent: int) -> list[int]:
    """Pids of the training processes ``parent`` spawned (not multiprocessing's resource tracker)."""
    from pathlib import Path

    out = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().split(") ")[1].split()[1]) == parent \
                    and b"spawn_main" in (proc / "cmdline").read_bytes():
                out.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


@pytest.mark.slow
def test_a_killed_worker_fails_its_run_and_the_sweep_still_ends(cache_dir, tmp_path):
    """kill -9 of one of --jobs 2's processes: its run is reported failed, the others finish, the command exits."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import Lines, tiny_grid_yaml

    sweep = tiny_grid_yaml(tmp_path / "grid.yaml", "killed_grid", cache_dir)
    proc = subprocess.Popen([sys.executable, "scripts/run_sweep.py", str(sweep), "--runs-dir", str(tmp_path / "runs"),
                             "--jobs", "2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = Lines(proc)
    lines.until("so far)", timeout=300)  # a worker has started its run: the line it prints as it begins
    victims = _spawned_workers(proc.pid)
    assert victims, "no worker process appeared"
    os.kill(victims[0], signal.SIGKILL)
    out, err = "".join(lines.until(None, timeout=600)), proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 1, err[-2000:]
    assert "died (signal 9)" in err and "1 run(s) failed" in out
    finished = [json.loads(p.read_text())["status"] for p in (tmp_path / "runs").glob("*/record.json")]
    assert finished.count("finished") >= 3


@pytest.mark.slow
def test_sigterm_stops_the_sweep_in_one_line_and_the_run_resumes(cache_dir, tmp_path):
    """SIGTERM to lnl-run-sweep (a scheduler, a session's end): exit 143 with one line, no traceback; the run's
    record says interrupted with its checkpoint, and the same command resumes it instead of starting over."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import Lines, tiny_grid_yaml

    sweep = tiny_grid_yaml(tmp_path / "grid.yaml", "sigterm_grid", cache_dir)
    argv = [sys.executable, "scripts/run_sweep.py", str(sweep), "--runs-dir", str(tmp_path / "runs"),
            "--filter", "method=baseline", "seed=0", "--set", "epochs=40"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    Lines(proc).until("epoch 1/40", timeout=300)
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, err[-2000:]
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err
    record = json.loads(next((tmp_path / "runs").glob("*/record.json")).read_text())
    assert record["status"] == "interrupted"
    again = subprocess.run(argv + ["--dry-run"], cwd=REPO, capture_output=True, text=True)
    assert "interrupted" in again.stdout and "1 to run" in again.stdout
