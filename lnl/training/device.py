"""Where a run computes and at what precision: the device, bf16 or fp32, and the autocast around each step."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import torch

from lnl.config import ConfigError


# device and precision
def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"{spec!r} requested but CUDA is not available on this machine")
    if spec.startswith("cuda:") and int(spec[5:]) >= torch.cuda.device_count():
        raise ConfigError("device", f"{spec!r} requested but this machine has {torch.cuda.device_count()} GPU(s)")
    return torch.device(spec)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16 (where bf16 convolutions are fast)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def resolve_precision(spec: str, device: torch.device) -> str:
    if spec != "auto":
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def autocast_factory(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    if precision == "bf16":
        # No weight-cast cache on CUDA: a cache is unsafe under CUDA-graph capture (lnl.accel.cuda_graphs),
        # and each weight is cast once per autocast region anyway.
        cache = device.type != "cuda"
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext
