"""W&B mirror of the run record: offline runs, failures that must not stop training."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import lnl
from lnl import tracking
from wandb_log import read_run

W_AND_B_ONLY = ("_runtime", "_step", "_timestamp", "samples/", "test/confusion_matrix", "test/per_class_accuracy")


@pytest.mark.slow  # a W&B offline run starts W&B\'s service process
def test_offline_run_mirrors_the_record(tiny_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = lnl.train(tiny_config(method="lnl", epochs=2, wandb_mode="auto", tags=["unit"]))
    record = json.loads((result.run_dir / "record.json").read_text())
    info = record["wandb"]
    assert info["mode"] == "offline" and info["id"]
    run_dir = Path(info["dir"])
    assert run_dir.is_dir() and run_dir.name.endswith(info["id"])
    assert f"wandb sync {run_dir}" in capsys.readouterr().out
    logged = read_run(next(run_dir.glob("run-*.wandb")))
    # per-epoch rows: exactly the record's dicts
    rows = [{k: v for k, v in row.items() if not k.startswith(W_AND_B_ONLY)} for row in logged["history"]]
    rows = [r for r in rows if set(r) != {"epoch"}]
    assert rows == record["epochs"]
    # summary: every final value, the same numbers
    for key, value in record["final"].items():
        if key in tracking.SUMMARY_RULES:
            continue
        assert logged["summary"][key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert logged["summary"]["status"] == "finished"
    for key in ("test/confusion_matrix_table/_type", "test/per_class_accuracy/_type", "samples/train/_type"):
        assert key in logged["summary"]
    # every key a W&B Report panel reads (lnl.report.wandb_report.LOGGED_KEYS) is really logged
    from lnl.report.wandb_report import LOGGED_KEYS
    history_keys = {k for row in logged["history"] for k in row}
    for key in LOGGED_KEYS:
        assert key in history_keys or any(s == key or s.startswith(key + "/") for s in logged["summary"]), key
    # identity: config, group, job type, tags
    assert {k: logged["config"][k] for k in record["config"]} == record["config"]
    assert logged["run"].run_group == "lnl-cv0.020" and logged["run"].job_type == "train"
    assert {"lnl", "cv0.020", "unit"} <= set(logged["run"].tags)
    assert logged["run"].display_name == result.run_id


def test_failed_wandb_init_does_not_stop_training(tiny_config, monkeypatch):
    import wandb

    def broken_init(*args, **kwargs):
        raise RuntimeError("network is unreachable")

    monkeypatch.setattr(wandb, "init", broken_init)
    result = lnl.train(tiny_config(method="baseline", wandb_mode="online"))
    assert result.status == "finished"
    record = json.loads((result.run_dir / "record.json").read_text())
    assert record["wandb"]["mode"] == "failed" and "unreachable" in record["wandb"]["reason"]
    assert 0.0 <= record["final"]["test/acc"] <= 1.0  # a number (NaN is written as null, and fails here)


def test_online_failure_falls_back_to_offline(tiny_config, monkeypatch, tmp_path):
    import wandb

    real_init = wandb.init

    def init(*args, mode=None, **kwargs):
        if mode == "online":
            raise TimeoutError("wandb.init timed out")
        return real_init(*args, mode=mode, **kwargs)

    monkeypatch.setattr(wandb, "init", init)
    result = lnl.train(tiny_config(method="baseline", wandb_mode="online"))
    record = json.loads((result.run_dir / "record.json").read_text())
    assert result.status == "finished" and record["wandb"]["mode"] == "offline"
    assert "logged offline instead" in record["wandb"]["reason"] and Path(record["wandb"]["dir"]).is_dir()


def test_missing_wandb_package_is_a_warning(tiny_config, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    result = lnl.train(tiny_config(method="baseline", wandb_mode="offline"))
    record = json.loads((result.run_dir / "record.json").read_text())
    assert result.status == "finished" and record["wandb"]["mode"] == "unavailable"
    assert "not installed" in capsys.readouterr().err


def test_auto_mode(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    assert tracking.resolve_mode("auto") == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert tracking.resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.resolve_mode("auto") == "disabled"
    assert tracking.resolve_mode("offline") == "offline"  # an explicit flag wins over the environment


def test_sample_grid_shows_one_row_per_digit(cmnist):
    import torch

    from lnl.data.tensors import DeviceData

    data = DeviceData(cmnist, torch.device("cpu"), train_size=500, test_size=500)
    grid = tracking.sample_grid(*tracking.device_split_images(data, "train"))
    assert grid.shape == (280, 224, 3) and grid.dtype.name == "uint8"
    assert grid[:28].reshape(28, 8, 28, 3).any()  # digit 0's row is filled


@pytest.mark.slow  # a W&B offline run starts W&B\'s service process
def test_wandb_run_names_the_run_it_started_from(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("baseline: {epochs: 1, optimizer: sgd}\nlnl: {init_from: baseline}\n")
    result = lnl.train(tiny_config(method="lnl", recipe=str(recipe), wandb_mode="auto", optimizer="sgd"))
    record = json.loads((result.run_dir / "record.json").read_text())
    assert record["init"]["from_run"].startswith("baseline-cv0.020-s0-")
    logged = read_run(next(Path(record["wandb"]["dir"]).glob("run-*.wandb")))
    assert logged["config"]["init_run"] == record["init"]["from_run"]
    assert logged["config"]["init_from"] == "baseline"


def test_datastore_reader_stops_before_a_record_still_being_written(tmp_path):
    """The helper reads files W&B's service is still writing: a record cut short is left for the next read,
    never parsed (a parse of half a record failed a fresh-clone `make test` once)."""
    import struct
    import zlib

    from wandb.proto import wandb_internal_pb2 as pb

    from wandb_log import records

    def framed(record) -> bytes:
        body = record.SerializeToString()
        return struct.pack("<IHB", zlib.crc32(body), len(body), 1) + body  # one FULL record

    first, second = pb.Record(), pb.Record()
    first.history.item.add(key="epoch", value_json="1")
    second.history.item.add(key="epoch", value_json="2")
    whole = b":W&B" + struct.pack("<HB", 0xBEE1, 0) + framed(first) + framed(second)
    path = tmp_path / "run-x.wandb"
    path.write_bytes(whole)
    assert [r.history.item[0].value_json for r in records(path)] == ["1", "2"]
    path.write_bytes(whole[:-3])  # the second record's last bytes not written yet
    assert [r.history.item[0].value_json for r in records(path)] == ["1"]
