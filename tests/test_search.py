"""Optuna search: YAML -> Optuna mapping, a small study on SQLite, pruning, best configs."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from conftest import REPO
from lnl.flags import parse_args
from lnl.optuna_storage import mask_url
from lnl.search import Objective, SearchSpaceError, space_from_sweep, study_name
from lnl.sweep_config import for_condition, load_sweep


def test_every_wandb_distribution_maps_or_is_refused_by_name():
    sweep = {"parameters": {
        "method": {"value": "lnl"},
        "optimizer": {"values": ["sgd", "adam"]},
        "g_depth": {"min": 1, "max": 4},
        "width": {"min": 0.5, "max": 2.0},
        "batch_size": {"distribution": "q_uniform", "min": 64, "max": 256, "q": 64},
        "momentum": {"distribution": "q_uniform", "min": 0.5, "max": 0.9, "q": 0.1},
        "mu": {"distribution": "log_uniform", "min": -4.6, "max": 2.3},
        "lr": {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 0.1},
        "head_width": {"distribution": "q_log_uniform_values", "min": 8, "max": 128, "q": 1},
        "epochs": {"distribution": "int_uniform", "min": 2, "max": 6},
        "lambda": {"distribution": "uniform", "min": 0.0, "max": 1.0},
    }}
    fixed, space = space_from_sweep(sweep)
    assert fixed == {"method": "lnl"}
    assert space["optimizer"] == CategoricalDistribution(["sgd", "adam"])
    assert space["g_depth"] == IntDistribution(1, 4)
    assert space["width"] == FloatDistribution(0.5, 2.0)
    assert space["batch_size"] == IntDistribution(64, 256, step=64)
    assert space["momentum"] == FloatDistribution(0.5, 0.9, step=0.1)
    assert space["mu"].log and space["mu"].low == pytest.approx(math.exp(-4.6))
    assert space["lr"] == FloatDistribution(1e-4, 0.1, log=True)
    assert space["head_width"] == IntDistribution(8, 128, log=True)
    assert space["epochs"] == IntDistribution(2, 6)
    assert space["lambda"] == FloatDistribution(0.0, 1.0)
    for bad in ({"distribution": "normal", "mu": 0, "sigma": 1},
                {"distribution": "inv_log_uniform_values", "min": 1, "max": 10},
                {"distribution": "q_log_uniform_values", "min": 1.0e-3, "max": 1.0, "q": 0.01},
                {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.3}):
        with pytest.raises(SearchSpaceError, match="parameter 'lr'"):
            space_from_sweep({"parameters": {"lr": bad}})


@pytest.mark.parametrize("path", sorted((REPO / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_repository_sweeps_map_to_optuna(path):
    fixed, space = space_from_sweep(for_condition(load_sweep(path), 0.02))  # as optuna_search.py does
    assert fixed["color_var"] == 0.02 and space


def test_objective_never_uses_the_test_set():
    with pytest.raises(ValueError, match="validation metric"):
        Objective({}, {}, {}, "s", objective="test/acc")


def test_passwords_are_masked():
    assert mask_url("postgresql+psycopg2://lnl:s3cr3t@db:5432/x") == "postgresql+psycopg2://lnl:***@db:5432/x"
    assert mask_url("sqlite:///optuna.db") == "sqlite:///optuna.db"
    for url in ("postgresql://:s3cr3t@db/x", "postgresql://lnl@db/x?password=s3cr3t",
                "mysql+pymysql://u:s3cr3t@h/x?ssl_key=/k&PASSWORD=s3cr3t", "postgresql://u:s3:cr@t@db/x"):
        assert "s3cr3t" not in mask_url(url) and "s3:cr" not in mask_url(url), url
    assert mask_url("journal:/tmp/j.log") == "journal:/tmp/j.log"


@pytest.mark.slow
def test_three_trial_study_on_sqlite(cache_dir, tmp_path):
    cmd = [sys.executable, str(REPO / "scripts" / "optuna_search.py"), "--space", str(REPO / "sweeps/lnl_tune.yaml"),
           "--color-var", "0.02", "--n-trials", "3", "--seed", "1", "--confirm-seeds", "2",
           "--set", "epochs=2", "train_size=800", "test_size=300", "val_eval_size=300", f"cache_dir={cache_dir}", "--wandb-mode", "disabled"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = study_name("lnl_tune", "lnl", 0.02)
    assert name == "lnl_tune-lnl-cv0.020"
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    for trial in trials:  # each trial is a full run with its own record
        record = json.loads((tmp_path / "runs/optuna" / trial.user_attrs["run_id"] / "record.json").read_text())
        assert record["config"]["trial"] == trial.number and record["config"]["study"] == name
        assert record["config"]["group"] == name
        for key, value in trial.params.items():
            assert record["config"][key] == value
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert trial.value == max(e["val_unbiased/acc"] for e in record["epochs"])
    best_yaml = tmp_path / "optuna_best" / f"{name}.yaml"
    cfg = parse_args(["--config", str(best_yaml)])
    assert cfg.lambda_ == pytest.approx(study.best_params["lambda"]) and cfg.epochs == 2
    assert f"re-run: lnl-train --config optuna_best/{name}.yaml" in proc.stdout
    assert "unbiased test accuracy" in proc.stdout and "+-" in proc.stdout and "n=2" in proc.stdout
    # a rerun adds trials to the same study
    proc = subprocess.run(cmd[:cmd.index("--confirm-seeds")] + cmd[cmd.index("--set"):] + ["--n-trials", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials) == 4
    _dashboard_reads_the_study(f"sqlite:///{tmp_path / 'optuna.db'}", name, tmp_path / "runs/optuna")


def _dashboard_reads_the_study(storage: str, name: str, runs: Path) -> None:
    """optuna-dashboard (its WSGI app, as `optuna-dashboard <storage>` serves it) lists the study made by
    optuna_search.py and shows each trial's parameters, value and the user attributes we store (run id,
    study instance), so a change in how we store them can't silently break the dashboard."""
    from wsgiref.util import setup_testing_defaults

    import optuna_dashboard

    app = optuna_dashboard.wsgi(storage)

    def get(path: str) -> dict:
        environ: dict = {}
        setup_testing_defaults(environ)
        environ.update(PATH_INFO=path, REQUEST_METHOD="GET")
        status = []
        body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
        assert status[0].startswith("200"), (path, status, body[:300])
        return json.loads(body)

    summaries = {s["study_name"]: s for s in get("/api/studies")["study_summaries"]}
    assert summaries[name]["directions"] == ["maximize"]
    study = get(f"/api/studies/{summaries[name]['study_id']}")
    trials = study["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    for trial in trials:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert (runs / attrs["run_id"] / "record.json").is_file()
        ours = optuna.load_study(study_name=name, storage=storage).trials[trial["number"]]
        assert {p["name"]: p["param_internal_value"] for p in trial["params"]} == {
            k: ours.distributions[k].to_internal_repr(v) for k, v in ours.params.items()}
        assert attrs["run_id"] == ours.user_attrs["run_id"]
    complete = [t for t in trials if t["state"] == "Complete"]
    assert complete and all(len(t["values"]) == 1 and 0 <= t["values"][0] <= 1 for t in complete)


@pytest.mark.slow  # a W&B offline run starts W&B\'s service process
def test_a_bad_trial_is_pruned_and_its_wandb_run_finishes(tiny_config, tmp_path, monkeypatch):
    from wandb_log import read_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    sweep = {"parameters": {"method": {"value": "baseline"}, "color_var": {"value": 0.02},
                            "lr": {"values": [0.003, 1.0e-7]}}}
    fixed, space = space_from_sweep(sweep)
    base = tiny_config(epochs=3, wandb_mode="auto").to_dict()
    overrides = {k: base[k] for k in ("epochs", "train_size", "test_size", "val_eval_size", "batch_size", "optimizer",
                                       "cache_dir", "runs_dir", "progress", "wandb_mode")}
    objective = Objective(fixed, space, overrides, "prune-test")
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    for lr in (0.003, 0.003, 1.0e-7):  # two good trials, then a deliberately bad one
        study.enqueue_trial({"lr": lr})
    study.optimize(objective, n_trials=3)
    states = [t.state for t in study.trials]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE] * 2
    assert states[2] == optuna.trial.TrialState.PRUNED
    bad = study.trials[2]
    record = json.loads((Path(overrides["runs_dir"]) / bad.user_attrs["run_id"] / "record.json").read_text())
    # the pruner may stop it after epoch 1 or 2 (n_warmup_steps=1), never after the last one
    pruned_at = re.fullmatch(r"pruned at epoch (\d+): val_unbiased/acc [0-9.]+", record["reason"])
    assert record["status"] == "pruned" and pruned_at and int(pruned_at.group(1)) in (1, 2), record["reason"]
    assert len(record["epochs"]) == int(pruned_at.group(1))  # stopped right there
    logged = read_run(next(Path(record["wandb"]["dir"]).glob("run-*.wandb")))
    assert logged["summary"]["status"] == "pruned"
    assert logged["run"].job_type == "optuna-trial" and logged["run"].run_group == "prune-test"
    assert logged["config"]["trial"] == 2


