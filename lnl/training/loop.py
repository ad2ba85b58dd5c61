"""The training loop: ``train(config) -> RunResult``, the spine every entry point calls.

One run, top to bottom:

1. :func:`train` checks the config and prepares what a bad input would break (cores, device, data);
2. :func:`setup` builds network and method (:mod:`lnl.training.build`), restores a resumed or pretrained
   state and opens the record and the tracker (:mod:`lnl.training.run_folder`);
3. :func:`fit` runs the epochs: :func:`train_one_epoch`, :func:`evaluate_splits` on val_biased,
   val_unbiased and the unbiased test set, the same metrics dict to the record and to W&B, a checkpoint;
4. it stops early as ``diverged`` when a loss is not finite, or with the status an ``on_epoch`` callback
   asks for (:class:`StopRun`, e.g. an Optuna prune); :func:`lnl.training.run_folder.closing` ends the run.

Speed code (:mod:`lnl.accel`) is reached here only: the cores' share, the layout and the training step.
With the fast path off, the loop is plain PyTorch. Batch order depends only on (seed, epoch) and the
checkpoint holds every other piece of state, so ``resume=True`` after a kill reaches the same numbers.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from lnl import accel
from lnl.config import Config, ConfigError
from lnl.data.tensors import DeviceData
from lnl.methods import METHODS
from lnl.records import EPOCH_KEYS, RunResult
from lnl.selection import keep_selectable
from lnl.training import run_folder
from lnl.training.build import build_training, epoch_generator, load_data, lr_lambda
from lnl.training.device import resolve_device, resolve_precision
from lnl.training.evaluation import SCORE_KEYS, confusion_matrix, epoch_line, evaluate, scored_epoch, summary
from lnl.training.pretrained import start_state
from lnl.training.run_folder import Opened, Run

EpochCallback = Callable[[int, dict[str, Any]], None]


class StopRun(Exception):
    """Raised by an ``on_epoch`` callback to end the run early with ``status`` (e.g. 'pruned')."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or status)
        self.status, self.reason = status, reason


def train(config: Config, *, on_epoch: EpochCallback | None = None, tracker: Any = None) -> RunResult:
    """Train one run as ``config`` says and return its :class:`RunResult` (see module doc).

    Raises :class:`ConfigError` (one line, before any run folder is touched) for inputs that can't
    work: an unavailable device, unreadable data or palette files, a finished run without
    ``resume``/``overwrite``, a run another process is training, a checkpoint of another configuration.
    """
    cfg = config.validate()
    wall_start = time.perf_counter()
    run_id = cfg.run_id or cfg.default_run_id()
    run_dir = Path(cfg.runs_dir) / run_id
    done = run_folder.already_done(cfg, run_dir)
    if done is not None:
        return done
    # Everything that can fail on a bad input (device, data files, palette, the pretrained start) is
    # done before the run folder is touched, so a failing re-run never costs an existing record.
    inputs = _prepare_inputs(cfg)
    with run_folder.claim(cfg, run_id, run_dir, train) as opened:
        if opened.done is not None:
            return opened.done
        run = setup(cfg, run_id, run_dir, inputs, opened, tracker=tracker, wall_start=wall_start)
        with run_folder.closing(run) as outcome:
            outcome.status, outcome.reason = fit(run, on_epoch)
        return RunResult.from_record(run.record, run_dir)


def _prepare_inputs(cfg: Config) -> dict[str, Any]:
    """This worker's share of the cores, the device and the data on it: everything a bad input breaks."""
    share = accel.share_cores(cfg.threads)
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    data = DeviceData(load_data(cfg), device, gray=METHODS.get(cfg.method).input_kind == "gray",
                      train_size=cfg.train_size, test_size=cfg.test_size,
                      val_eval_size=cfg.val_eval_size, bias_ignore=cfg.bias_ignore)
    if len(data["train"]) < 2 or len(data["val_biased"]) < 1:
        raise ConfigError("train_size" if len(data["train"]) < 2 else "val_size",
                          f"leaves {len(data['train'])} training and {len(data['val_biased'])} validation "
                          "images; training needs at least 2 and validation at least 1")
    return {"share": share, "device": device, "data": data, "data_s": time.perf_counter() - t0}


def setup(cfg: Config, run_id: str, run_dir: Path, inputs: dict[str, Any], opened: Opened, *, tracker: Any,
          wall_start: float) -> Run:
    """The :class:`Run` of ``cfg``: network, method, schedules, the state restored from a checkpoint (a
    resume) or a pretrained start, the record (written once) and the tracker."""
    device, data = inputs["device"], inputs["data"]
    n_train = len(data["train"])
    cfg, speed = accel.accelerate(cfg, device, build_training, resolve_precision(cfg.precision, device), n_train)
    precision, autocast, model, method = build_training(cfg, device)
    method.prepare(data["train"])  # per-sample state, sized to the training split (a no-op for most methods)
    steps_per_epoch = max(1, n_train // cfg.batch_size + (1 if n_train % cfg.batch_size > 1 else 0))
    init = start_state(opened, cfg, model, method)
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(cfg, steps_per_epoch, init.get("first_epoch_lr") if name == "fg" else None))
        for name, opt in method.optimizers.items()}
    restored = run_folder.restore(opened.checkpoint, model, method, schedulers, run_id)
    record = run_folder.new_record(cfg, run_id, inputs, opened, restored, precision=precision, speed=speed,
                                   init=init)
    run = Run(cfg, run_id, run_dir, device, data, model, method, autocast, schedulers, steps_per_epoch, record,
              start_epoch=restored["epoch"], wall_start=wall_start, prior_s=float(record["timings"].get("total_s", 0)))
    if tracker is None:
        from lnl.tracking import open_tracker  # W&B is optional; imported lazily

        tracker = open_tracker(cfg, run_id, record, resume_id=restored["wandb"].get("id"))
    run.tracker = tracker
    record["wandb"] = tracker.info
    run.save_record()
    if run.start_epoch == 0:
        tracker.log_samples(data)
    return run


