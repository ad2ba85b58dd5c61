"""Nothing lost, nothing wrong without a word: re-runs, concurrent runs, broken checkpoints, bad inputs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lnl
from lnl.config import ConfigError
from lnl.engine import StopRun, _file_lock
from conftest import REPO


def _interrupt_after_first_epoch(epoch, metrics):
    raise KeyboardInterrupt  # what a kill leaves behind: a record 'failed' and the epoch's checkpoint


def test_a_failing_rerun_never_costs_a_finished_record(tiny_config, tmp_path):
    cfg = tiny_config(method="baseline")
    done = lnl.train(cfg)
    record = (done.run_dir / "record.json").read_bytes()
    # same run id, a change that can only fail later: no GPU here, a missing palette file
    env_runs = str(tmp_path / "runs")
    for bad in (["--device", "cuda"], ["--palette", str(tmp_path / "missing.csv")]):
        if bad[1] == "cuda":
            import torch
            if torch.cuda.is_available():
                continue
        args = [sys.executable, "scripts/train.py", "--method", "baseline", "--run-id", done.run_id,
                "--runs-dir", env_runs, "--cache-dir", cfg.cache_dir, "--train-size", "2000", "--test-size", "1000",
                "--epochs", "1", "--wandb-mode", "disabled", "--progress", "False", *bad]
        out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert out.returncode == 2, out.stderr[-2000:]
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
        assert (done.run_dir / "record.json").read_bytes() == record
    # re-running the finished run without --resume is refused; --overwrite trains it again
    with pytest.raises(ConfigError, match="already finished"):
        lnl.train(cfg)
    assert (done.run_dir / "record.json").read_bytes() == record
    again = lnl.train(tiny_config(method="baseline", overwrite=True))
    assert again.status == "finished" and (again.run_dir / "record.json").read_bytes() != record


def test_a_second_process_on_the_same_run_is_refused(tiny_config):
    cfg = tiny_config(method="baseline", run_id="shared")
    with _file_lock(__import__("pathlib").Path(cfg.runs_dir) / ".shared.lock", wait=False):
        with pytest.raises(ConfigError, match="another process"):
            lnl.train(cfg)
    assert lnl.train(cfg).status == "finished"


def test_corrupt_checkpoint_restarts_with_a_warning_and_changed_values_are_refused(tiny_config, capsys):
    cfg = tiny_config(method="baseline", epochs=2, run_id="ck")
    with pytest.raises(KeyboardInterrupt):
        lnl.train(cfg, on_epoch=_interrupt_after_first_epoch)
    ckpt = __import__("pathlib").Path(cfg.runs_dir) / "ck" / "checkpoint.pt"
    assert ckpt.is_file() and ckpt.with_name("checkpoint.pt.sha256").is_file()
    # the same run id with another learning rate: resuming would train the old values under the new name
    with pytest.raises(ConfigError, match="another configuration"):
        lnl.train(tiny_config(method="baseline", epochs=2, run_id="ck", resume=True, lr=0.01))
    blob = bytearray(ckpt.read_bytes())
    ckpt.write_bytes(bytes(blob[: len(blob) // 2]))  # truncated, as by a full disk or a kill mid-copy
    result = lnl.train(tiny_config(method="baseline", epochs=2, run_id="ck", resume=True))
    assert result.status == "finished" and len(result.epochs) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "starts over" in err
    record = json.loads((result.run_dir / "record.json").read_text())
    assert [e["epoch"] for e in record["epochs"]] == [1, 2]


def test_a_run_with_nothing_to_train_on_is_a_clear_error(tiny_config):
    with pytest.raises(ConfigError, match="train_size"):
        lnl.train(tiny_config(method="baseline", train_size=1))
    with pytest.raises(ConfigError, match="val_size"):
        lnl.train(tiny_config(method="baseline", val_size=0))


