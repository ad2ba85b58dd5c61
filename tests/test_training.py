"""The training core end to end on a few thousand real Colored MNIST images."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import lnl
from lnl.config import ConfigError
from lnl.methods import METHODS
from lnl.records import EPOCH_KEYS
from lnl.selection import selectable_epochs
from conftest import Lines, REPO, pretrain_recipe

PER_EPOCH_KEYS = {"epoch", "lr", "train/ce", "train/entropy", "bias/loss", "bias/acc", "val_biased/acc",
                  "val_unbiased/acc", "test/acc", "throughput"}


@pytest.mark.parametrize("method", METHODS.names())
def test_each_method_trains_and_writes_its_record(method, tiny_config):
    # ReBias in fp32, as its recipe (in bf16 its minimax diverges: lnl.debiasing.ReBias), on half the images:
    # fp32 and its second network make its step 5x the others'
    rebias = {"precision": "fp32", "train_size": 1000} if method == "rebias" else {}
    result = lnl.train(tiny_config(method=method, epochs=2, **rebias))
    assert result.status == "finished"
    record = json.loads((result.run_dir / "record.json").read_text())
    assert record["status"] == "finished" and record["config"]["method"] == method
    assert len(record["epochs"]) == 2 and PER_EPOCH_KEYS <= set(record["epochs"][0])
    assert set(record["epochs"][0]) == set(EPOCH_KEYS)  # the one list the report reads back from W&B
    for row in record["epochs"]:
        assert all(np.isfinite(row[k]) for k in PER_EPOCH_KEYS)
    cm = np.array(record["final"]["test/confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 1000
    assert record["final"]["test/acc"] == pytest.approx(np.trace(cm) / 1000, abs=1e-6)
    # the record keeps the confusion matrices of the epochs a selection rule picks, and no others
    assert set(record["confusion"]) == {str(e) for e in selectable_epochs(record["epochs"])}
    # 40 steps on 2,000 images: the training distribution is learned well above chance (0.1)
    assert record["epochs"][-1]["val_biased/acc"] > 0.3
    assert record["timings"]["total_s"] > 0 and "torch" in record["env"]
    assert not (result.run_dir / "checkpoint.pt").exists()  # finished runs drop their checkpoint


def test_lnl_makes_color_less_predictable_than_the_baseline(tiny_config):
    base = lnl.train(tiny_config(method="baseline", epochs=2, train_size=3000))
    unlearn = lnl.train(tiny_config(method="lnl", epochs=2, train_size=3000, **{"lambda": 1.0}, mu=1.0))
    # bias/acc: h's color-bin accuracy on val_unbiased features (the probe for the baseline)
    assert unlearn.epochs[-1]["bias/acc"] < base.epochs[-1]["bias/acc"]
    assert unlearn.epochs[-1]["train/entropy"] > base.epochs[-1]["train/entropy"]


def test_same_seed_same_numbers(tiny_config):
    a = lnl.train(tiny_config(method="lnl", run_id="a", train_size=1000))
    b = lnl.train(tiny_config(method="lnl", run_id="b", train_size=1000))
    c = lnl.train(tiny_config(method="lnl", run_id="c", seed=1, train_size=1000))
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("time/") and k != "throughput"}
                          for r in rows]  # noqa: E731
    assert strip(a.epochs) == strip(b.epochs)
    assert strip(a.epochs) != strip(c.epochs)


def test_eval_every_scores_fewer_epochs_and_trains_the_same(tiny_config):
    """eval_every N scores every N-th epoch and the last (0: the last only); the training is the same run."""
    runs = {n: lnl.train(tiny_config(method="lnl", run_id=f"e{n}", epochs=3, train_size=1000, eval_every=n))
            for n in (1, 2, 0)}
    scored = {n: [e["epoch"] for e in r.epochs if e["test/acc"] is not None] for n, r in runs.items()}
    assert scored == {1: [1, 2, 3], 2: [2, 3], 0: [3]}
    train_keys = ("train/ce", "train/entropy", "bias/loss")
    for n in (2, 0):
        assert [[e[k] for k in train_keys] for e in runs[n].epochs] == \
               [[e[k] for k in train_keys] for e in runs[1].epochs]
        assert runs[n].final["test/acc"] == runs[1].final["test/acc"]
        assert runs[n].final["test/confusion"] == runs[1].final["test/confusion"]
    unscored = runs[0].epochs[0]
    assert all(unscored[k] is None for k in ("val_biased/acc", "val_unbiased/acc", "test/acc", "bias/acc"))
    assert unscored["time/eval_s"] == 0.0
    record = json.loads((runs[0].run_dir / "record.json").read_text())
    assert set(record["confusion"]) == {"3"}  # no matrix for an epoch that was not scored
    assert runs[0].run_dir.name == "e0" and tiny_config(eval_every=0).default_run_id() != \
        tiny_config().default_run_id()  # what the record holds differs, so the run's identity does


def test_non_finite_loss_is_recorded_as_diverged(tiny_config):
    result = lnl.train(tiny_config(method="baseline", lr=1e8, momentum=0.0, epochs=3))
    assert result.status == "diverged" and "non-finite" in result.reason
    record = json.loads((result.run_dir / "record.json").read_text())
    assert record["status"] == "diverged" and len(record["epochs"]) == 1


def test_one_pass_variant_and_warmup_run(tiny_config):
    result = lnl.train(tiny_config(method="lnl", lnl_step="one_pass", warmup_epochs=1, epochs=2))
    assert result.status == "finished"
    assert [e["unlearning"] for e in result.epochs] == [0, 1]


def test_official_data_source_trains(tmp_path, cmnist, tiny_config):
    from test_data import write_official_file

    path = tmp_path / "mnist_10color_jitter_var_0.020.npy"
    write_official_file(path, cmnist, n_train=1500, n_test=300)
    result = lnl.train(tiny_config(data_source="official", data_path=str(path), val_size=300,
                                   train_size=None, test_size=None))
    assert result.status == "finished" and np.array(result.final["test/confusion"]).sum() == 300


@pytest.mark.slow
def test_resume_after_kill_gives_identical_final_metrics(tiny_config, tmp_path):
    common = ["--method", "lnl", "--epochs", "3", "--train-size", "2500", "--test-size", "500", "--val-eval-size", "500",
              "--batch-size", "50", "--progress", "False", "--cache-dir", tiny_config().cache_dir,
              "--runs-dir", str(tmp_path / "runs"), "--wandb-mode", "disabled"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reference = subprocess.run([sys.executable, "scripts/train.py", *common, "--run-id", "uninterrupted"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    victim = subprocess.Popen([sys.executable, "scripts/train.py", *common, "--run-id", "killed"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # Kill on the event the run reports (its epoch line, printed once the epoch's checkpoint is saved), not
    # after a fixed sleep: on a fast machine a sleeping test would find the run already finished.
    Lines(victim).until("epoch 1/3", timeout=240)
    assert (tmp_path / "runs" / "killed" / "checkpoint.pt.sha256").exists() and victim.poll() is None
    victim.send_signal(signal.SIGKILL)  # epoch 2 has just started
    victim.wait()
    record = json.loads((tmp_path / "runs" / "killed" / "record.json").read_text())
    assert record["status"] == "running" and len(record["epochs"]) == 1
    resumed = subprocess.run([sys.executable, "scripts/train.py", *common, "--run-id", "killed", "--resume"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming killed after epoch 1" in resumed.stdout
    a = json.loads((tmp_path / "runs" / "uninterrupted" / "record.json").read_text())
    b = json.loads((tmp_path / "runs" / "killed" / "record.json").read_text())
    metric_keys = [k for k in a["final"] if k not in ("throughput",)]
    assert {k: a["final"][k] for k in metric_keys} == {k: b["final"][k] for k in metric_keys}
    assert b["status"] == "finished" and len(b["epochs"]) == 3
    # one machine throughout: the resumed process adds no stretch (the checkpoint carried the first)
    assert [m["from_epoch"] for m in b["machines"]] == [1] and b["machines"][0]["device"] == "cpu"
    # a finished run is not redone
    again = subprocess.run([sys.executable, "scripts/train.py", *common, "--run-id", "killed", "--resume"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "already finished" in again.stdout


def test_lnl_starts_from_one_shared_pretrained_baseline(tiny_config, tmp_path):
    recipe = pretrain_recipe(tmp_path)
    make = lambda **kw: tiny_config(method="lnl", recipe=recipe, epochs=2, optimizer="sgd", lr=0.001,  # noqa: E731
                                    lr_schedule="step", lr_step_epochs=40, init_from="baseline", train_size=1000, **kw)
    a, b = lnl.train(make(**{"lambda": 0.01})), lnl.train(make(**{"lambda": 0.5}))
    runs = tmp_path / "runs"
    pretrained = sorted(p.name for p in runs.iterdir() if p.name.startswith("baseline-"))
    assert len(pretrained) == 1                      # trained once, shared by both LNL runs
    base = json.loads((runs / pretrained[0] / "record.json").read_text())
    assert base["config"]["epochs"] == 2 and base["config"]["lr"] == 0.01 and base["status"] == "finished"
    assert "pretrain" in base["config"]["tags"]
    for run in (a, b):
        record = json.loads((run.run_dir / "record.json").read_text())
        assert record["init"]["from_run"] == pretrained[0]
        assert record["init"]["sha256"] == base["final_checkpoint"]["sha256"]
        # epoch 1 runs at the baseline's last learning rate (0.01 x 0.1^2), as the authors' restored
        # optimizer does; then the restarted schedule at this run's lr
        assert [e["lr"] for e in record["epochs"]] == pytest.approx([1e-4, 1e-3])
    assert a.run_id != b.run_id
    # the pretrained run is part of the identity: another seed starts from another baseline
    assert make(seed=1).init_config().default_run_id() != pretrained[0]
    assert make().default_run_id() != tiny_config(method="lnl", recipe=recipe, epochs=2, optimizer="sgd",
                                                  lr=0.001, lr_schedule="step", lr_step_epochs=40,
                                                  init_from=None).default_run_id()


def test_pretrained_weights_and_momentum_are_loaded_and_the_bias_heads_start_fresh(tiny_config, tmp_path):
    import torch

    from lnl.training.device import autocast_factory
    from lnl.training.pretrained import load_pretrained, pretrained_start
    from lnl.training.build import prepare_model

    cfg = tiny_config(method="lnl", recipe=pretrain_recipe(tmp_path), optimizer="sgd", lr=0.001,
                      init_from="baseline").validate()
    start = pretrained_start(cfg, lnl.train)
    saved = start["state"]
    torch.manual_seed(123)
    model = prepare_model(cfg, torch.device("cpu"))
    fresh_h = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("h.")}
    method = METHODS.get("lnl")(cfg, model, autocast_factory(torch.device("cpu"), "fp32"))
    first_lr = load_pretrained(model, method, start)
    assert first_lr == pytest.approx(1e-4)
    state = model.state_dict()
    for key, value in saved["model"].items():
        if key.startswith(("f.", "g.")):
            assert torch.equal(state[key], value), key
        elif key.startswith("h.") and value.is_floating_point() and value.numel() > 8:
            assert not torch.equal(value, state[key]), key   # the baseline's probe head is not loaded
            assert torch.equal(state[key], fresh_h[key])
    momentum = [s["momentum_buffer"] for s in method.opt_fg.state_dict()["state"].values()]
    saved_momentum = [s["momentum_buffer"] for s in saved["optimizers"]["fg"]["state"].values()]
    assert len(momentum) == len(saved_momentum) > 0
    assert all(torch.equal(m, s) for m, s in zip(momentum, saved_momentum))
    assert method.opt_h.state_dict()["state"] == {}  # fresh bias-head optimizer


def test_an_adam_method_takes_only_the_weights_of_an_sgd_baseline(tiny_config, tmp_path):
    """LfF and ReBias train with Adam (their official code) from the authors' SGD Baseline: SGD's momentum
    buffers mean nothing to Adam, so the weights load, the optimizer starts fresh at the run's own rate."""
    recipe = pretrain_recipe(tmp_path)
    run = lnl.train(tiny_config(method="lff", init_recipe=recipe, init_from="baseline",
                                optimizer="adam", lr=3e-4, lr_schedule="constant", epochs=2, train_size=1000))
    record = json.loads((run.run_dir / "record.json").read_text())
    assert run.status == "finished" and record["init"]["from_run"].startswith("baseline-")
    assert record["init"]["first_epoch_lr"] is None
    assert [e["lr"] for e in record["epochs"]] == pytest.approx([3e-4, 3e-4])  # not the baseline's last rate


