"""lnl.accel.fast_path: the CPU layout timed once per machine and cached; the config's layout fields bound
the candidates; a forced or cached choice is used without timing; the run record says what ran."""
from __future__ import annotations

import json

import pytest
import torch

from lnl.accel import fast_path
from lnl.config import Config
from lnl.training.build import build_training

CPU = torch.device("cpu")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LNL_KERNEL_CACHE", str(tmp_path))
    return tmp_path / fast_path.CACHE_FILE


def _fake_timer(monkeypatch, speeds):
    calls = []

    def timed(cfg, device, build, names):
        calls.append(list(names))
        return {n: speeds[n] for n in names}

    monkeypatch.setattr(fast_path, "time_candidates", timed)
    return calls


def test_tuned_takes_the_fastest_allowed_and_caches_it(cache, monkeypatch):
    calls = _fake_timer(monkeypatch, {"cl+kernels": 900.0, "cl": 1000.0, "nchw": 950.0})
    cfg, info = fast_path.choose(Config(method="lnl"), CPU, build_training, "fp32")
    assert (info["choice"], info["source"]) == ("cl", "tuned now") and calls == [["cl+kernels", "cl", "nchw"]]
    assert (cfg.channels_last, cfg.cpu_kernels) == (True, False)
    assert json.loads(cache.read_text())[fast_path.cache_key(Config(method="lnl"), "fp32")]["choice"] == "cl"
    again, info = fast_path.choose(Config(method="lnl"), CPU, build_training, "fp32")
    assert info["source"] == "cache" and len(calls) == 1 and again.cpu_kernels is False
    # another precision or method is another key: timed again
    fast_path.choose(Config(method="lnl"), CPU, build_training, "bf16")
    fast_path.choose(Config(method="baseline"), CPU, build_training, "fp32")
    assert len(calls) == 3


def test_layout_fields_bound_the_candidates_and_names_force_one(cache, monkeypatch):
    calls = _fake_timer(monkeypatch, {"cl+kernels": 2000.0, "cl": 1000.0, "nchw": 950.0})
    _, info = fast_path.choose(Config(cpu_kernels=False), CPU, build_training, "fp32")
    assert info["choice"] == "cl" and calls == [["cl", "nchw"]]  # kernels off: never chosen
    cfg, info = fast_path.choose(Config(channels_last=False), CPU, build_training, "fp32")
    assert info == {"choice": "nchw", "source": "only candidate allowed"} and not cfg.cpu_kernels
    cfg, info = fast_path.choose(Config(fast_path="nchw"), CPU, build_training, "fp32")
    assert info["source"] == "forced" and (cfg.channels_last, cfg.cpu_kernels) == (False, False)
    cfg, info = fast_path.choose(Config(fast_path="manual", cpu_kernels=False), CPU, build_training, "fp32")
    assert info["choice"] == "manual" and cfg.channels_last and not cfg.cpu_kernels
    assert len(calls) == 1  # only the first (two candidates) was timed


def test_real_timing_of_the_runs_step_and_the_record(tiny_config, cache, monkeypatch):
    """The real timing builds each candidate's step and runs it; the engine records the choice."""
    monkeypatch.setattr(fast_path, "WARMUP", 1)
    monkeypatch.setattr(fast_path, "STEPS", 1)
    cfg = tiny_config(method="lnl", epochs=1, batch_size=16)
    speeds = fast_path.time_candidates(cfg, CPU, build_training, ["cl", "nchw"])
    assert set(speeds) == {"cl", "nchw"} and all(v > 0 for v in speeds.values())
    from lnl.training.loop import train

    result = train(cfg)
    record = json.loads((result.run_dir / "record.json").read_text())
    layout = record["env"]["fast_path"]
    assert layout["source"] == "tuned now" and layout["choice"] in fast_path.CANDIDATES
    assert record["config"]["channels_last"] == fast_path.CANDIDATES[layout["choice"]][0]


def test_a_batch_larger_than_the_data_is_timed_at_the_data_size(monkeypatch):
    """--batch-size 100000 on 512 images: the autotuner times batches of 512, not 100,000 (which ran for 11
    minutes at 16.5 GB), and the run keeps its own batch size."""
    seen = []
    monkeypatch.setattr(fast_path, "_read_cache", lambda: {})
    monkeypatch.setattr(fast_path, "_write_cache", lambda key, entry: None)
    monkeypatch.setattr(fast_path, "time_candidates",
                        lambda cfg, device, build, names: seen.append(cfg.batch_size) or {n: 1.0 for n in names})
    cfg, info = fast_path.choose(Config(method="lnl", batch_size=100_000), CPU, build_training, "fp32", n_train=512)
    assert seen == [512] and cfg.batch_size == 100_000 and info["source"] == "tuned now"
