"""Every input the harness can explain is one line and exit status 2 (lnl.commands.one_line_errors), never a
traceback; anything else keeps its traceback. One test per class of bad input, each written to fail first."""
from __future__ import annotations

import dataclasses
import errno
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import lnl
from conftest import TINY, pretrain_recipe
from lnl import store
from lnl.commands import one_line_errors


def _argv(values: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in values.items()]


def _one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_the_handler_shows_the_harness_s_errors_in_one_line_and_keeps_a_bug_s_traceback(capsys):
    @one_line_errors
    def bad_input(argv):
        raise lnl.ConfigError("seed", "must be\nan integer")

    @one_line_errors
    def bug(argv):
        raise KeyError("a bug")

    assert bad_input(None) == 2
    _one_line(capsys, "seed (--seed): must be an integer")
    with pytest.raises(KeyError):
        bug(None)


@pytest.mark.parametrize("text", ["lr: [1, 2]", "lr: {a: 1}", "epochs: [1]", "seed: [0]", "color_var: [0.02]",
                                  "tags: {a: 1}", "threads: [[1]]"])
def test_a_yaml_value_of_the_wrong_kind_is_one_line(text, tmp_path, capsys):
    from lnl.commands.train import main

    (tmp_path / "c.yaml").write_text(text + "\n")
    assert main(["--config", str(tmp_path / "c.yaml")]) == 2
    _one_line(capsys, f"(--{text.split(':')[0].replace('_', '-')}): must be")


def test_every_seed_the_config_accepts_trains(tiny_config):
    """Seeds up to 2^63 - 1 pass validation; the batch-order generator once overflowed from about 1.85e13."""
    result = lnl.train(tiny_config(method="baseline", seed=2 ** 63 - 1, train_size=400, test_size=200))
    assert result.status == "finished"


@pytest.fixture(scope="module")
def pretrained_runs(cache_dir, tmp_path_factory):
    """A runs folder with a finished 1-epoch baseline and the LNL run that started from it (trained once)."""
    root = tmp_path_factory.mktemp("pretrained")
    recipe = pretrain_recipe(root, baseline_epochs=1)
    values = {**TINY, "method": "lnl", "recipe": recipe, "optimizer": "sgd", "lr": 0.001, "init_from": "baseline",
              "cache_dir": str(cache_dir), "runs_dir": str(root / "runs")}
    first = lnl.train(lnl.Config.from_dict(values))
    return values, json.loads((first.run_dir / "record.json").read_text())["init"]


@pytest.fixture
def pretrained(pretrained_runs, tmp_path):
    """A copy of those runs to break, and a function that runs lnl-train for another LNL run in it."""
    from lnl.commands.train import main

    values, init = pretrained_runs
    values = {**values, "runs_dir": str(tmp_path / "runs")}
    shutil.copytree(pretrained_runs[0]["runs_dir"], values["runs_dir"])
    base = Path(values["runs_dir"]) / init["from_run"]
    copies = [base / "final.pt", store.stored_path(values["runs_dir"], init["sha256"])]
    return {"base": base, "copies": copies, "run": lambda **kw: main(_argv({**values, **kw}))}


@pytest.mark.parametrize("case", ["missing", "truncated", "other_network", "code"])
def test_a_pretrained_start_that_cannot_load_is_one_line_and_leaves_no_run_folder(pretrained, case, capsys,
                                                                                   tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.touch, ())

    for path in pretrained["copies"]:
        if case == "missing":
            path.unlink()
        elif case == "truncated":
            path.write_bytes(path.read_bytes()[:-100])
        elif case == "other_network":
            torch.save({"model": {"f.conv9.weight": torch.zeros(3)}, "optimizers": {}}, path)
        else:
            path.write_bytes(pickle.dumps(Payload()))
    if case in ("other_network", "code"):  # the attacker rewrites the record's digest too
        rec_path = pretrained["base"] / "record.json"
        record = json.loads(rec_path.read_text())
        record["final_checkpoint"]["sha256"] = store.sha256_file(pretrained["copies"][0])
        rec_path.write_text(json.dumps(record))
    capsys.readouterr()
    runs = Path(pretrained["base"]).parent
    folders = lambda: {p.name for p in runs.iterdir() if p.is_dir()}  # noqa: E731 (lock files stay, by design)
    before = folders()
    assert pretrained["run"](**{"lambda": 0.5}) == 2
    err = _one_line(capsys, "init_from")
    assert "weights_only=False" not in err
    assert folders() == before  # no empty run folder
    assert not marker.exists()


