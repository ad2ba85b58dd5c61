"""Precision ``auto`` honours an ISA cap: an AVX2-only CPU emulated on a newer one trains in fp32 (issue 38)."""
import pytest
import torch

import lnl.training.device as device


@pytest.mark.parametrize("environ, capped", [
    ({}, None),
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "ONEDNN_MAX_CPU_ISA=AVX2"),
    ({"ONEDNN_MAX_CPU_ISA": "avx512_core"}, "ONEDNN_MAX_CPU_ISA=AVX512_CORE"),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, None),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, None),
    ({"ONEDNN_MAX_CPU_ISA": "ALL"}, None),
    ({"ATEN_CPU_CAPABILITY": "avx2"}, "ATEN_CPU_CAPABILITY=avx2"),
    ({"ATEN_CPU_CAPABILITY": "default"}, "ATEN_CPU_CAPABILITY=default"),
    ({"ATEN_CPU_CAPABILITY": "avx512"}, None),
])
def test_the_isa_cap_is_read_from_both_variables(environ, capped):
    assert device.isa_cap_below_bf16(environ) == capped


def test_auto_chooses_fp32_on_a_bf16_cpu_capped_to_avx2(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t: fpu sse avx2 avx512f avx512_bf16\n")
    real_path = device.Path
    monkeypatch.setattr(device, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    cpu = torch.device("cpu")
    assert device.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert device.resolve_precision("auto", cpu) == "fp32"
    assert device.resolve_precision("bf16", cpu) == "bf16"      # an explicit choice is kept
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert device.resolve_precision("auto", cpu) == "fp32"