def test_diverged_trial_is_pruned_with_its_reason(tiny_config):
    sweep = {"parameters": {"method": {"value": "baseline"}, "color_var": {"value": 0.02},
                            "lr": {"value": 1.0e8}, "momentum": {"value": 0.0}}}
    fixed, space = space_from_sweep(sweep)
    base = tiny_config(epochs=2).to_dict()
    overrides = {k: base[k] for k in ("epochs", "train_size", "test_size", "val_eval_size", "cache_dir", "runs_dir", "progress")}
    study = optuna.create_study(direction="maximize")
    study.optimize(Objective(fixed, space, overrides, "diverge-test"), n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert "non-finite" in study.trials[0].user_attrs["reason"]


def test_objective_over_several_seeds_is_their_mean(tiny_config):
    """--seeds-per-trial 2: each trial trains seeds s and s+1 (two run records), its value is the mean of
    the two runs' best-epoch validation accuracy, and the pruner saw only the first seed's epochs."""
    sweep = {"parameters": {"method": {"value": "baseline"}, "color_var": {"value": 0.02},
                            "lr": {"values": [0.003]}, "seed": {"value": 4}}}
    fixed, space = space_from_sweep(sweep)
    base = tiny_config(epochs=2).to_dict()
    overrides = {k: base[k] for k in ("epochs", "train_size", "test_size", "val_eval_size", "cache_dir", "runs_dir", "progress")}
    objective = Objective(fixed, space, overrides, "seeds-test", seeds=2)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    records = [json.loads((Path(overrides["runs_dir"]) / trial.user_attrs[key] / "record.json").read_text())
               for key in ("run_id", "run_id_seed1")]
    assert [r["config"]["seed"] for r in records] == [4, 5]
    bests = [max(e["val_unbiased/acc"] for e in r["epochs"]) for r in records]
    assert trial.user_attrs["seed_values"] == bests and trial.value == pytest.approx(sum(bests) / 2)
    assert sorted(trial.intermediate_values) == [1, 2]  # one curve: the first seed's
    assert trial.intermediate_values[2] == records[0]["epochs"][1]["val_unbiased/acc"]
    with pytest.raises(ValueError, match="seeds per trial"):
        Objective(fixed, space, overrides, "s", seeds=0)


def test_a_retried_trial_continues_its_dead_trials_runs(tiny_config):
    """A worker died mid-trial (seed 0 finished, seed 1 killed after epoch 1 of 3): the retry (Optuna's
    failed_trial attribute) returns seed 0's record untouched and resumes seed 1 from its checkpoint; a retry
    under another configuration (here: another epoch budget) trains its own runs instead of refusing."""
    from lnl.training.loop import train

    sweep = {"parameters": {"method": {"value": "baseline"}, "color_var": {"value": 0.02},
                            "lr": {"values": [0.003]}, "seed": {"value": 4}}}
    fixed, space = space_from_sweep(sweep)
    base = tiny_config(epochs=3, train_size=500, test_size=200, val_eval_size=200).to_dict()
    overrides = {k: base[k] for k in ("epochs", "train_size", "test_size", "val_eval_size", "cache_dir", "runs_dir", "progress")}
    runs = Path(overrides["runs_dir"])
    objective = Objective(fixed, space, overrides, "retry-test", seeds=2)
    study = optuna.create_study(direction="maximize")
    dead = study.ask()
    train(objective.config(dead, 0))

    def kill_after_epoch_1(epoch, metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(objective.config(dead, 1), on_epoch=kill_after_epoch_1)
    study.tell(dead, state=optuna.trial.TrialState.FAIL)
    seed0, seed1 = (objective.config(dead, k).run_id for k in (0, 1))
    finished_bytes = (runs / seed0 / "record.json").read_bytes()
    killed = json.loads((runs / seed1 / "record.json").read_text())
    assert killed["status"] == "interrupted" and len(killed["epochs"]) == 1

    def retry(obj):
        trial = study.ask()
        study._storage.set_trial_system_attr(trial._trial_id, "failed_trial", dead.number)  # what Optuna's
        value = obj(trial)                                                                # retry callback sets
        study.tell(trial, value)
        return study.trials[trial.number]

    again = retry(objective)
    assert again.user_attrs["retry_of"] == 0
    assert (again.user_attrs["run_id"], again.user_attrs["run_id_seed1"]) == (seed0, seed1)
    assert (runs / seed0 / "record.json").read_bytes() == finished_bytes  # not trained again
    resumed = json.loads((runs / seed1 / "record.json").read_text())
    assert resumed["status"] == "finished" and len(resumed["epochs"]) == 3
    assert resumed["epochs"][0] == killed["epochs"][0]  # epoch 1 is the dead trial's, not retrained
    assert resumed["config"]["trial"] == again.number
    bests = [max(e["val_unbiased/acc"] for e in json.loads((runs / r / "record.json").read_text())["epochs"])
             for r in (seed0, seed1)]
    assert again.value == pytest.approx(sum(bests) / 2)

    other = retry(Objective(fixed, space, {**overrides, "epochs": 2}, "retry-test", seeds=2))
    assert other.user_attrs["run_id"] == f"retry-test-trial{other.number:04d}"  # its own runs
    assert len(json.loads((runs / other.user_attrs["run_id"] / "record.json").read_text())["epochs"]) == 2
    assert (runs / seed0 / "record.json").read_bytes() == finished_bytes


@pytest.mark.parametrize("flags", [["--max-trials", "-1"], ["--max-trials", "0"], ["--timeout", "-5"],
                                   ["--timeout", "0"]])
def test_bad_budgets_are_refused_before_anything_runs(flags, tmp_path, capsys):
    from lnl.commands.optuna_search import main

    code = main(["--space", str(REPO / "sweeps" / "lnl_tune.yaml"), "--storage", f"sqlite:///{tmp_path}/o.db",
                 *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1
    assert not (tmp_path / "o.db").exists()


def test_a_space_that_allows_invalid_values_is_refused_up_front(tmp_path, capsys):
    from lnl.commands.optuna_search import main

    space = tmp_path / "neg.yaml"
    space.write_text("name: neg\nprogram: scripts/train.py\nmethod: bayes\n"
                     "metric: {name: val_unbiased/acc, goal: maximize}\n"
                     "parameters:\n  method: {value: lnl}\n  lr: {distribution: uniform, min: -0.1, max: 0.1}\n")
    code = main(["--space", str(space), "--storage", f"sqlite:///{tmp_path}/o.db", "--n-trials", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "lr (--lr): the search space allows -0.1" in err and err.count("\n") == 1