def fit(run: Run, on_epoch: EpochCallback | None) -> tuple[str, str | None]:
    """Epochs from ``run.start_epoch``: train, evaluate, log, save; the run's final status and reason."""
    cfg, record = run.cfg, run.record
    run.model.train()
    step = accel.training_step(run.method, run.device, cfg)
    for epoch in range(run.start_epoch, cfg.epochs):
        lr = run.method.opt_fg.param_groups[0]["lr"]  # the learning rate this epoch starts with
        means, train_s = train_one_epoch(run, step, epoch)
        scores, eval_s = evaluate_splits(run) if scored_epoch(cfg, epoch) else (dict.fromkeys(SCORE_KEYS), 0.0)
        metrics = {"epoch": epoch + 1, "lr": lr, **{k: means.get(k) for k in ("train/ce", "train/entropy",
                                                                              "bias/loss")},
                   **scores, "unlearning": int(run.method.unlearns and epoch >= cfg.warmup_epochs),
                   "throughput": len(run.data["train"]) / train_s if means else 0,
                   "time/epoch_s": round(train_s, 3), "time/eval_s": round(eval_s, 3)}
        record["epochs"].append({k: metrics[k] for k in EPOCH_KEYS})
        if scores["test/pred"] is not None:
            record["confusion"][str(epoch + 1)] = confusion_matrix(run.data["test"].y.cpu().numpy(),
                                                                   scores["test/pred"])
        # only the matrices a selection rule can still pick: the rest were half the store's bytes
        record["confusion"] = keep_selectable(record["confusion"], record["epochs"])
        record["timings"]["epoch_s"].append(round(train_s, 3))
        record["timings"]["eval_s"].append(round(eval_s, 3))
        metrics = record["epochs"][-1]
        run.tracker.log(metrics)
        diverged = [k for k, v in means.items() if not math.isfinite(v)]
        if diverged:
            print(epoch_line(cfg, metrics), flush=True)
            return "diverged", f"non-finite {', '.join(diverged)} in epoch {epoch + 1}"
        record["final"] = summary(record["epochs"], record["confusion"], "running")
        run.save_record()
        if epoch + 1 < cfg.epochs:
            run_folder.save_checkpoint(run, epoch + 1)
        print(epoch_line(cfg, metrics), flush=True)  # after the save: an epoch printed is an epoch kept
        if on_epoch is not None:
            try:
                on_epoch(epoch + 1, metrics)
            except StopRun as stop:
                return stop.status, stop.reason or None
    return "finished", None


def train_one_epoch(run: Run, step: Callable[..., dict[str, torch.Tensor]], epoch: int) -> tuple[dict, float]:
    """One pass over the training split in the (seed, epoch) order; the mean of each step statistic
    and the wall time. The schedulers step per batch."""
    from tqdm import tqdm

    cfg, t0 = run.cfg, time.perf_counter()
    sums: dict[str, torch.Tensor] = {}
    n_steps = 0
    bar = tqdm(run.data.batches("train", cfg.batch_size, epoch_generator(cfg.seed, epoch),
                                with_index=run.method.needs_index),
               total=run.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
               disable=None if cfg.progress else True, dynamic_ncols=True)
    for x, y, bias, *index in bar:  # the images' positions, for a method that keeps per-sample state
        for key, value in step(x, y, bias, epoch, *index).items():
            sums[key] = sums[key] + value.float() if key in sums else value.float()
        n_steps += 1
        for sched in run.schedulers.values():
            sched.step()
        if n_steps % 50 == 0 and bar.disable is False:
            bar.set_postfix(ce=f"{(sums['train/ce'] / n_steps).item():.3f}")
    bar.close()
    return {k: (v / max(n_steps, 1)).item() for k, v in sums.items()}, time.perf_counter() - t0


def evaluate_splits(run: Run) -> tuple[dict[str, Any], float]:
    """Accuracy on val_biased, val_unbiased and the unbiased test set, and the bias head's pixel
    accuracy on the validation splits (when the method trains it); ``test/pred`` holds the test
    predictions. Also the wall time."""
    t0, heads = time.perf_counter(), run.method.trains_bias_head
    vb = evaluate(run.model, run.data, "val_biased", run.autocast, bias_head=heads)
    vu = evaluate(run.model, run.data, "val_unbiased", run.autocast, bias_head=heads)
    te = evaluate(run.model, run.data, "test", run.autocast, bias_head=False)
    return {"bias/acc": vu["bias_acc"], "bias/acc_biased": vb["bias_acc"], "val_biased/acc": vb["acc"],
            "val_unbiased/acc": vu["acc"], "test/acc": te["acc"], "test/pred": te["pred"]}, time.perf_counter() - t0
