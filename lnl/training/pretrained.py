"""Pretrained starts (``Config.init_from``): the run a start depends on, found by its run id, fetched from
W&B or trained first (once, under a lock, however many workers wait for it), then its final weights loaded
with the digest its record names checked first."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from lnl import artifacts, store
from lnl.config import Config, ConfigError
from lnl.methods import Method
from lnl.models import LNLNet
from lnl.records import RunResult, read_record, run_lock


def pretrained_start(cfg: Config, train: Callable[[Config], RunResult]) -> dict[str, Any]:
    """The final state of the run ``cfg`` starts from (``cfg.init_from``), training it first if needed.

    The pretraining run is :meth:`Config.init_config`, found by its deterministic run id in
    ``cfg.runs_dir``; a lock beside it makes concurrent workers (Optuna ``--n-jobs``, several
    ``wandb agent``s, ``run_sweep.py``) train it once and share it. ``train`` is the loop's own
    :func:`lnl.training.loop.train`, handed in so that the run store never imports the loop: this is the one
    place it trains a run. Returns ``{"run_id", "sha256", "state"}`` where ``state`` holds the model and
    optimizer state dicts.
    """
    pre = cfg.init_config()
    pre_id = pre.default_run_id()
    pre_dir = Path(pre.runs_dir) / pre_id
    with run_lock(Path(pre.runs_dir) / f".{pre_id}.pretrain.lock"):  # not the run's own lock, which train() takes
        record = read_record(pre_dir)
        if not (record and record.get("status") == "finished") and cfg.init_artifacts and \
                artifacts.fetch_pretrained(pre, pre_id) is not None:
            record = read_record(pre_dir)  # trained on another machine, logged to W&B
        if not (record and record.get("status") == "finished"):
            print(f"lnl: {cfg.method} starts from {pre_id} ({pre.method}, recipe {pre.recipe}); training it first",
                  flush=True)
            result = train(pre)
            if result.status != "finished":
                raise RuntimeError(f"pretraining run {pre_id} ended {result.status}: {result.reason}")
            record = read_record(pre_dir)
    saved = (record or {}).get("final_checkpoint") or {}
    path = store.final_checkpoint_path(pre_dir, record or {})
    if path is None and cfg.init_artifacts:
        path = artifacts.fetch_pretrained(pre, pre_id)  # another machine's baseline, through W&B
    if path is None:
        raise ConfigError("init_from", f"pretraining run {pre_id} is finished but its final checkpoint (SHA-256 "
                                       f"{str(saved.get('sha256'))[:12]}…) is neither in {pre_dir} nor in "
                                       f"{store.checkpoint_store(pre.runs_dir)}; move {pre_dir} aside to retrain it")
    try:  # digest checked before unpickling, weights only: a planted file runs nothing
        state = store.load_checkpoint(path, saved.get("sha256"))
    except store.CheckpointError as err:
        raise ConfigError("init_from", f"{err}; move {pre_dir} aside to retrain it") from None
    store.keep(path, saved["sha256"], pre.runs_dir)  # another run starts from it: the store keeps it, once
    return {"run_id": pre_id, "sha256": saved["sha256"], "state": state}


# How an optimizer runs belongs to the machine it runs on, not to the saved state: torch's load_state_dict
# takes every param-group key from the file, so a CPU run's checkpoint (fused=None) turned a GPU run's fused
# SGD, which its CUDA graph needs, into the foreach one, whose device-tensor learning rate cannot be captured
# (seen on an H200: LNL from a CPU-trained baseline failed at the first capture).
_OPTIMIZER_IMPL_KEYS = ("fused", "foreach", "capturable", "differentiable")


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``opt.load_state_dict(state)`` that keeps ``opt``'s own implementation flags (fused, foreach,
    capturable, differentiable): a checkpoint written on another device loads into this one."""
    flags = [{k: group[k] for k in _OPTIMIZER_IMPL_KEYS if k in group} for group in opt.param_groups]
    opt.load_state_dict(state)
    for group, own in zip(opt.param_groups, flags):
        group.update(own)


def same_optimizer_kind(opt: torch.optim.Optimizer, state: dict[str, Any]) -> bool:
    """Whether a saved optimizer state is of ``opt``'s kind: Adam's groups carry ``betas``, SGD's do not."""
    saved = state["param_groups"][0]
    return ("betas" in saved) == ("betas" in opt.param_groups[0])


def load_pretrained(model: LNLNet, method: Method, start: dict[str, Any]) -> float | None:
    """Load f and g and the f+g optimizer state (momentum buffers and learning rate) of ``start``; the bias
    heads start fresh, as the authors' do, unless ``init_bias_head`` starts them from the pretrained probe. Returns the restored learning rate, which the first
    epoch runs at: the authors build their schedulers before loading the optimizer state, so their
    first LNL epoch keeps the pretrained run's last learning rate and the restarted schedule applies
    from the second epoch on (official trainer.py, ``_set_optimizer`` then ``_load_model``).

    A run whose optimizer is of another kind than the pretrained run's (Adam for LfF and ReBias, as their
    official code, from the authors' SGD Baseline) takes the weights only: SGD's momentum buffers mean
    nothing to Adam. Its optimizer starts fresh at its own schedule, and None is returned."""
    try:
        keep_h = method.cfg.init_bias_head
        weights = {k: v for k, v in start["state"]["model"].items() if keep_h or not k.startswith("h.")}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if unexpected or any(keep_h or not k.startswith("h.") for k in missing):
            raise ValueError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        saved = start["state"]["optimizers"]["fg"]
        if not same_optimizer_kind(method.opt_fg, saved):
            return None
        load_optimizer_state(method.opt_fg, saved)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:  # shapes, keys, a foreign dict
        raise ConfigError("init_from", f"the final checkpoint of {start['run_id']} does not fit this network "
                                       f"({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
    return float(method.opt_fg.param_groups[0]["lr"])


def start_state(opened: Any, cfg: Config, model: LNLNet, method: Method) -> dict[str, Any]:
    """Where the run starts from (the record's ``init``): a pretrained start's weights loaded into
    ``model`` and ``method``, or what a resumed run had recorded; ``{}`` for a fresh start."""
    init: dict[str, Any] = (opened.checkpoint or {}).get("init") or {}
    if opened.start is not None:
        init = {"from_run": opened.start["run_id"], "sha256": opened.start["sha256"],
                "first_epoch_lr": load_pretrained(model, method, opened.start)}
    if init:
        for group in method.opt_fg.param_groups:
            group["initial_lr"] = cfg.lr  # the restarted schedule's base, not the pretrained run's
    return init
