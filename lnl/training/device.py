"""Where a run computes and at what precision: the device, bf16 or fp32, and the autocast around each step."""
from __future__ import annotations

import contextlib
import os
import platform
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


# oneDNN's ISA names in rising order (ONEDNN_MAX_CPU_ISA, oneDNN's "CPU dispatcher control"); bf16 convolutions
# are native from AVX512_CORE_BF16 on, and emulated (0.17-0.20x the fp32 reference, issue 38) below it.
_ONEDNN_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
                "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16")


def isa_cap_below_bf16(environ=None) -> str | None:
    """The environment variable that caps this process below native bf16, or None.

    ``ONEDNN_MAX_CPU_ISA`` under AVX512_CORE_BF16 stops oneDNN's bf16 convolutions, and
    ``ATEN_CPU_CAPABILITY`` of ``default`` or ``avx2`` stops ATen's AVX-512 bf16 element-wise kernels: with
    either, bf16 runs emulated, so ``auto`` must choose fp32 (how an AVX2-only CPU is measured on a newer one).
    """
    env = os.environ if environ is None else environ
    isa = env.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa in _ONEDNN_ISAS and _ONEDNN_ISAS.index(isa) < _ONEDNN_ISAS.index("AVX512_CORE_BF16"):
        return f"ONEDNN_MAX_CPU_ISA={isa}"
    aten = env.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten in ("default", "avx2"):
        return f"ATEN_CPU_CAPABILITY={aten}"
    return None


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16 (where bf16 convolutions are fast), unless the process is
    capped below them (:func:`isa_cap_below_bf16`)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return (" amx_bf16" in flags or " avx512_bf16" in flags) and isa_cap_below_bf16() is None


def cpu_model() -> str:
    """The CPU's model name and its widest matrix/vector extension (what the fast path's speed depends on),
    e.g. ``Intel(R) Xeon(R) Processor (AMX bf16)``, with the cap when the process is capped below bf16
    (``AMD EPYC (AVX-512 bf16; capped: ONEDNN_MAX_CPU_ISA=AVX2)``); the machine name where /proc/cpuinfo is
    missing. Run records name their CPU with it (``env.device_name``), so a time is read with its machine."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
                platform.machine())
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    kind = next((label for flag, label in (("amx_bf16", "AMX bf16"), ("avx512_bf16", "AVX-512 bf16"),
                                           ("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), "no AVX2")
    cap = isa_cap_below_bf16()
    return f"{name} ({kind}; capped: {cap})" if cap else f"{name} ({kind})"


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
