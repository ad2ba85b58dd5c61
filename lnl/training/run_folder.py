"""A run's folder: the lock that makes one process its owner, checkpoints with their checksums, resume,
the record, the pretrained start, and how a run ends.

The loop (:mod:`lnl.training.loop`) calls this module; it never calls the loop back, except at one place:
:func:`pretrained_start` trains the run a start depends on when the store lacks it, with the ``train``
function the loop hands it (so the two modules do not import each other).

A folder ``<runs_dir>/<run_id>/`` holds ``record.json`` (rewritten atomically after every epoch),
``checkpoint.pt`` with ``checkpoint.pt.sha256`` (the resumable state, while the run is unfinished) and
``final.pt`` (a finished run's weights, which :mod:`lnl.store` keeps by digest when another run starts from it).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from lnl import store
from lnl.config import Config, ConfigError
from lnl.data.tensors import DeviceData
from lnl.methods import Method
from lnl.models import LNLNet
from lnl.records import (CHECKPOINT, FINAL_CHECKPOINT, RECORD, SCHEMA, RunResult, git_commit, read_record, run_lock,
                         write_bytes_atomic, write_json_atomic, write_text_atomic)
from lnl.training.device import cpu_model
from lnl.training.evaluation import summary
from lnl.training.pretrained import load_optimizer_state, pretrained_start


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


@dataclass
class Opened:
    """What :func:`claim` found in the run folder: a finished run to return (``done``), or the previous
    record, the checkpoint to resume from and the pretrained start to begin from."""

    done: RunResult | None = None
    previous: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    start: dict[str, Any] | None = None


def already_done(cfg: Config, run_dir: Path, say: bool = True) -> RunResult | None:
    """The finished (or diverged) run ``cfg.resume`` asks to return, checked to be the same configuration."""
    previous = read_record(run_dir)
    if not (cfg.resume and previous and previous.get("status") in ("finished", "diverged")):
        return None
    check_same_identity(previous, cfg, run_dir)
    if say:
        print(f"lnl: run {run_dir.name} already {previous['status']}; nothing to do ({run_dir / RECORD})")
    return RunResult.from_record(previous, run_dir)


@contextlib.contextmanager
def claim(cfg: Config, run_id: str, run_dir: Path, train: Callable[[Config], RunResult]) -> Iterator[Opened]:
    """Own the run folder while the run trains: its lock (a second process is refused), stale temporary
    files removed, the checkpoint to resume or the pretrained start loaded, an unfinished folder cleared.
    A finished run is never cleared without ``overwrite``; a start that fails leaves no empty folder."""
    with run_lock(Path(cfg.runs_dir) / f".{run_id}.lock", wait=False, what=f"run {run_id}"):
        done = already_done(cfg, run_dir, say=False)  # again, under the lock
        if done is not None:
            yield Opened(done=done)
            return
        previous = read_record(run_dir)
        for stale in run_dir.glob(".*.tmp"):  # a write a signal cut short (lnl.records.write_bytes_atomic)
            stale.unlink(missing_ok=True)
        checkpoint = load_resume_checkpoint(run_dir, cfg) if cfg.resume else None
        start = pretrained_start(cfg, train) if cfg.init_from and checkpoint is None else None
        if checkpoint is None and run_dir.exists():
            if previous and previous.get("status") == "finished" and not cfg.overwrite:
                raise ConfigError("overwrite", f"run {run_id} already finished ({run_dir / RECORD}); --resume "
                                               "returns it, --overwrite trains it again")
            shutil.rmtree(run_dir)  # an unfinished (or explicitly overwritten) run starts over
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            yield Opened(previous=previous, checkpoint=checkpoint, start=start)
        except BaseException:
            if checkpoint is None and not (run_dir / RECORD).exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # a start that failed leaves no empty run folder
            raise


def write_checkpoint(path: Path, state: dict[str, Any]) -> str:
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


def checksum_path(path: Path) -> Path:
    """Where the SHA-256 of an epoch checkpoint is written (after the checkpoint, so it marks it complete)."""
    return path.with_name(path.name + ".sha256")


def load_resume_checkpoint(run_dir: Path, cfg: Config) -> dict[str, Any] | None:
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
        expected = checksum_path(path).read_text().strip() if checksum_path(path).is_file() else None
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


def check_same_identity(record: dict[str, Any], cfg: Config, run_dir: Path) -> None:
    """A finished run returned by ``resume`` must be the run ``cfg`` asks for: same identity (records
    written before the identity was recorded are taken as they are)."""
    identity = record.get("identity")
    if identity is not None and identity != cfg.identity_hash():
        raise ConfigError("resume", f"run {record.get('run_id')} in {run_dir} finished with another configuration "
                                    "(identity differs); resume with the original values or choose another "
                                    "--run-id")


def restore(checkpoint: dict[str, Any] | None, model: LNLNet, method: Method, schedulers: dict[str, Any],
             run_id: str) -> dict[str, Any]:
    """Load a resumed run's weights, optimizer, scheduler and RNG state; what it had recorded so far."""
    if checkpoint is None:
        return {"epoch": 0, "epochs": [], "confusion": {}, "timings": {}, "wandb": {}, "machines": []}
    model.load_state_dict(checkpoint["model"])
    for name, opt in method.optimizers.items():
        load_optimizer_state(opt, checkpoint["optimizers"][name])
        schedulers[name].load_state_dict(checkpoint["schedulers"][name])
    method.load_state_dict(checkpoint.get("method_state") or {})
    torch.set_rng_state(checkpoint["torch_rng"])
    print(f"lnl: resuming {run_id} after epoch {checkpoint['epoch']}")
    return {"epoch": checkpoint["epoch"], "epochs": checkpoint["epochs"], "confusion": checkpoint["confusion"],
            "timings": checkpoint["timings"], "wandb": checkpoint.get("wandb", {}),
            "machines": checkpoint.get("machines", [])}


