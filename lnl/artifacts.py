"""Final checkpoints as W&B Artifacts, so that agents on several machines share one pretrained baseline.

A finished run logs its final checkpoint as the Artifact ``lnl-final-<run-id>`` (type ``model``), with its
record beside it (``record.json``) and the checkpoint's SHA-256 in the metadata (:func:`lnl.tracking.log_final`). Offline
the Artifact is written into the offline run folder and uploads with ``wandb sync``. When a run starts from a
pretrained run (``init_from``) whose record or checkpoint this machine lacks, and W&B is online,
:func:`fetch_pretrained` downloads that Artifact (``wandb.Api().artifact``), checks the digest against the
record's and keeps both in the local store, so the baseline is trained once, on one machine. Offline, or
when no such Artifact exists, the local store serves and a missing baseline is trained here.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from lnl import store
from lnl.records import RECORD, read_record, write_json_atomic
from lnl.tracking import ARTIFACT_TYPE, artifact_name, resolve_mode

def fetch_pretrained(pre_cfg: Any, pre_id: str, api: Any = None) -> Path | None:
    """The final checkpoint of pretrained run ``pre_id`` from its W&B Artifact, kept in the local store (and its
    record written beside, if this machine has none). None when W&B is not online or has no such Artifact;
    a digest that does not match is refused."""
    if api is None:
        if resolve_mode(pre_cfg.wandb_mode) != "online":
            return None
        try:
            import wandb

            api = wandb.Api()
        except Exception as err:  # noqa: BLE001 - no W&B: the local store serves
            print(f"lnl: W&B not reachable ({type(err).__name__}); {pre_id} comes from the local store",
                  file=sys.stderr)
            return None
    project = pre_cfg.wandb_project or os.environ.get("WANDB_PROJECT") or "lnl"
    entity = pre_cfg.wandb_entity or os.environ.get("WANDB_ENTITY")
    name = f"{entity + '/' if entity else ''}{project}/{artifact_name(pre_id)}:latest"
    try:
        art = api.artifact(name, type=ARTIFACT_TYPE)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(art.download(root=tmp))
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
            sha = (record.get("final_checkpoint") or {}).get("sha256")
            if record.get("run_id") != pre_id or sha != art.metadata.get("sha256") or \
                    store.sha256_file(folder / "final.pt") != sha:
                print(f"lnl: warning: Artifact {name} does not match run {pre_id}'s digest; not used",
                      file=sys.stderr)
                return None
            stored = store.keep(folder / "final.pt", sha, pre_cfg.runs_dir)
    except Exception as err:  # noqa: BLE001 - no such Artifact, no network: train or use the local store
        print(f"lnl: no W&B Artifact {name} ({type(err).__name__}); the local store serves", file=sys.stderr)
        return None
    run_dir = Path(pre_cfg.runs_dir) / pre_id
    if read_record(run_dir) is None:
        write_json_atomic(run_dir / RECORD, record)
    print(f"lnl: {pre_id} comes from W&B Artifact {name} (SHA-256 {sha[:12]}…)", flush=True)
    return stored
