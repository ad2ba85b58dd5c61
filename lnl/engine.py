"""The training core: ``train(config) -> RunResult``.

Every entry point (CLI, ``wandb agent``, Optuna trials, the benchmark, tests) calls
:func:`train`. One run:

1. resolves device and precision, seeds torch from ``config.seed``;
2. loads Colored MNIST (cached) and puts it on the device;
3. trains ``config.epochs`` epochs of the chosen method; after each epoch it
   evaluates val_biased, val_unbiased and the unbiased test set, writes the run
   record and a checkpoint (both atomically) and logs the same metrics dict to
   the tracker (W&B);
4. stops early with status ``diverged`` when a loss is not finite, or with the
   status an ``on_epoch`` callback asks for (``StopRun``, e.g. an Optuna prune).

Batch order depends only on (seed, epoch), and the checkpoint holds every other
piece of state, so ``resume=True`` after a kill continues to the same final
numbers as an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import pickle
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lnl import fast_path, kernels
from lnl.config import Config, ConfigError
from lnl.workers import WorkerEnvError, apply_share
from lnl.data import colored
from lnl.data.dataset import ColoredMnist, load_generated, load_official
from lnl.cuda_graphs import graphed_step
from lnl.data.tensors import DeviceData
from lnl.losses import bias_correct
from lnl.methods import METHODS, Method
from lnl.models import LNLNet, build_model
from lnl import artifacts, store
from lnl.records import (CHECKPOINT, EPOCH_KEYS, FINAL_CHECKPOINT, RECORD, SCHEMA, RunResult, git_commit, read_record,
                         write_bytes_atomic, write_json_atomic, write_text_atomic)

EpochCallback = Callable[[int, dict[str, Any]], None]


class StopRun(Exception):
    """Raised by an ``on_epoch`` callback to end the run early with ``status`` (e.g. 'pruned')."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or status)
        self.status, self.reason = status, reason


# ---------------------------------------------------------------------------------------
# device and precision
def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"{spec!r} requested but CUDA is not available on this machine")
    if spec.startswith("cuda:") and int(spec[5:]) >= torch.cuda.device_count():
        raise ConfigError("device", f"{spec!r} requested but this machine has {torch.cuda.device_count()} GPU(s)")
    return torch.device(spec)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16 (where bf16 convolutions are fast)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def resolve_precision(spec: str, device: torch.device) -> str:
    if spec != "auto":
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def autocast_factory(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    if precision == "bf16":
        # No weight-cast cache on CUDA: a cache is unsafe under CUDA-graph capture (lnl.cuda_graphs),
        # and each weight is cast once per autocast region anyway.
        cache = device.type != "cuda"
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext


def cpu_kernels_status(cfg: Config, device: torch.device) -> str:
    """Whether this run uses the fused CPU kernels (lnl.kernels), for the run record."""
    if device.type != "cpu" or not cfg.cpu_kernels or cfg.compile:
        return "off"
    return kernels.describe()


def prepare_model(cfg: Config, device: torch.device) -> LNLNet:
    """The network of ``cfg`` on ``device``, in the memory format and with the kernels ``cfg`` asks for."""
    model = build_model(cfg.arch, cfg.width, cfg.g_depth, cfg.head_width, cfg.head_bn_init).to(device)
    if cfg.channels_last:
        # f's input batch norm stays NCHW (see models.FeatureExtractor); the rest goes channels-last.
        for part in (model.f.conv1, model.f.conv2, model.g, model.h):
            part.to(memory_format=torch.channels_last)
    model.use_fused_kernels(cfg.cpu_kernels and not cfg.compile)
    return model


# ---------------------------------------------------------------------------------------
# data
def load_data(cfg: Config) -> ColoredMnist:
    """The run's Colored MNIST; unreadable files (the authors' .npy, a palette CSV) are a ConfigError."""
    if cfg.data_source == "official":
        try:
            return load_official(cfg.data_path, val_size=cfg.val_size, data_seed=cfg.data_seed)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError) as err:
            raise ConfigError("data_path", f"{cfg.data_path}: not a readable file in the authors' format "
                                           f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    try:
        colored.load_palette(cfg.palette)
    except ValueError as err:
        raise ConfigError("palette", str(err)) from None
    return load_generated(cfg.color_var, cfg.palette, cfg.data_seed, cfg.val_size,
                          cache_dir=cfg.cache_dir, data_dir=cfg.data_dir, strokes=cfg.strokes,
                          color_noise=cfg.color_noise, unbiased_colors=cfg.unbiased_colors,
                          color_bounds=cfg.color_bounds)


# ---------------------------------------------------------------------------------------
# evaluation
@torch.no_grad()
def evaluate(model: LNLNet, data: DeviceData, split: str, autocast: Callable[[], Any],
             batch_size: int = 500, bias_head: bool = True) -> dict[str, Any]:
    """Accuracy, predictions and (if ``bias_head``) the bias head's pixel accuracy on one split."""
    was_training = model.training
    model.eval()
    preds, correct_bias, counted_bias = [], 0, 0
    with autocast():
        for x, _, bias in data.batches(split, batch_size):
            feat = model.f(x)
            preds.append(model.g(feat).argmax(dim=1))
            if bias_head:
                c, n = bias_correct(model.h(feat), bias)
                correct_bias, counted_bias = correct_bias + c, counted_bias + n
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=data.device)
    labels = data[split].y
    acc = (pred == labels).float().mean().item() if len(labels) else float("nan")
    bias_acc = (correct_bias / max(int(counted_bias), 1)) if counted_bias else float("nan")
    return {"acc": acc, "pred": pred.cpu().numpy(), "bias_acc": float(bias_acc)}


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, n: int = 10) -> list[list[int]]:
    """Rows: true class, columns: predicted class."""
    return np.bincount(labels * n + pred, minlength=n * n).reshape(n, n).tolist()


