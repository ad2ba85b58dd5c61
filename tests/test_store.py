"""The results store (lnl.store) and its W&B mirror (lnl.artifacts): a pretrained start resolved by digest
from the content-addressed checkpoints, a checkpoint logged as an Artifact by an offline run, and one fetched
from W&B on a machine that lacks it."""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest

import lnl
from conftest import pretrain_recipe
from lnl import artifacts, store


def _record(result) -> dict:
    return json.loads((result.run_dir / "record.json").read_text())


def test_init_from_resolves_the_baseline_from_the_store_by_digest(tiny_config, tmp_path):
    recipe = pretrain_recipe(tmp_path, baseline_epochs=1)
    make = lambda **kw: tiny_config(method="lnl", recipe=recipe, optimizer="sgd", lr=0.001,  # noqa: E731
                                    init_from="baseline", **kw)
    first = lnl.train(make(**{"lambda": 0.01}))
    runs = tmp_path / "runs"
    base_dir = runs / _record(first)["init"]["from_run"]
    sha = _record(first)["init"]["sha256"]
    kept = store.stored_path(runs, sha)
    assert kept.is_file() and store.sha256_file(kept) == sha      # kept once, under its digest
    (base_dir / "final.pt").unlink()                                # only the store has it now
    second = lnl.train(make(**{"lambda": 0.5}))
    assert second.status == "finished" and _record(second)["init"] == {**_record(first)["init"]}
    assert not (base_dir / "final.pt").exists()                      # not retrained
    kept.write_bytes(kept.read_bytes()[:-10] + b"0123456789")       # altered bytes are never loaded
    with pytest.raises(lnl.ConfigError, match="neither in"):
        lnl.train(make(**{"lambda": 0.3}))


def test_load_checkpoint_checks_the_digest_before_unpickling(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    bad = tmp_path / "bad.pt"
    bad.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(store.CheckpointError, match="SHA-256"):
        store.load_checkpoint(bad, "0" * 64)
    with pytest.raises(store.CheckpointError, match="weights-only"):
        store.load_checkpoint(bad, store.sha256_file(bad))  # even with the right digest: no code runs
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow  # a W&B offline run starts W&B\'s service process
def test_an_offline_run_logs_its_final_checkpoint_as_an_artifact(tiny_config, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = lnl.train(tiny_config(method="baseline", wandb_mode="offline"))
    record = _record(result)
    assert record["wandb"]["artifact"] == artifacts.artifact_name(result.run_id)
    offline = Path(record["wandb"]["dir"])
    log = b"".join(p.read_bytes() for p in offline.glob("run-*.wandb"))
    final = (result.run_dir / "final.pt").read_bytes()
    manifest_digest = base64.b64encode(hashlib.md5(final).digest())  # W&B's manifest entry digest
    assert artifacts.artifact_name(result.run_id).encode() in log
    assert record["final_checkpoint"]["sha256"].encode() in log      # the metadata's digest
    assert manifest_digest in log and b"final.pt" in log and b"record.json" in log


class _FakeArtifact:
    def __init__(self, folder: Path, sha: str) -> None:
        self.folder, self.metadata = folder, {"sha256": sha}

    def download(self, root: str) -> str:
        shutil.copytree(self.folder, root, dirs_exist_ok=True)
        return root


class _FakeApi:
    def __init__(self, artifact: _FakeArtifact) -> None:
        self.art, self.asked = artifact, []

    def artifact(self, name: str, type: str):  # noqa: A002 - wandb.Api's signature
        self.asked.append(name)
        return self.art


def test_a_pretrained_run_comes_from_its_wandb_artifact(tiny_config, tmp_path):
    trained = lnl.train(tiny_config(method="baseline"))
    logged = tmp_path / "artifact"
    logged.mkdir()
    shutil.copy(trained.run_dir / "final.pt", logged / "final.pt")
    shutil.copy(trained.run_dir / "record.json", logged / "record.json")
    sha = _record(trained)["final_checkpoint"]["sha256"]
    other = tiny_config(method="baseline", runs_dir=str(tmp_path / "elsewhere"), wandb_project="p")
    api = _FakeApi(_FakeArtifact(logged, sha))
    path = artifacts.fetch_pretrained(other, trained.run_id, api=api)
    assert api.asked == [f"p/{artifacts.artifact_name(trained.run_id)}:latest"]
    assert path == store.stored_path(tmp_path / "elsewhere", sha) and store.sha256_file(path) == sha
    copied = json.loads((tmp_path / "elsewhere" / trained.run_id / "record.json").read_text())
    assert copied["final_checkpoint"]["sha256"] == sha
    # an Artifact whose bytes are not the recorded ones is refused
    (logged / "final.pt").write_bytes(b"not the weights")
    assert artifacts.fetch_pretrained(tiny_config(method="baseline", runs_dir=str(tmp_path / "third")),
                                      trained.run_id, api=api) is None
    assert not store.checkpoint_store(tmp_path / "third").exists()
