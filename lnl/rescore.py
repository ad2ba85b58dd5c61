"""A finished run's network scored again, without training, on the data its configuration names after
data-only overrides (``lnl-evaluate``; report scripts that break its test predictions down). Records and
checkpoints are only read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lnl.config import Config, ConfigError
from lnl import store

# The fields an override may change: what the data is and where it runs, never what was trained.
DATA_KEYS = ("color_var", "palette", "strokes", "color_noise", "color_bounds", "unbiased_colors", "data_seed",
             "val_size", "test_size", "val_eval_size", "cache_dir", "data_dir")
EXECUTION_KEYS = ("device", "threads")


def overridden_config(record: dict[str, Any], overrides: dict[str, str]) -> Config:
    """The run's configuration with the data ``overrides`` applied; a ConfigError for any other key.
    The fused CPU kernels are left off: evaluation needs no gradients, and the values are the same. The
    device is this machine's (``auto``) unless overridden: a run trained on a GPU is scored on a CPU too."""
    allowed = DATA_KEYS + EXECUTION_KEYS
    bad = sorted(set(overrides) - set(allowed))
    if bad:
        raise ConfigError(bad[0], f"cannot be changed after training; --set may change only {', '.join(allowed)}")
    base = Config.from_dict({**record["config"], "cpu_kernels": False, "device": "auto"})
    return Config.from_dict(overrides, base=base).validate()


def run_data(cfg: Config, data_cache: dict[str, Any]) -> tuple[Any, Any]:
    """``cfg``'s data for its method's input kind, as arrays and on the device: loaded once per distinct
    data configuration and input kind, through ``data_cache``."""
    from lnl.data.tensors import DeviceData
    from lnl.training.build import load_data
    from lnl.training.device import resolve_device
    from lnl.methods import METHODS
    gray = METHODS.get(cfg.method).input_kind == "gray"
    key = json.dumps([{k: getattr(cfg, k) for k in DATA_KEYS}, gray], sort_keys=True, default=str)
    if key not in data_cache:
        raw = load_data(cfg)
        data_cache[key] = (raw, DeviceData(raw, resolve_device(cfg.device), gray=gray, test_size=cfg.test_size,
                                           val_eval_size=cfg.val_eval_size))
    return data_cache[key]


def evaluate_run(run_dir: Path, cfg: Config, record: dict[str, Any], splits: list[str],
                 data_cache: dict[str, Any]) -> dict[str, float]:
    """Accuracy on each of ``splits`` of the run's final network on ``cfg``'s data (see :func:`run_data`)."""
    from lnl.training.evaluation import evaluate
    _, data = run_data(cfg, data_cache)
    model, autocast = final_network(run_dir, cfg, record, data.device)
    return {s: evaluate(model, data, s, autocast, bias_head=False)["acc"] for s in splits}


def predictions_on_test(run_dir: Path, cfg: Config, record: dict[str, Any],
                        data_cache: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The run's final network on ``cfg``'s unbiased test split: its predictions, the labels and the palette
    mean each test digit's color was drawn around (0-9; -1 under a draw without one), as NumPy arrays."""
    import numpy as np

    from lnl.training.evaluation import evaluate
    raw, data = run_data(cfg, data_cache)
    model, autocast = final_network(run_dir, cfg, record, data.device)
    pred = evaluate(model, data, "test", autocast, bias_head=False)["pred"]
    n = len(pred)
    return pred, np.asarray(raw.y("test")[:n]), np.asarray(raw.color("test")[:n]).astype(np.int64)


def final_network(run_dir: Path, cfg: Config, record: dict[str, Any], device: Any) -> tuple[Any, Any]:
    """The finished run's network (its ``final.pt``) built for ``cfg`` on ``device``, and the autocast of
    the precision the run trained in (its record), so a bf16 run is scored as it scored itself."""
    from lnl.training.device import autocast_factory
    from lnl.training.build import prepare_model
    model = prepare_model(cfg, device)
    path = store.final_checkpoint_path(run_dir, record)
    if path is None:
        raise store.CheckpointError(f"{run_dir}: no final checkpoint matching its record, beside it or in "
                                    f"{store.checkpoint_store(run_dir.parent)}")
    state = store.load_checkpoint(path, record["final_checkpoint"]["sha256"], map_location=device)
    model.load_state_dict(state["model"])
    return model, autocast_factory(device, (record.get("env") or {}).get("precision", "fp32"))