# ---------------------------------------------------------------------------------------
# learning-rate schedule
def _lr_lambda(cfg: Config, steps_per_epoch: int, first_epoch_lr: float | None) -> Callable[[int], float]:
    """The LambdaLR multiplier: :func:`lr_factor`, except that a run started from a pretrained
    optimizer state runs its first epoch at the restored learning rate (see :func:`load_pretrained`)."""
    if first_epoch_lr is None:
        return lambda step: lr_factor(cfg, step, steps_per_epoch)
    first = first_epoch_lr / cfg.lr
    return lambda step: first if step < steps_per_epoch else lr_factor(cfg, step, steps_per_epoch)


def lr_factor(cfg: Config, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at global ``step`` (0-based)."""
    if cfg.lr_schedule == "step":
        return cfg.lr_gamma ** ((step // max(steps_per_epoch, 1)) // cfg.lr_step_epochs)
    if cfg.lr_schedule == "cosine":
        total = max(cfg.epochs * steps_per_epoch, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return 1.0


# ---------------------------------------------------------------------------------------
def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The batch order's generator. Wrapped to 64 bits: every seed Config accepts ([0, 2^63)) is valid, and
    the seeds runs have used so far (< 1.8e13, where the product fits) keep their batch orders."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2 ** 64)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> str:
    """Write ``state`` atomically; returns the file's SHA-256.

    Serialized in memory first: ``torch.save`` to a file name records that name (here it would be the
    temporary file's, with the process id) as the folder of every entry in the zip, so the same weights
    saved by two processes got two SHA-256s. From a buffer the folder is always ``archive/``: equal states,
    equal bytes, equal checksums (what ``init_from``'s record compares)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    write_bytes_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def _checksum_path(path: Path) -> Path:
    """Where the SHA-256 of an epoch checkpoint is written (after the checkpoint, so it marks it complete)."""
    return path.with_name(path.name + ".sha256")


@contextlib.contextmanager
def _file_lock(path: Path, wait: bool = True, what: str = ""):
    """An exclusive advisory lock (POSIX ``flock``, released by the kernel when its process dies).

    ``wait=True``: block until it is free (workers sharing one pretraining run); ``wait=False``:
    a clear error if another process holds it (two processes must not train one run folder).
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as stream:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ConfigError("run_id", f"{what or path} is being trained by another process right now") from None
        try:
            yield
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------
# pretrained start (Config.init_from)
def pretrained_start(cfg: Config) -> dict[str, Any]:
    """The final state of the run ``cfg`` starts from (``cfg.init_from``), training it first if needed.

    The pretraining run is :meth:`Config.init_config`, found by its deterministic run id in
    ``cfg.runs_dir``; a lock beside it makes concurrent workers (Optuna ``--n-jobs``, several
    ``wandb agent``s, ``run_sweep.py``) train it once and share it. Returns ``{"run_id", "sha256",
    "state"}`` where ``state`` holds the model and optimizer state dicts.
    """
    pre = cfg.init_config()
    pre_id = pre.default_run_id()
    pre_dir = Path(pre.runs_dir) / pre_id
    with _file_lock(Path(pre.runs_dir) / f".{pre_id}.pretrain.lock"):  # not the run's own lock, which train() takes
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


def load_pretrained(model: LNLNet, method: Method, start: dict[str, Any]) -> float:
    """Load f and g (not the bias heads, which start fresh) and the f+g optimizer state (momentum
    buffers and learning rate) of ``start``. Returns the restored learning rate, which the first
    epoch runs at: the authors build their schedulers before loading the optimizer state, so their
    first LNL epoch keeps the pretrained run's last learning rate and the restarted schedule applies
    from the second epoch on (official trainer.py, ``_set_optimizer`` then ``_load_model``)."""
    try:
        weights = {k: v for k, v in start["state"]["model"].items() if not k.startswith("h.")}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if unexpected or any(not k.startswith("h.") for k in missing):
            raise ValueError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        load_optimizer_state(method.opt_fg, start["state"]["optimizers"]["fg"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:  # shapes, keys, a foreign dict
        raise ConfigError("init_from", f"the final checkpoint of {start['run_id']} does not fit this network "
                                       f"({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
    return float(method.opt_fg.param_groups[0]["lr"])


def _summary(epochs: list[dict[str, Any]], confusion: dict[str, Any], status: str) -> dict[str, Any]:
    """Final and best values: the record's ``final`` and the W&B run summary."""
    if not epochs:
        return {}
    last = epochs[-1]
    final = {k: v for k, v in last.items() if isinstance(v, (int, float)) and not k.startswith("time/")}
    final["epochs_completed"] = len(epochs)
    for key in ("val_biased/acc", "val_unbiased/acc"):
        values = [(e.get(key), e["epoch"]) for e in epochs if e.get(key) is not None and math.isfinite(e[key])]
        if values:
            best, epoch = max(values, key=lambda t: (t[0], -t[1]))  # first epoch reaching the max
            final[f"best/{key}"] = best
            final[f"best/{key.split('/')[0]}/epoch"] = epoch
    matrix = confusion.get(str(last["epoch"]))
    if matrix is not None:
        final["test/confusion"] = matrix
        cm = np.asarray(matrix, dtype=np.float64)
        final["test/per_class_acc"] = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).round(6).tolist()
    return final


def _check_same_identity(record: dict[str, Any], cfg: Config, run_dir: Path) -> None:
    """A finished run returned by ``resume`` must be the run ``cfg`` asks for: same identity (records
    written before the identity was recorded are taken as they are)."""
    identity = record.get("identity")
    if identity is not None and identity != cfg.identity_hash():
        raise ConfigError("resume", f"run {record.get('run_id')} in {run_dir} finished with another configuration "
                                    "(identity differs); resume with the original values or choose another "
                                    "--run-id")


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
    previous = read_record(run_dir)
    if cfg.resume and previous and previous.get("status") in ("finished", "diverged"):
        _check_same_identity(previous, cfg, run_dir)
        print(f"lnl: run {run_id} already {previous['status']}; nothing to do ({run_dir / RECORD})")
        return RunResult.from_record(previous, run_dir)
    # Everything that can fail on a bad input (device, data files, palette, the pretrained start) is
    # done before the run folder is touched, so a failing re-run never costs an existing record.
    inputs = _prepare_inputs(cfg)
    with _file_lock(Path(cfg.runs_dir) / f".{run_id}.lock", wait=False, what=f"run {run_id}"):
        previous = read_record(run_dir)  # again, under the lock
        if cfg.resume and previous and previous.get("status") in ("finished", "diverged"):
            _check_same_identity(previous, cfg, run_dir)
            return RunResult.from_record(previous, run_dir)
        for stale in run_dir.glob(".*.tmp"):  # a write a signal cut short (lnl.records.write_bytes_atomic)
            stale.unlink(missing_ok=True)
        checkpoint = _load_checkpoint(run_dir, cfg) if cfg.resume else None
        start = pretrained_start(cfg) if cfg.init_from and checkpoint is None else None
        if checkpoint is None and run_dir.exists():
            if previous and previous.get("status") == "finished" and not cfg.overwrite:
                raise ConfigError("overwrite", f"run {run_id} already finished ({run_dir / RECORD}); --resume "
                                               "returns it, --overwrite trains it again")
            shutil.rmtree(run_dir)  # an unfinished (or explicitly overwritten) run starts over
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            run = setup(cfg, run_id, run_dir, inputs, previous=previous, checkpoint=checkpoint, start=start,
                        tracker=tracker, wall_start=wall_start)
        except BaseException:
            if checkpoint is None and not (run_dir / RECORD).exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # a start that failed leaves no empty run folder
            raise
        status, reason = "finished", None
        try:
            with _signals_interrupt():
                status, reason = _loop(run, on_epoch)
        except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (a scheduler, a deadline): resumable
            status = "interrupted"
            reason = f"{err.args[0] if err.args else 'SIGINT'} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
            raise
        except BaseException as err:  # record why the run died before re-raising
            status, reason = "failed", f"{type(err).__name__}: {err}"
            raise
        finally:
            finish(run, status, reason)
        return RunResult.from_record(run.record, run_dir)


@contextlib.contextmanager
def _signals_interrupt():
    """While a run trains, SIGTERM interrupts it like Ctrl-C (``KeyboardInterrupt("SIGTERM")``), so its record
    says ``interrupted`` with the signal and the time, and its last epoch checkpoint stays for ``--resume``.
    Outside the main thread (where Python cannot set handlers) nothing changes."""
    import signal

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _load_checkpoint(run_dir: Path, cfg: Config) -> dict[str, Any] | None:
    """The run's last epoch checkpoint, if it is intact and belongs to this configuration.

    A checkpoint whose bytes do not match the checksum written beside it (a kill during a copy, a
    full disk) is set aside with a warning and the run starts over; one written for another
    configuration under the same run id is a clear error (resuming it would train the old values
    while the record claims the new ones).
    """
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return None
    try:
        expected = _checksum_path(path).read_text().strip() if _checksum_path(path).is_file() else None
        checkpoint = store.load_checkpoint(path, expected)
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint: start over, loudly
        print(f"lnl: warning: checkpoint {path} is corrupt ({type(err).__name__}: {err}); "
              "the run starts over", file=sys.stderr, flush=True)
        bad = path.with_name(f"{path.name}.corrupt")
        os.replace(path, bad)
        return None
    identity = checkpoint.get("identity")
    if identity is not None and identity != cfg.identity_hash():
        raise ConfigError("resume", f"the checkpoint in {run_dir} was written by another configuration "
                                    "(identity differs); resume with the original values or choose another "
                                    "--run-id")
    return checkpoint


def _prepare_inputs(cfg: Config) -> dict[str, Any]:
    """This worker's share of the cores, the device and the data on it: everything a bad input breaks."""
    try:
        share = apply_share(cfg.threads)  # this worker's share of the cores (lnl.workers)
    except WorkerEnvError as err:
        raise ConfigError(None, str(err)) from None
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


@dataclass
class Run:
    """One run's state between :func:`setup` and :func:`finish`: what the loop reads and updates.
    ``record`` holds the epochs, confusion matrices and timings, so saving it saves them."""

    cfg: Config
    run_id: str
    run_dir: Path
    device: torch.device
    data: DeviceData
    model: LNLNet
    method: Method
    autocast: Callable[[], Any]
    schedulers: dict[str, Any]
    steps_per_epoch: int
    record: dict[str, Any]
    tracker: Any = None
    start_epoch: int = 0
    wall_start: float = 0.0
    prior_s: float = 0.0  # wall time spent before a resume

    def save_record(self) -> None:
        self.record["timings"]["total_s"] = round(self.prior_s + time.perf_counter() - self.wall_start, 3)
        self.record["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json_atomic(self.run_dir / RECORD, self.record)


def build_training(cfg: Config, device: torch.device) -> tuple[str, Callable[[], Any], LNLNet, Method]:
    """Precision, autocast, network and method of ``cfg`` on ``device``, seeded with ``cfg.seed``
    (the training core's setup, shared by :func:`setup` and :mod:`lnl.bench`)."""
    precision = resolve_precision(cfg.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
        # 'fp32' means fp32: cuDNN would otherwise run fp32 convolutions as TF32 (10-bit mantissa) on
        # Ampere and later GPUs, which the authors' fp32 protocol never saw.
        # (torch's default for matmuls is already fp32; bf16 runs keep cuDNN's default.)
        torch.backends.cudnn.allow_tf32 = precision != "fp32"
        if precision == "fp32":
            torch.backends.cuda.matmul.allow_tf32 = False
    autocast = autocast_factory(device, precision)
    torch.manual_seed(cfg.seed)
    model = prepare_model(cfg, device)
    return precision, autocast, model, METHODS.get(cfg.method)(cfg, model, autocast, compile=cfg.compile)


def setup(cfg: Config, run_id: str, run_dir: Path, inputs: dict[str, Any], *, previous: dict[str, Any] | None,
          checkpoint: dict[str, Any] | None, start: dict[str, Any] | None, tracker: Any,
          wall_start: float) -> Run:
    """The :class:`Run` of ``cfg``: network, method, schedules, the state restored from ``checkpoint``
    (a resume) or ``start`` (a pretrained start), the record (written once) and the tracker."""
    device, data = inputs["device"], inputs["data"]
    # The layout this CPU runs fastest (lnl.fast_path: timed once per machine, cached); same numbers.
    cfg, layout = fast_path.choose(cfg, device, build_training, resolve_precision(cfg.precision, device),
                                   n_train=len(data["train"]))
    precision, autocast, model, method = build_training(cfg, device)
    n_train = len(data["train"])
    steps_per_epoch = max(1, n_train // cfg.batch_size + (1 if n_train % cfg.batch_size > 1 else 0))
    init: dict[str, Any] = (checkpoint or {}).get("init") or {}
    if start is not None:
        init = {"from_run": start["run_id"], "sha256": start["sha256"],
                "first_epoch_lr": load_pretrained(model, method, start)}
    if init:
        for group in method.opt_fg.param_groups:
            group["initial_lr"] = cfg.lr  # the restarted schedule's base, not the pretrained run's
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(cfg, steps_per_epoch, init.get("first_epoch_lr") if name == "fg" else None))
        for name, opt in method.optimizers.items()}
    restored = _restore(checkpoint, model, method, schedulers, run_id)
    timings = {"data_s": round(inputs["data_s"], 3), "epoch_s": [], "eval_s": [], **restored["timings"]}
    record: dict[str, Any] = {
        "schema": SCHEMA, "run_id": run_id, "status": "running", "reason": None,
        "config": cfg.to_dict(), "identity": cfg.identity_hash(),  # what a resume must match
        "epochs": restored["epochs"], "confusion": restored["confusion"], "final": {},
        "timings": timings, "git_commit": git_commit(), "host": platform.node(),
        "env": {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
                "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
                or platform.machine(), "precision": precision, "threads": torch.get_num_threads(),
                "workers": inputs["share"], "cpu_kernels": cpu_kernels_status(cfg, device), "fast_path": layout},
        "data": {"n_train": n_train, "n_val": len(data["val_biased"]), "n_test": len(data["test"])},
        "created_at": ((previous or {}).get("created_at") if checkpoint is not None else None)
        or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wandb": restored["wandb"], "init": init or None,
    }
    run = Run(cfg, run_id, run_dir, device, data, model, method, autocast, schedulers, steps_per_epoch, record,
              start_epoch=restored["epoch"], wall_start=wall_start, prior_s=float(timings.get("total_s", 0.0)))
    if tracker is None:
        from lnl.tracking import open_tracker  # W&B is optional; imported lazily

        tracker = open_tracker(cfg, run_id, record, resume_id=restored["wandb"].get("id"))
    run.tracker = tracker
    record["wandb"] = tracker.info
    run.save_record()
    if run.start_epoch == 0:
        tracker.log_samples(data)
    return run


def _restore(checkpoint: dict[str, Any] | None, model: LNLNet, method: Method, schedulers: dict[str, Any],
             run_id: str) -> dict[str, Any]:
    """Load a resumed run's weights, optimizer, scheduler and RNG state; what it had recorded so far."""
    if checkpoint is None:
        return {"epoch": 0, "epochs": [], "confusion": {}, "timings": {}, "wandb": {}}
    model.load_state_dict(checkpoint["model"])
    for name, opt in method.optimizers.items():
        load_optimizer_state(opt, checkpoint["optimizers"][name])
        schedulers[name].load_state_dict(checkpoint["schedulers"][name])
    torch.set_rng_state(checkpoint["torch_rng"])
    print(f"lnl: resuming {run_id} after epoch {checkpoint['epoch']}")
    return {"epoch": checkpoint["epoch"], "epochs": checkpoint["epochs"], "confusion": checkpoint["confusion"],
            "timings": checkpoint["timings"], "wandb": checkpoint.get("wandb", {})}


def _loop(run: Run, on_epoch: EpochCallback | None) -> tuple[str, str | None]:
    """Epochs from ``run.start_epoch``: train, evaluate, log, save; the run's final status and reason."""
    cfg, record = run.cfg, run.record
    run.model.train()
    step = graphed_step(run.method, run.device, cfg.batch_size, cfg.cuda_graphs and not cfg.compile)
    for epoch in range(run.start_epoch, cfg.epochs):
        lr = run.method.opt_fg.param_groups[0]["lr"]  # the learning rate this epoch starts with
        means, train_s = train_one_epoch(run, step, epoch)
        scores, eval_s = evaluate_splits(run)
        metrics = {"epoch": epoch + 1, "lr": lr, **{k: means.get(k) for k in ("train/ce", "train/entropy",
                                                                              "bias/loss")},
                   **scores, "unlearning": int(run.method.unlearns and epoch >= cfg.warmup_epochs),
                   "throughput": len(run.data["train"]) / train_s if means else 0,
                   "time/epoch_s": round(train_s, 3), "time/eval_s": round(eval_s, 3)}
        record["epochs"].append({k: metrics[k] for k in EPOCH_KEYS})
        record["confusion"][str(epoch + 1)] = confusion_matrix(run.data["test"].y.cpu().numpy(),
                                                               scores.pop("test/pred"))
        record["timings"]["epoch_s"].append(round(train_s, 3))
        record["timings"]["eval_s"].append(round(eval_s, 3))
        metrics = record["epochs"][-1]
        run.tracker.log(metrics)
        print(_epoch_line(cfg, metrics), flush=True)
        diverged = [k for k, v in means.items() if not math.isfinite(v)]
        if diverged:
            return "diverged", f"non-finite {', '.join(diverged)} in epoch {epoch + 1}"
        record["final"] = _summary(record["epochs"], record["confusion"], "running")
        run.save_record()
        if epoch + 1 < cfg.epochs:
            save_checkpoint(run, epoch + 1)
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
    bar = tqdm(run.data.batches("train", cfg.batch_size, _epoch_generator(cfg.seed, epoch)),
               total=run.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
               disable=None if cfg.progress else True, dynamic_ncols=True)
    for x, y, bias in bar:
        for key, value in step(x, y, bias, epoch).items():
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


def save_checkpoint(run: Run, epochs_done: int) -> None:
    """The resumable state after ``epochs_done`` epochs, atomically, then its checksum beside it."""
    path = run.run_dir / CHECKPOINT
    digest = _save_checkpoint(path, {
        "identity": run.cfg.identity_hash(), "epoch": epochs_done, "model": run.model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in run.method.optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in run.schedulers.items()},
        "epochs": run.record["epochs"], "confusion": run.record["confusion"],
        "timings": dict(run.record["timings"]), "torch_rng": torch.get_rng_state(), "wandb": run.tracker.info,
        "init": run.record.get("init")})
    write_text_atomic(_checksum_path(path), digest + "\n")


def finish(run: Run, status: str, reason: str | None) -> None:
    """Close the run: status, summary, the final weights of a finished run (for ``init_from``), the
    tracker; the record saved; the epoch checkpoint removed unless the run failed (it resumes)."""
    record = run.record
    record["status"], record["reason"] = status, reason
    record["final"] = _summary(record["epochs"], record["confusion"], status)
    if status == "finished":
        try:
            digest = _save_checkpoint(run.run_dir / FINAL_CHECKPOINT, {
                "model": run.model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in run.method.optimizers.items()}})
        except OSError as err:  # a full disk: the record says why, and --resume trains the run again
            record["status"], record["reason"] = "failed", f"OSError writing {FINAL_CHECKPOINT}: {err}"
            run.save_record()
            raise
        record["final_checkpoint"] = {"file": FINAL_CHECKPOINT, "sha256": digest}
    if run.tracker is not None:
        if status == "finished" and hasattr(run.tracker, "log_checkpoint"):
            run.tracker.log_checkpoint(record, run.run_dir / FINAL_CHECKPOINT)  # a W&B Artifact
        run.tracker.finish(record)
        record["wandb"] = run.tracker.info
    run.save_record()
    if status not in ("failed", "stopped", "interrupted"):  # those resume from their checkpoint
        (run.run_dir / CHECKPOINT).unlink(missing_ok=True)
        _checksum_path(run.run_dir / CHECKPOINT).unlink(missing_ok=True)
    acc = record["final"].get("test/acc")
    acc_text = f"{acc:.4f}" if isinstance(acc, float) else "n/a"
    print(f"lnl: {run.run_id} {status}{f' ({reason})' if reason else ''}: unbiased test accuracy {acc_text}; "
          f"record {run.run_dir / RECORD}", flush=True)


def _epoch_line(cfg: Config, m: dict[str, Any]) -> str:
    def fmt(key: str, digits: int = 4) -> str:
        v = m.get(key)
        return f"{v:.{digits}f}" if isinstance(v, float) else "-"

    return (f"epoch {m['epoch']}/{cfg.epochs}  ce {fmt('train/ce')}  entropy {fmt('train/entropy', 3)}  "
            f"bias_loss {fmt('bias/loss', 3)}  bias_acc {fmt('bias/acc', 3)}  val_biased {fmt('val_biased/acc')}  "
            f"val_unbiased {fmt('val_unbiased/acc')}  test {fmt('test/acc')}  "
            f"({m['time/epoch_s']:.1f}s, {m['throughput']:.0f} img/s)")