def test_a_full_disk_while_the_final_weights_are_written_is_one_line_and_a_failed_record(tiny_config, capsys,
                                                                                         monkeypatch):
    import lnl.training.run_folder as run_folder
    from lnl.commands.train import main

    real = run_folder.write_checkpoint

    def full_disk(path, state):
        if path.name == "final.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, state)

    monkeypatch.setattr(run_folder, "write_checkpoint", full_disk)
    cfg = tiny_config(method="baseline", run_id="full", train_size=400, test_size=200)
    values = {k: v for k, v in cfg.to_dict().items() if v is not None and k in (
        *TINY, "method", "run_id", "train_size", "test_size", "cache_dir", "runs_dir")}
    assert main(_argv(values)) == 2
    _one_line(capsys, "No space left on device")
    record = json.loads((Path(cfg.runs_dir) / "full" / "record.json").read_text())
    assert record["status"] == "failed" and "final.pt" in record["reason"]
    monkeypatch.setattr(run_folder, "write_checkpoint", real)
    assert main(_argv({**values, "resume": True})) == 0  # space freed: the run trains again and finishes
    assert json.loads((Path(cfg.runs_dir) / "full" / "record.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("command", ["run_sweep", "create_sweeps"])
@pytest.mark.parametrize("spec, needle", [("{values: baseline}", "values must be a non-empty list"),
                                          ("{values: []}", "values must be a non-empty list"),
                                          ("{value: [baseline, lnl]}", "value must be one value"),
                                          ("{valuse: [baseline]}", "unknown key(s) valuse")])
def test_a_sweep_with_the_wrong_shape_is_one_line(command, spec, needle, tmp_path, capsys):
    import importlib

    path = tmp_path / "sweep.yaml"
    path.write_text(f"program: scripts/train.py\nmethod: grid\nparameters:\n  method: {spec}\n"
                    "  seed: {values: [0]}\n")
    main = importlib.import_module(f"lnl.commands.{command}").main
    extra = ["--runs-dir", str(tmp_path / "runs")] if command == "run_sweep" else []
    assert main([str(path), "--dry-run", *extra]) == 2
    _one_line(capsys, needle)


@pytest.mark.parametrize("command", ["run_sweep", "create_sweeps", "optuna_search"])
def test_a_binary_sweep_file_is_one_line(command, tmp_path, capsys):
    import importlib

    path = tmp_path / "sweep.yaml"
    path.write_bytes(bytes(range(128, 256)))
    main = importlib.import_module(f"lnl.commands.{command}").main
    argv = {"run_sweep": [str(path), "--dry-run"], "create_sweeps": [str(path), "--dry-run"],
            "optuna_search": ["--space", str(path), "--n-trials", "0", "--storage", f"sqlite:///{tmp_path}/o.db"]}
    assert main(argv[command]) == 2
    _one_line(capsys, "cannot read sweep YAML")


def test_a_filter_that_selects_nothing_is_one_line(tmp_path, capsys):
    from lnl.commands.run_sweep import main

    sweep = Path(lnl.__file__).parents[1] / "sweeps/headline.yaml"
    assert main([str(sweep), "--runs-dir", str(tmp_path), "--filter", "methd=gray", "--dry-run"]) == 2
    _one_line(capsys, "matches none of the 84 runs")


def test_evaluate_refuses_an_out_folder_before_scoring_anything(tmp_path, capsys):
    from lnl.commands.evaluate import main

    assert main([str(tmp_path / "no-run"), "--out", str(tmp_path)]) == 2
    _one_line(capsys, "--out")


def test_a_record_that_is_not_a_json_object_is_no_record(tmp_path):
    from lnl.records import read_record

    (tmp_path / "record.json").write_text("[1, 2]")
    assert read_record(tmp_path) is None


def test_a_binary_checksum_beside_a_checkpoint_restarts_the_run_with_a_warning(tiny_config, capsys):
    cfg = tiny_config(method="baseline", run_id="sums", epochs=2, train_size=400, test_size=200)

    def stop(epoch, metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lnl.train(cfg, on_epoch=stop)
    run_dir = Path(cfg.runs_dir) / "sums"
    sums = [p for p in run_dir.iterdir() if p.name.endswith(".sha256")]
    assert sums
    sums[0].write_bytes(bytes(range(128, 256)))
    assert lnl.train(dataclasses.replace(cfg, resume=True)).status == "finished"
    assert "starts over" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_benchmark_on_cuda_without_a_gpu_is_one_line(capsys):
    from lnl.commands.benchmark import main

    assert main(["--device", "cuda"]) == 2
    _one_line(capsys, "CUDA is not available")


def test_a_reader_that_goes_away_is_exit_141_without_a_traceback(tmp_path, capfd):
    """`lnl-run-sweep ... --dry-run | head`: the pipe closes under the command; it ends quietly (141, as a shell
    reports SIGPIPE) instead of a BrokenPipeError traceback, and stdout points nowhere so exit's flush is quiet."""
    import os
    import sys

    from lnl.commands import one_line_errors

    @one_line_errors
    def main(argv=None):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    saved = os.dup(sys.stdout.fileno())
    try:
        assert main([]) == 141
        assert os.path.samefile(f"/proc/self/fd/{sys.stdout.fileno()}", os.devnull)
    finally:
        os.dup2(saved, sys.stdout.fileno())
        os.close(saved)
    assert "Traceback" not in capfd.readouterr().err
