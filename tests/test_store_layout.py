"""The committed store holds each run once: no run id (a record's folder name) appears twice in the tracked tree,
no record sits outside results/ except lab-log probes under their own names, and every kept checkpoint is named by
its digest and is one that a committed run started from."""
from __future__ import annotations

import json
import subprocess

from conftest import REPO
from lnl.store import sha256_file


def _tracked(suffix: str) -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    return [p for p in out if p.endswith(suffix)]


def test_each_run_is_stored_once_and_each_checkpoint_is_a_start():
    records = _tracked("/record.json")
    if not records:  # not a git checkout (an sdist): nothing to check
        return
    ids = [p.rsplit("/", 2)[-2] for p in records]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    starts = set()
    for path in records:
        if path.startswith("results/"):
            init = json.loads((REPO / path).read_text()).get("init") or {}
            starts.add(init.get("sha256"))
    for path in _tracked(".pt"):
        assert path.startswith("results/_checkpoints/"), path
        sha = path.rsplit("/", 1)[1][:-3]
        assert sha256_file(REPO / path) == sha and sha in starts, path
