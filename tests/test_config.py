"""The config dataclass and its three sources: defaults, YAML, flags (incl. wandb agent argv)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lnl.commands.train import main
from lnl.config import Config, ConfigError
from lnl.flags import parse_args
from conftest import REPO


def test_defaults_are_the_papers():
    cfg = Config()
    assert (cfg.method, cfg.arch, cfg.lambda_, cfg.mu, cfg.batch_size) == ("lnl", "paper", 0.01, 0.1, 128)
    assert (cfg.optimizer, cfg.momentum, cfg.weight_decay, cfg.lr_step_epochs, cfg.lr_gamma) == \
        ("sgd", 0.9, 5e-4, 40, 0.1)
    assert cfg.to_dict()["lambda"] == 0.01 and "lambda_" not in cfg.to_dict()


def test_user_facing_flags():
    cfg = parse_args(["--method", "baseline", "--color-var", "0.035", "--lambda", "0.5", "--mu", "2",
                      "--lr", "0.05", "--epochs", "3", "--seed", "7", "--arch", "paper_bn"])
    assert (cfg.method, cfg.color_var, cfg.lambda_, cfg.mu, cfg.lr, cfg.epochs, cfg.seed, cfg.arch) == \
        ("baseline", 0.035, 0.5, 2.0, 0.05, 3, 7, "paper_bn")


def test_wandb_agent_argv():
    # what `wandb agent` renders from ${args}: --key=str(value)
    cfg = parse_args(["--method=lnl", "--color_var=0.02", "--lambda=0.001", "--bias_lr=None",
                      "--bias_probe=False", "--channels_last=True", "--lr=1e-05", "--width=0.5",
                      "--tags=['a', 'b']", "--g_depth=3", "--train_size=None"])
    assert cfg.lambda_ == 0.001 and cfg.bias_lr is None and cfg.bias_probe is False
    assert cfg.channels_last is True and cfg.lr == 1e-05 and cfg.tags == ["a", "b"] and cfg.g_depth == 3
    assert parse_args(["--resume"]).resume is True  # a bare boolean flag means True


def test_yaml_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: baseline\nlr: 1.0e-3\nepochs: 4\nlambda: 0.2\n")
    cfg = parse_args(["--config", str(path), "--epochs", "9"])
    assert (cfg.method, cfg.lr, cfg.epochs, cfg.lambda_) == ("baseline", 0.001, 9, 0.2)
    path.write_text("lr: 1e-3\n")  # PyYAML reads 1e-3 as a string: still a number for us
    assert parse_args([f"--config={path}"]).lr == 0.001


BAD_INPUTS = [
    (["--color-var", "-0.1"], "color_var"),
    (["--color-var", "0"], "color_var"),
    (["--method", "magic"], "method"),
    (["--arch", "resnet9000"], "arch"),
    (["--lr", "-1"], "lr"),
    (["--lr", "abc"], "lr"),
    (["--epochs", "0"], "epochs"),
    (["--val-eval-size", "0"], "val_eval_size"),
    (["--epochs", "2.5"], "epochs"),
    (["--batch-size", "1"], "batch_size"),
    (["--lambda", "-1"], "lambda"),
    (["--mu", "nan"], "mu"),
    (["--momentum", "1.5"], "momentum"),
    (["--gce-q", "0"], "gce_q"),
    (["--gce-q", "1.5"], "gce_q"),
    (["--loss-ema", "1"], "loss_ema"),
    (["--hsic-weight", "-0.5"], "hsic_weight"),
    (["--eval-every", "-1"], "eval_every"),
    (["--optimizer", "rmsprop"], "optimizer"),
    (["--precision", "fp8"], "precision"),
    (["--bias-probe", "maybe"], "bias_probe"),
    (["--warmup-epochs", "20", "--epochs", "10"], "warmup_epochs"),
    (["--device", "tpu"], "device"),
    (["--data-source", "official"], "data_path"),
    (["--unbiased-colors", "random"], "unbiased_colors"),
    (["--data-source", "official", "--data-path", "x.npy", "--unbiased-colors", "other_palette"],
     "unbiased_colors"),
    (["--color-bounds", "wrap"], "color_bounds"),
    (["--data-source", "official", "--data-path", "x.npy", "--color-bounds", "resample"], "color_bounds"),
    (["--seed", "None"], "seed"),
    (["--colour-var", "0.02"], "colour-var"),
    (["--wandb-mode", "sometimes"], "wandb_mode"),
    (["positional"], "positional"),
]


@pytest.mark.parametrize("argv,key", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_the_key(argv, key, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
    with pytest.raises(ConfigError):
        parse_args(argv)


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        parse_args(["--config", str(path)])


@pytest.mark.slow
def test_script_exit_status_end_to_end():
    proc = subprocess.run([sys.executable, "scripts/train.py", "--color-var=-1"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "color_var" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "lnl", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "--color-var" in proc.stdout and "--lambda" in proc.stdout


@pytest.mark.slow
def test_the_config_and_the_sweep_checks_load_without_torch():
    """import lnl is lazy: the config, sweep YAML checks and report tables don't pay for torch."""
    code = ("import sys, lnl, lnl.config, lnl.sweep_config, lnl.accel.workers; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "lnl.Config(method='lnl', color_var=0.03).default_run_id(); print(lnl.__version__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import lnl
    import lnl.training.loop

    assert lnl.train is lnl.training.loop.train  # the lazy name is the loop's own function


def test_run_identity_ignores_paths_and_logging():
    a = Config(runs_dir="x", progress=False, wandb_mode="offline")
    b = Config(runs_dir="y")
    assert a.default_run_id() == b.default_run_id()
    assert Config(lr=0.02).default_run_id() != b.default_run_id()
    assert Config(seed=3).default_run_id().startswith("lnl-cv0.020-s3-")
    # a data field added later keeps existing run ids at its default and changes them otherwise
    assert Config(unbiased_colors="palette").default_run_id() == b.default_run_id()
    assert Config(unbiased_colors="other_palette").default_run_id() != b.default_run_id()
    assert Config(color_bounds="clip").default_run_id() == b.default_run_id()
    resample = Config(color_bounds="resample", method="lnl", init_from="baseline")
    assert resample.default_run_id() != b.default_run_id()
    # a data field: the pretrained baseline is trained on the same data
    assert resample.init_config().color_bounds == "resample"


def test_recipes_give_per_method_defaults_under_explicit_values(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("all:\n  epochs: 7\n  lr: 0.02\nlnl:\n  lambda: 0.3\n  lr: 0.005\nbaseline: {}\n")
    lnl_cfg = parse_args(["--recipe", str(recipe), "--method", "lnl"])
    assert (lnl_cfg.epochs, lnl_cfg.lr, lnl_cfg.lambda_) == (7, 0.005, 0.3)
    base_cfg = parse_args(["--recipe", str(recipe), "--method", "baseline", "--epochs", "2"])
    assert (base_cfg.epochs, base_cfg.lr, base_cfg.lambda_) == (2, 0.02, 0.01)  # flags win over the recipe
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(f"recipe: {recipe}\nlr: 0.1\n")
    assert parse_args(["--config", str(yaml_file), "--method", "lnl"]).lr == 0.1  # recipe < YAML
    with pytest.raises(ConfigError, match="no entry for method 'gray'"):
        parse_args(["--recipe", str(recipe), "--method", "gray"])
    with pytest.raises(ConfigError, match="no recipe 'nope'"):
        parse_args(["--recipe", "nope"])
    # the recipe is provenance: the run's identity is its resolved values
    explicit = parse_args(["--method", "lnl", "--epochs", "7", "--lr", "0.005", "--lambda", "0.3"])
    assert explicit.default_run_id() == lnl_cfg.default_run_id()


@pytest.mark.parametrize("key,value", [("lambda", 0.5), ("mu", 0.3), ("mu_schedule", "dann"), ("alpha", 0.1),
                                       ("lr", 0.05), ("epochs", 7), ("gce_q", 0.5), ("loss_ema", 0.9),
                                       ("hsic_weight", 2.0)])
def test_method_settings_do_not_change_the_pretrained_baseline(key, value):
    """A search over a method's own settings (LNL, BlindEye, LfF, ReBias) starts every trial from one baseline
    per (level, seed): the pretraining run's id does not depend on them (a BlindEye alpha once retrained the
    baseline)."""
    from lnl.config import Config

    for method in ("lnl", "blind_eye", "lff", "rebias"):
        base = Config.from_dict({"method": method, "recipe": "headline", "seed": 1, "init_from": "baseline"})
        other = Config.from_dict({"method": method, "recipe": "headline", "seed": 1, "init_from": "baseline",
                                  key: value})
        assert other.init_config().default_run_id() == base.init_config().default_run_id()
    assert Config.from_dict({"method": "lnl", "recipe": "headline", "seed": 2}).init_config() \
        .default_run_id() != base.init_config().default_run_id()  # the seed does change it


@pytest.mark.parametrize("flags", [["--recipe", "official", "--init-recipe", "official_short", "--lambda", "0.1"],
                                   ["--recipe", "official_short", "--mu", "1"],
                                   ["--lr", "0.02"]])
def test_rerun_values_as_a_config_file_recompute_the_same_run(flags, tmp_path):
    """An Optuna study's best trial is written with Config.rerun_values() for `lnl-train --config`: that file
    names the same run, its pretrained start included (the pretraining recipe is no identity field, so
    identity() alone once lost it and the file was refused: '--init-recipe is needed')."""
    import yaml

    cfg = parse_args(["--method", "lnl", "--seed", "2", *flags])
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump(cfg.rerun_values()))
    again = parse_args(["--config", str(path)])
    assert again.default_run_id() == cfg.default_run_id()
    if cfg.init_from is not None:
        assert again.init_config().default_run_id() == cfg.init_config().default_run_id()
        assert again.init_config().epochs == 10  # the official_short baseline, not official's 100 epochs


@pytest.mark.slow
@pytest.mark.parametrize("case", ["recipe_entry_not_mapping", "recipe_starts_from_itself", "runs_dir_is_a_file",
                                  "runs_dir_dangling_link", "run_id_too_long"])
def test_inputs_that_used_to_traceback_are_one_line_and_exit_2(case, tmp_path):
    """lnl-train on each: exit 2, one line on stderr, nothing written (issue 37, class 7)."""
    import subprocess
    import sys

    from conftest import REPO

    runs = tmp_path / "runs"
    argv = ["--runs-dir", str(runs)]
    if case == "recipe_entry_not_mapping":
        (tmp_path / "r.yaml").write_text("lnl: [1, 2]\n")
        argv += ["--recipe", str(tmp_path / "r.yaml")]
    elif case == "recipe_starts_from_itself":
        (tmp_path / "r.yaml").write_text("lnl: {init_from: lnl}\n")
        argv += ["--recipe", str(tmp_path / "r.yaml")]
    elif case == "runs_dir_is_a_file":
        runs.write_text("")
    elif case == "runs_dir_dangling_link":
        runs.symlink_to(tmp_path / "nowhere")
    else:
        argv += ["--run-id", "a" * 250]
    proc = subprocess.run([sys.executable, "scripts/train.py", *argv, "--wandb-mode", "disabled"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "nowhere").exists() and (case == "runs_dir_is_a_file" or not runs.is_dir())


def test_committed_records_keep_their_run_ids():
    """The config's regrouping (what a run computes apart from how it runs) must not move a run id: each
    finished record's config gives the id it gave before (tests/fixtures/computed_run_ids.json, computed
    with the config as it was before the regrouping; test_analysis checks the headline's against the store)."""
    frozen = json.loads((REPO / "tests" / "fixtures" / "computed_run_ids.json").read_text())
    assert len(frozen) > 200
    for run_id, before in frozen.items():
        record = json.loads((REPO / "results" / run_id / "record.json").read_text())
        now = Config.from_dict(record["config"]).default_run_id()
        assert now == before, run_id