@pytest.mark.parametrize("keep", [False, True])
def test_the_bias_head_starts_fresh_unless_init_bias_head(tiny_config, tmp_path, keep):
    """As the authors, LNL's h starts fresh; ``init_bias_head`` starts it from the pretrained run's probe. Either
    way f, g and the f+g optimizer load, and the pretraining run (its id) is the same."""
    import contextlib

    import torch

    from lnl.methods import METHODS
    from lnl.models import build_model
    from lnl.training.pretrained import load_pretrained

    cfg = tiny_config(method="lnl", init_recipe=pretrain_recipe(tmp_path), init_from="baseline",
                      init_bias_head=keep).validate()
    assert cfg.init_config().default_run_id() == tiny_config(method="lnl", init_recipe=pretrain_recipe(tmp_path),
                                                             init_from="baseline").init_config().default_run_id()
    torch.manual_seed(0)
    saved, model = build_model(cfg.arch), build_model(cfg.arch)
    method = METHODS.get("lnl")(cfg, model, contextlib.nullcontext)
    fg = type(method.opt_fg)(list(saved.f.parameters()) + list(saved.g.parameters()), lr=0.01)
    start = {"run_id": "b", "state": {"model": saved.state_dict(), "optimizers": {"fg": fg.state_dict()}}}
    assert load_pretrained(model, method, start) == pytest.approx(0.01)
    same = {k: torch.equal(v, saved.state_dict()[k]) for k, v in model.state_dict().items() if "conv" in k}
    assert all(v for k, v in same.items() if not k.startswith("h.")) and "h.conv1.weight" in same
    assert all(v == keep for k, v in same.items() if k.startswith("h."))   # random inits differ
    with pytest.raises(ConfigError, match="init_bias_head"):
        tiny_config(method="lnl", init_bias_head=True).validate()


