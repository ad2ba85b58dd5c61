"""The results store: run records by run id, final checkpoints by content.

A runs folder (``--runs-dir``; the committed one is ``results/``) holds::

    <runs_dir>/<run-id>/record.json        one per run, written atomically by the engine
    <runs_dir>/<run-id>/final.pt           a finished run's weights and optimizer state, where training left it
    <runs_dir>/_checkpoints/<sha256>.pt    content-addressed checkpoints, each kept once

A run id is a hash of what the run computes (:meth:`lnl.config.Config.identity_hash`), so one run is stored
once whatever study or sweep asks for it: studies select runs by configuration, never by folder. A record
names its final checkpoint's SHA-256 (``final_checkpoint``); :func:`final_checkpoint_path` finds those bytes
beside the record or in ``_checkpoints/``. When a run starts from another one (``init_from``), the engine
keeps that checkpoint in ``_checkpoints/`` (:func:`keep`): the checkpoints a store keeps are those that other
runs start from, and ``final.pt`` files beside records are working copies (ignored by git).

Every load goes through :func:`load_checkpoint`: the digest is checked first and the file is read with
torch's weights-only unpickler, so a planted file cannot run code.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lnl.data.cache import sha256_file
from lnl.errors import UserError
from lnl.records import FINAL_CHECKPOINT

CHECKPOINTS = "_checkpoints"


class CheckpointError(UserError):
    """A checkpoint is missing, does not match its recorded digest, or is not a weights-only file."""


def checkpoint_store(runs_dir: str | Path) -> Path:
    """The content-addressed checkpoint folder of a runs folder."""
    return Path(runs_dir) / CHECKPOINTS


def stored_path(runs_dir: str | Path, sha256: str) -> Path:
    return checkpoint_store(runs_dir) / f"{sha256}.pt"


def final_checkpoint_path(run_dir: str | Path, record: dict[str, Any]) -> Path | None:
    """Where the bytes of a finished run's final checkpoint are: the file beside its record, else the store
    of the runs folder that holds it; only a file whose SHA-256 is the one the record names. None if neither."""
    saved = record.get("final_checkpoint") or {}
    sha = saved.get("sha256")
    if not isinstance(sha, str):
        return None
    run_dir = Path(run_dir)
    for path in (run_dir / str(saved.get("file", FINAL_CHECKPOINT)), stored_path(run_dir.parent, sha)):
        if path.is_file() and sha256_file(path) == sha:
            return path
    return None


def keep(path: str | Path, sha256: str, runs_dir: str | Path) -> Path:
    """Keep the checkpoint ``path`` (whose digest is ``sha256``) in the store of ``runs_dir``, once: a hard
    link where the file system allows, else an atomic copy. Returns the stored path."""
    dest = stored_path(runs_dir, sha256)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def load_checkpoint(path: str | Path, sha256: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """The state dict saved at ``path``: its digest checked against ``sha256`` (when given) before anything
    is unpickled, and read weights-only. A missing, altered, truncated or code-carrying file is a
    :class:`CheckpointError` naming the file."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if sha256 is not None and sha256_file(path) != sha256:
        raise CheckpointError(f"checkpoint {path} does not match the SHA-256 its record names")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is not a readable weights-only checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict")
    return state