MACHINE_KEYS = ("device", "device_name", "precision", "threads")


def machines(earlier: list[dict[str, Any]], first_epoch: int, env: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each stretch of a run trained: a resumed run's ``earlier`` list, then this process's machine
    from ``first_epoch`` on unless it is the last one's. A run moved between machines (a GPU job stopped at
    its deadline and finished on a CPU) is then priced per machine (:mod:`lnl.report.recipe_cost`); ``env``,
    the record's other field, names only the last."""
    here = {k: env.get(k) for k in MACHINE_KEYS}
    if earlier and {k: earlier[-1].get(k) for k in MACHINE_KEYS} == here:
        return earlier
    return [*earlier, {"from_epoch": first_epoch, **here}]


def new_record(cfg: Config, run_id: str, inputs: dict[str, Any], opened: Opened, restored: dict[str, Any], *,
               precision: str, speed: dict[str, Any], init: dict[str, Any]) -> dict[str, Any]:
    """The run's record as it starts (or resumes): config and identity, what it restored, where it ran."""
    device, data = inputs["device"], inputs["data"]
    timings = {"data_s": round(inputs["data_s"], 3), "epoch_s": [], "eval_s": [], **restored["timings"]}
    env = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
           "precision": precision, "threads": torch.get_num_threads(), "workers": inputs["share"], **speed}
    return {
        "schema": SCHEMA, "run_id": run_id, "status": "running", "reason": None,
        "config": cfg.to_dict(), "identity": cfg.identity_hash(),  # what a resume must match
        "epochs": restored["epochs"], "confusion": restored["confusion"], "final": {},
        "timings": timings, "git_commit": git_commit(), "host": platform.node(),
        "env": env, "machines": machines(restored["machines"], restored["epoch"] + 1, env),
        "data": {"n_train": len(data["train"]), "n_val": len(data["val_biased"]), "n_test": len(data["test"])},
        "created_at": ((opened.previous or {}).get("created_at") if opened.checkpoint is not None else None)
        or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wandb": restored["wandb"], "init": init or None,
    }


def save_checkpoint(run: Run, epochs_done: int) -> None:
    """The resumable state after ``epochs_done`` epochs, atomically, then its checksum beside it."""
    path = run.run_dir / CHECKPOINT
    digest = write_checkpoint(path, {
        "identity": run.cfg.identity_hash(), "epoch": epochs_done, "model": run.model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in run.method.optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in run.schedulers.items()},
        "epochs": run.record["epochs"], "confusion": run.record["confusion"],
        "timings": dict(run.record["timings"]), "torch_rng": torch.get_rng_state(), "wandb": run.tracker.info,
        "init": run.record.get("init"), "method_state": run.method.state_dict(),
        "machines": run.record["machines"]})
    write_text_atomic(checksum_path(path), digest + "\n")


@dataclass
class Outcome:
    """How a run ended, as :func:`closing` records it."""

    status: str = "finished"
    reason: str | None = None


@contextlib.contextmanager
def closing(run: Run) -> Iterator[Outcome]:
    """Train inside this: the loop sets the outcome; Ctrl-C or SIGTERM makes it ``interrupted`` (with the
    signal and the time) and any other exception ``failed`` (with its reason), and the run is closed
    (:func:`finish`) whatever happens, before the exception goes on."""
    outcome = Outcome()
    try:
        with _signals_interrupt():
            yield outcome
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (a scheduler, a deadline): resumable
        outcome.status = "interrupted"
        outcome.reason = f"{err.args[0] if err.args else 'SIGINT'} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
        raise
    except BaseException as err:  # record why the run died before re-raising
        outcome.status, outcome.reason = "failed", f"{type(err).__name__}: {err}"
        raise
    finally:
        finish(run, outcome.status, outcome.reason)


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


def finish(run: Run, status: str, reason: str | None) -> None:
    """Close the run: status, summary, the final weights of a finished run (for ``init_from``), the
    tracker; the record saved; the epoch checkpoint removed unless the run failed (it resumes)."""
    record = run.record
    record["status"], record["reason"] = status, reason
    record["final"] = summary(record["epochs"], record["confusion"], status)
    if status == "finished":
        try:
            digest = write_checkpoint(run.run_dir / FINAL_CHECKPOINT, {
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
        checksum_path(run.run_dir / CHECKPOINT).unlink(missing_ok=True)
    acc = record["final"].get("test/acc")
    acc_text = f"{acc:.4f}" if isinstance(acc, float) else "n/a"
    print(f"lnl: {run.run_id} {status}{f' ({reason})' if reason else ''}: unbiased test accuracy {acc_text}; "
          f"record {run.run_dir / RECORD}", flush=True)
