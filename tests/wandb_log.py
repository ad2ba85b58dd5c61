"""Read an offline W&B run's ``run-<id>.wandb`` file (a test helper).

Offline runs can't be read back through wandb's public API. The file is a
LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then
32 KiB blocks of records, each with a 7-byte header (crc32, length, type: 1 full,
2 first, 3 middle, 4 last) around a serialized ``wandb_internal_pb2.Record``.
"""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

BLOCK = 32768


def records(path: str | Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1 and version == 0, "not a W&B datastore file"
    out, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left_in_block  # zero padding to the end of the block
            continue
        if pos + 7 + length > len(data):
            break  # a record the service is still writing: read_run reads the file again
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def _items(items: Any) -> dict[str, Any]:
    out = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        try:
            out[key] = json.loads(item.value_json)
        except ValueError:
            out[key] = item.value_json
    return out


def read_run(path: str | Path, wait_s: float = 30.0) -> dict[str, Any]:
    """{'config': {...}, 'history': [{...}, ...], 'summary': {...}, 'run': RunRecord} of one offline run.

    W&B's service process writes the file asynchronously; wait (up to ``wait_s``)
    until it holds the run's final ``exit`` record (``records`` stops before a
    record not yet written whole, so a read mid-write is never a parse error).
    """
    deadline = time.monotonic() + wait_s
    found = records(path)
    while not any(r.WhichOneof("record_type") == "exit" for r in found) and time.monotonic() < deadline:
        time.sleep(0.2)
        found = records(path)
    run: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "run": None}
    for record in found:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["run"] = record.run
            run["config"].update(_items(record.run.config.update))
        elif kind == "config":
            run["config"].update(_items(record.config.update))
        elif kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
    return run
