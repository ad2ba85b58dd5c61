"""A folder of .npy arrays with a manifest, created atomically and verified on load.

Layout: ``<folder>/manifest.json`` plus one ``<name>.npy`` per array. The manifest
records each file's SHA-256, shape and dtype, and the parameters that produced
the arrays.

* Creation writes everything into a private temporary folder beside the target
  and renames it into place: ``rename`` of a directory is atomic, so readers see
  either no cache or a complete one. When several processes build the same
  cache at once, the first rename wins and the others discard their copy.
* Loading re-hashes every file; a missing, truncated or altered file makes the
  cache invalid, and it is moved aside and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

MANIFEST = "manifest.json"


class CacheInvalid(Exception):
    pass


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def write(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bool:
    """Create ``folder`` atomically. Returns False if another process created it first."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        files = {}
        for name, array in arrays.items():
            path = tmp / f"{name}.npy"
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            files[name] = {"sha256": sha256_file(path), "shape": list(array.shape), "dtype": str(array.dtype)}
        manifest = {"meta": meta, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
        for path in tmp.iterdir():  # make the data durable before it becomes visible
            with open(path, "rb") as stream:
                os.fsync(stream.fileno())
        try:
            os.rename(tmp, folder)
            return True
        except OSError:
            if folder.exists():  # lost the race: someone else's complete cache is in place
                return False
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load and verify a cache folder; raise :class:`CacheInvalid` if anything is off."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError) as err:
        raise CacheInvalid(f"{folder}: bad or missing manifest ({err})") from None
    arrays = {}
    for name, info in files.items():
        path = folder / f"{name}.npy"
        try:
            if sha256_file(path) != info["sha256"]:
                raise CacheInvalid(f"{path}: checksum mismatch")
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise CacheInvalid(f"{path}: unreadable ({err})") from None
        if list(array.shape) != info["shape"] or str(array.dtype) != info["dtype"]:
            raise CacheInvalid(f"{path}: shape or dtype differs from the manifest")
        arrays[name] = array
    return arrays, manifest.get("meta", {})


def discard(folder: Path) -> None:
    """Move an invalid cache aside (atomically) and delete it."""
    trash = folder.parent / f".bad-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(folder, trash)
    except FileNotFoundError:  # another process already moved it
        return
    shutil.rmtree(trash, ignore_errors=True)


def load_or_create(folder: Path, build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
                   accept: Callable[[dict[str, Any]], bool] | None = None,
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return the cached arrays, building and caching them first if needed.

    ``accept(meta)`` checks that a cache found on disk was made for the request;
    one it rejects is treated like a corrupt one (moved aside and rebuilt).
    """
    if folder.exists():
        try:
            arrays, meta = read(folder)
            if accept is not None and not accept(meta):
                raise CacheInvalid(f"{folder}: made for other parameters than requested")
            return arrays, meta
        except CacheInvalid as err:
            print(f"lnl: cache {folder} is invalid ({err}); rebuilding it", flush=True)
            discard(folder)
    arrays, meta = build()
    if not write(folder, arrays, meta):
        try:
            return read(folder)
        except CacheInvalid:
            pass  # the winner's copy is broken too: use what we built
    return arrays, meta
