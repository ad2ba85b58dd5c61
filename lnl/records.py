"""Run records: one plain-JSON file per run, written atomically.

``<runs_dir>/<run_id>/record.json`` holds the resolved config, one metrics dict
per epoch, the unbiased-test confusion matrices of the epochs a selection rule
(:mod:`lnl.selection`) can pick, the final metrics,
timings, the git commit and the W&B run it was mirrored to. It is rewritten
after every epoch through a temporary file and ``os.replace``, so a reader (or a
killed worker) never sees half a file. The per-epoch metrics dicts are the very
dicts logged to W&B (:mod:`lnl.tracking`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lnl.config import ConfigError

SCHEMA = "lnl.run/1"
RECORD = "record.json"
CHECKPOINT = "checkpoint.pt"
FINAL_CHECKPOINT = "final.pt"  # weights + optimizer state of a finished run (Config.init_from)
# The keys of each per-epoch metrics dict (the engine writes exactly these; a test holds it to that).
EPOCH_KEYS = ("epoch", "lr", "train/ce", "train/entropy", "bias/loss", "bias/acc", "bias/acc_biased",
              "val_biased/acc", "val_unbiased/acc", "test/acc", "unlearning", "throughput", "time/epoch_s",
              "time/eval_s")


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None (plain JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: a unique temporary file beside it, flushed to disk, then
    renamed over ``path``. A failure (a full disk, a kill) leaves the old file or none, never a part of one,
    and no temporary file. The file gets the permissions a plain ``open`` would give (0666 less the umask;
    ``tempfile.mkstemp``'s 0600 would hide records and checkpoints from the rest of a shared group)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(_clean(obj), indent=1, allow_nan=False).encode())


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None  # a record is a JSON object; anything else is no record


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class RunResult:
    """What :func:`lnl.train` returns: the run's identity, status and metrics."""

    run_id: str
    run_dir: Path
    status: str
    final: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None

    @property
    def test_acc(self) -> float | None:
        return self.final.get("test/acc")

    @classmethod
    def from_record(cls, record: dict[str, Any], run_dir: Path) -> "RunResult":
        return cls(record["run_id"], Path(run_dir), record["status"], record.get("final") or {},
                   record.get("epochs") or [], record.get("reason"))


@contextlib.contextmanager
def run_lock(path: Path, wait: bool = True, what: str = ""):
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
