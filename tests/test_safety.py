"""Nothing lost, nothing wrong without a word: re-runs, concurrent runs, broken checkpoints, bad inputs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lnl
from lnl.config import ConfigError
from lnl.records import run_lock
from conftest import REPO


def _interrupt_after_first_epoch(epoch, metrics):
    raise KeyboardInterrupt  # what a kill leaves behind: a record 'failed' and the epoch's checkpoint


@pytest.mark.slow
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
                "--runs-dir", env_runs, "--cache-dir", cfg.cache_dir, "--train-size", "2000", "--test-size", "1000", "--val-eval-size", "1000",
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
    with run_lock(__import__("pathlib").Path(cfg.runs_dir) / ".shared.lock", wait=False):
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




def test_probe_off_reports_no_bias_accuracy(tiny_config):
    result = lnl.train(tiny_config(method="baseline", bias_probe=False))
    last = json.loads((result.run_dir / "record.json").read_text())["epochs"][-1]
    assert last["bias/acc"] is None and last["bias/acc_biased"] is None  # no untrained head's guess
    assert lnl.train(tiny_config(method="baseline")).epochs[-1]["bias/acc"] > 0.1


@pytest.mark.parametrize("args,key", [
    (["--seed", str(2 ** 63)], "seed"), (["--data-seed", "-1"], "data_seed"), (["--epochs=2.5"], "epochs"),
])
def test_out_of_range_values_are_one_line_errors(args, key):
    from lnl.flags import parse_args

    with pytest.raises(ConfigError) as err:
        parse_args(args)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_sweep_rendered_floats_for_integers_are_accepted():
    from lnl.flags import parse_args

    assert parse_args(["--epochs=2.0"]).epochs == 2


def test_broken_yaml_and_recipe_files_are_one_line_errors(tmp_path):
    from lnl.flags import parse_args

    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"lr: \xff\xfe0.1\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_args(["--config", str(bad)])
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_args(["--recipe", str(bad), "--method", "lnl"])
    bad.write_text("lnl: {lr: [0.1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_args(["--recipe", str(bad), "--method", "lnl"])


def test_report_skips_a_corrupt_record_with_a_warning(tmp_path):
    from lnl.report.load import from_folders

    good = tmp_path / "a" / "record.json"
    good.parent.mkdir()
    good.write_text(json.dumps({"run_id": "a", "status": "finished", "config": {"method": "lnl", "color_var": 0.02},
                                "epochs": []}))
    bad = tmp_path / "b" / "record.json"
    bad.parent.mkdir()
    bad.write_text('{"run_id": "b", "conf')
    warnings = []
    records = from_folders([tmp_path], warn=warnings.append)
    assert [r["run_id"] for r in records] == ["a"]
    assert len(warnings) == 1 and "b/record.json" in warnings[0]


def test_report_configuration_key_ignores_every_non_identity_field():
    import dataclasses

    from lnl.config import Config
    from lnl.report.tables import configuration_key

    base = Config(method="lnl").to_dict()
    for f in dataclasses.fields(Config):
        if not f.metadata.get("identity", True):
            changed = dict(base)
            changed[f.name.rstrip("_")] = "something else"
            assert configuration_key(changed) == configuration_key(base), f.name
    assert configuration_key({**base, "lambda": 0.5}) != configuration_key(base)


@pytest.mark.slow
@pytest.mark.parametrize("cmd", [
    ["scripts/run_sweep.py", "sweeps/paper_table.yaml", "--dry-run", "--shard", "0/2"],
    ["scripts/run_sweep.py", "sweeps/paper_table.yaml", "--dry-run", "--shard", "3/2"],
    ["scripts/create_sweeps.py", "sweeps/lnl_tune.yaml", "--color-var", "nan", "--dry-run"],
    ["scripts/optuna_search.py", "--space", "sweeps/lnl_tune.yaml", "--color-var", "nan", "--n-trials", "0"],
])
def test_script_inputs_that_would_run_the_wrong_thing_are_refused(cmd, tmp_path):
    out = subprocess.run([sys.executable, *[str(REPO / c) if c.startswith(("scripts/", "sweeps/")) else c
                                            for c in cmd]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout[-500:] + out.stderr[-1500:]
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_optuna_trial_run_ids_are_unique_per_study_instance_and_reruns_draw_new_parameters(tmp_path):
    import optuna
    from optuna.distributions import FloatDistribution

    from lnl.optuna_storage import open_storage
    from lnl.search import Objective, create_study, run_worker, suggest

    ids = []
    for db in ("a.db", "b.db"):  # the same study name in a new (or recreated) database
        storage = open_storage(f"sqlite:///{tmp_path / db}")
        study = create_study(storage, "same-name")
        trial = study.ask()
        ids.append(Objective({"method": "lnl"}, {}, {"runs_dir": str(tmp_path)}, "same-name").config(trial).run_id)
    assert ids[0] != ids[1] and all(i.startswith("same-name-") and i.endswith("-trial0000") for i in ids)

    class Quick:  # an objective that trains nothing: the sampler's draws are what is tested
        space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}

        def __call__(self, trial):
            return suggest(trial, self.space)["lr"]

    spec = f"sqlite:///{tmp_path / 'c.db'}"
    create_study(open_storage(spec), "rerun")
    for cap in (3, 6):  # the same command twice, same --seed
        run_worker(spec, "rerun", Quick(), cap=cap, sampler="tpe", seed=7, log=lambda m: None)
    lrs = [t.params["lr"] for t in optuna.load_study(study_name="rerun", storage=open_storage(spec)).trials]
    assert len(lrs) == 6 and len(set(lrs[:3]) & set(lrs[3:])) == 0


@pytest.mark.slow
@pytest.mark.parametrize("url", ["postgresql+psycopg2://u:s3cr3t@127.0.0.1:1/db", "nosuchdialect://x/y",
                                 "sqlite:////nonexistent-dir/x.db"])
def test_an_unusable_storage_url_is_one_line_without_the_password(url, tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "scripts/optuna_search.py"), "--space",
                          str(REPO / "sweeps/lnl_tune.yaml"), "--n-trials", "0", "--storage", url],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-1500:]
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "s3cr3t" not in out.stdout + out.stderr


@pytest.mark.parametrize("stage", ["serialize", "write"])
def test_disk_full_during_a_checkpoint_leaves_no_temporary_file_and_a_failed_record(stage, tiny_config, monkeypatch):
    import errno
    import os

    import lnl.records as records
    import lnl.training.run_folder as run_folder

    if stage == "serialize":
        def full_disk(obj, buffer, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(run_folder.torch, "save", full_disk)
    else:  # the checkpoint's bytes reach its temporary file, then flushing them to disk fails
        real_fsync = os.fsync

        def full_disk(fd):
            if "checkpoint.pt" in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.ENOSPC, "No space left on device")
            real_fsync(fd)

        monkeypatch.setattr(records.os, "fsync", full_disk)
    cfg = tiny_config(method="baseline", epochs=2, run_id="full")
    with pytest.raises(OSError, match="No space"):
        lnl.train(cfg)
    run_dir = __import__("pathlib").Path(cfg.runs_dir) / "full"
    assert sorted(p.name for p in run_dir.iterdir()) == ["record.json"]  # no .tmp, no half checkpoint
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "failed" and "No space" in record["reason"]


def test_a_checkpoint_s_bytes_depend_only_on_its_state(tmp_path, monkeypatch):
    """The same weights saved by two processes have one SHA-256 (``init_from`` compares it): torch.save to a
    file name would write that (temporary, per-process) name into the zip."""
    import os
    import zipfile

    import torch

    from lnl.data.cache import sha256_file
    from lnl.training.run_folder import write_checkpoint

    state = {"model": {"w": torch.arange(12.0).reshape(3, 4)}, "optimizers": {}}
    digests = []
    old_umask = os.umask(0o022)
    try:
        for pid in (1111, 2222):  # two "processes"
            monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
            path = tmp_path / str(pid) / "final.pt"
            path.parent.mkdir()
            digests.append(write_checkpoint(path, state))
            assert digests[-1] == sha256_file(path)
            assert all(name.startswith("archive/") for name in zipfile.ZipFile(path).namelist())
            assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], state["model"]["w"])
    finally:
        os.umask(old_umask)
    assert digests[0] == digests[1]
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["final.pt", "final.pt"]  # no temporary files
    assert (path.stat().st_mode & 0o777) == 0o644  # what open() gives under umask 022, not mkstemp's 0600


@pytest.mark.slow
@pytest.mark.parametrize("content", [None, b"", b"\x93NUMPY garbage", b"not a numpy file at all"])
def test_a_missing_or_broken_official_file_is_one_line(content, tmp_path):
    path = tmp_path / "mnist_10color_jitter_var_0.020.npy"
    if content is not None:
        path.write_bytes(content)
    out = subprocess.run([sys.executable, "scripts/train.py", "--data-source", "official", "--data-path", str(path),
                          "--runs-dir", str(tmp_path / "runs"), "--wandb-mode", "disabled"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-1500:]
    assert len(out.stderr.strip().splitlines()) == 1 and "data_path" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_report_counts_a_run_found_in_two_folders_once(tmp_path):
    """A pretrained baseline copied beside the runs that start from it must not count twice."""
    from lnl.report.load import from_folders

    def write(folder, status, n_epochs, acc):
        path = tmp_path / folder / "baseline-cv0.020-s0-abc" / "record.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"run_id": "baseline-cv0.020-s0-abc", "status": status,
                                    "config": {"method": "baseline", "color_var": 0.02},
                                    "epochs": [{"epoch": i + 1} for i in range(n_epochs)],
                                    "final": {"test/acc": acc}}))
        return path

    write("a", "running", 3, 0.41)  # a partial copy, found first
    finished = write("b", "finished", 100, 0.50)
    write("c", "finished", 100, 0.50)  # an exact copy of the finished run
    warnings = []
    records = from_folders([tmp_path / "a", tmp_path / "b", tmp_path / "c"], warn=warnings.append)
    assert [r["run_id"] for r in records] == ["baseline-cv0.020-s0-abc"]
    assert records[0]["_source"] == str(finished) and records[0]["final"]["test/acc"] == 0.50
    # the partial copy disagrees with the finished one (warned once); the exact copy is silent
    assert len(warnings) == 1 and "different results" in warnings[0]