def test_a_checkpoint_from_another_device_keeps_this_optimizers_implementation():
    """torch's load_state_dict copies fused/foreach from the file; a GPU run's fused SGD (its CUDA graph
    needs it) loaded from a CPU checkpoint became the foreach SGD and failed at capture on an H200."""
    import torch

    from lnl.training.pretrained import load_optimizer_state

    params = [torch.nn.Parameter(torch.ones(3))]
    saved = torch.optim.SGD(params, lr=0.01, momentum=0.9, foreach=True)
    params[0].grad = torch.full((3,), 0.5)
    saved.step()
    here = torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1, momentum=0.9, foreach=False)
    load_optimizer_state(here, saved.state_dict())
    assert here.param_groups[0]["foreach"] is False and here.param_groups[0]["fused"] is None
    assert here.param_groups[0]["lr"] == 0.01  # the saved learning rate and momentum still load
    assert torch.equal(next(iter(here.state.values()))["momentum_buffer"], torch.full((3,), 0.5))


@pytest.mark.slow
def test_sigterm_records_interrupted_keeps_the_checkpoint_and_cleans_a_cut_write(tiny_config, tmp_path):
    common = ["--method", "baseline", "--epochs", "3", "--train-size", "2000", "--test-size", "500",
              "--val-eval-size", "500", "--batch-size", "50", "--progress", "False",
              "--cache-dir", tiny_config().cache_dir, "--runs-dir", str(tmp_path / "runs"), "--wandb-mode", "disabled",
              "--run-id", "termed"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    victim = subprocess.Popen([sys.executable, "scripts/train.py", *common], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    Lines(victim).until("epoch 1/3", timeout=240)  # printed once the epoch's checkpoint is saved
    assert (tmp_path / "runs" / "termed" / "checkpoint.pt.sha256").exists() and victim.poll() is None
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 128 + 15 and "Traceback" not in err
    record = json.loads((tmp_path / "runs" / "termed" / "record.json").read_text())
    assert record["status"] == "interrupted" and record["reason"].startswith("SIGTERM at 20")
    assert (tmp_path / "runs" / "termed" / "checkpoint.pt").is_file()
    cut = tmp_path / "runs" / "termed" / ".record.json.999.abcd.tmp"   # what a kill during a write leaves
    cut.write_text("{")
    resumed = subprocess.run([sys.executable, "scripts/train.py", *common, "--resume"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert not cut.exists()
    assert json.loads((tmp_path / "runs" / "termed" / "record.json").read_text())["status"] == "finished"
