"""The fused CPU kernels (lnl.accel.kernels) and the folded input batch norm against the eager ops.

fp32: the max-pool + ReLU kernel is exact (values and gradients, ties included). Batch norm +
ReLU and the folded bn0 agree to 1e-5 elementwise on values and to 1e-4 of the gradient's norm
on gradients: summation order differs, and where a pre-activation is within rounding of 0 the
ReLU (or a near-tie in a pooling window) can route one element's gradient differently.
bf16: within two bf16 roundings (the kernels sum in float and round once; eager rounds more
often). Without a C compiler everything runs eager.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_grad_close
from lnl.accel import kernels
from lnl.models import build_model

needs_kernels = pytest.mark.skipif(not kernels.available(), reason=f"CPU kernels: {kernels.describe()}")
CL = torch.channels_last


def _input(shape, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    x[:, :, : shape[2] // 4] = 0.25  # plateaus: ties inside pooling windows
    x[:, :, -3:, -3:] = -1.0  # windows where the ReLU is off
    return x.to(dtype).contiguous(memory_format=CL)


def _grads(fn, x, grad):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    (g,) = torch.autograd.grad(y, x, grad)
    return y, g


@needs_kernels
@pytest.mark.parametrize("shape", [(8, 32, 28, 28), (3, 5, 13, 11)])
def test_max_pool_relu_is_exact_in_fp32(shape):
    x = _input(shape, torch.float32)
    grad = torch.randn(shape[0], shape[1], (shape[2] - 1) // 2 + 1, (shape[3] - 1) // 2 + 1,
                       generator=torch.Generator().manual_seed(1))
    y, g = _grads(kernels.max_pool_relu, x, grad)
    y_ref, g_ref = _grads(lambda t: F.relu(F.max_pool2d(t, 3, 2, 1)), x, grad)
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)
    assert (g == 0).float().mean() > 0.5  # most positions get no gradient: the test sees the routing


@needs_kernels
def test_max_pool_relu_in_bf16_within_one_rounding():
    x = _input((8, 32, 28, 28), torch.bfloat16)
    grad = torch.randn(8, 32, 14, 14, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    y, g = _grads(kernels.max_pool_relu, x, grad)
    y_ref, g_ref = _grads(lambda t: F.relu(F.max_pool2d(t, 3, 2, 1)), x, grad)
    assert torch.equal(y, y_ref)
    # up to 4 gradients (|g| < 4) meet in one position; eager rounds each partial sum to bf16
    torch.testing.assert_close(g.float(), g_ref.float(), rtol=2**-6, atol=2**-5)
    assert (g == g_ref).float().mean() > 0.99


@needs_kernels
@pytest.mark.parametrize("arch", ["paper", "paper_bn"])
def test_fused_network_matches_eager_network_in_fp32(arch):
    """f (folded bn0, pool kernel, BN kernel with paper_bn) and h: same outputs and gradients."""
    torch.manual_seed(0)
    eager = build_model(arch)
    with torch.no_grad():
        eager.f.bn0.weight.uniform_(0.5, 1.5)
        eager.f.bn0.bias.uniform_(-0.5, 0.5)
    for part in (eager.f.conv1, eager.f.conv2, eager.g, eager.h):
        part.to(memory_format=CL)
    fused = copy.deepcopy(eager)
    fused.use_fused_kernels(True)
    x = torch.rand(32, 3, 28, 28)
    outs = []
    for model in (eager, fused):
        feat = model.f(x)
        logits, bias_logits = model.g(feat), model.h(feat)
        (logits.square().sum() + bias_logits.square().mean()).backward()
        outs.append((logits, bias_logits))
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(eager.named_parameters(), fused.parameters()):
        assert_grad_close(q.grad, p.grad, msg=name)
    for (name, buf), other in zip(eager.named_buffers(), fused.buffers()):
        torch.testing.assert_close(other, buf, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_without_a_compiler_everything_runs_eager(tmp_path):
    code = ("import warnings, torch; from lnl.accel import kernels; from lnl.models import build_model\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always'); ok = kernels.available()\n"
            "m = build_model('paper'); m.use_fused_kernels(True); m.f.to(memory_format=torch.channels_last)\n"
            "m.h(m.f(torch.rand(4, 3, 28, 28))).sum().backward()\n"
            "print(ok, kernels.describe(), len(w))\n")
    env = {**os.environ, "CC": "/nonexistent/cc", "LNL_KERNEL_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "False" and "unavailable: no C compiler" in proc.stdout
    assert proc.stdout.split()[-1] == "1"  # one warning, then silence


@pytest.mark.slow
@needs_kernels
def test_kernels_share_torchs_one_openmp_runtime_and_its_thread_count():
    """After the kernels load, the process holds one OpenMP runtime (threadpoolctl, and the mapped
    libraries), and torch.set_num_threads sets the kernels' thread count too."""
    code = ("import torch; from lnl.accel import kernels; from threadpoolctl import threadpool_info\n"
            "assert kernels.available(), kernels.describe()\n"
            "omp = [i for i in threadpool_info() if i['internal_api'] == 'openmp']\n"
            "maps = {ln.split()[-1] for ln in open('/proc/self/maps') if 'omp' in ln.rsplit('/', 1)[-1]}\n"
            "seen = []\n"
            "for n in (1, 2, 1):\n"
            "    torch.set_num_threads(n); seen.append(kernels.max_threads())\n"
            "print(len(omp), len(maps), seen)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("[")[0].split() == ["1", "1"], proc.stdout
    assert proc.stdout.strip().endswith("[1, 2, 1]"), proc.stdout


@pytest.mark.slow
@needs_kernels
def test_kernels_built_without_openmp_warn_that_they_run_single_threaded(tmp_path):
    """A compiler without -fopenmp (Apple clang): the kernels still load, single-threaded, with a warning."""
    code = ("import warnings, torch; from lnl.accel import kernels\n"
            "kernels.FLAG_SETS = (['-O3', '-ffp-contract=off'],)\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always'); ok = kernels.available()\n"
            "torch.set_num_threads(2)\n"
            "print(ok, kernels.max_threads(), '|'.join(str(x.message) for x in w))\n")
    env = {**os.environ, "LNL_KERNEL_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ok, threads, message = proc.stdout.strip().split(" ", 2)
    assert (ok, threads) == ("True", "1") and "without OpenMP" in message and "single-threaded" in message


@pytest.mark.slow
@needs_kernels
def test_concurrent_first_builds_share_one_cache(tmp_path):
    """Sweep workers starting together: each builds or finds the library; all load a whole file."""
    code = "from lnl.accel import kernels; assert kernels.available(), kernels.describe(); print(kernels.build()[0])"
    env = {**os.environ, "LNL_KERNEL_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1
    assert [p.name for p in tmp_path.rglob("*.so")] == ["liblnl_kernels.so"]  # no temporary files left


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_kernels_match_the_eager_losses(dtype):
    """neg_entropy and bias_ce (lnl.losses) by one C pass each: same values and gradients, with
    saturated logits, ignored background pixels and a head with no counted pixel."""
    from lnl.losses import bias_ce, neg_entropy

    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(16, 3, 8, 14, 14, generator=gen) * 4)
    logits[0, 0, 0] = 60.0  # one bin dominates: p underflows to 0 elsewhere
    logits = logits.to(dtype)
    labels = torch.randint(0, 8, (16, 3, 14, 14), generator=gen).masked_fill_(
        torch.rand(16, 3, 14, 14, generator=gen) < 0.6, 255).to(torch.uint8)
    labels[:, 2] = 255  # the blue head has nothing to count
    for loss in (lambda z, fused: neg_entropy(z, fused=fused), lambda z, fused: bias_ce(z, labels, fused=fused)):
        z_fused, z_eager = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
        a, b = loss(z_fused, True), loss(z_eager, False)
        (0.7 * a).backward()
        (0.7 * b).backward()
        assert a.dtype == b.dtype == torch.float32
        assert a.item() == pytest.approx(b.item(), rel=1e-5, abs=1e-6)
        assert z_fused.grad.dtype == dtype and torch.isfinite(z_fused.grad).all()
        torch.testing.assert_close(z_fused.grad.float(), z_eager.grad.float(), atol=1e-7,
                                   rtol=1e-2 if dtype == torch.bfloat16 else 1e-4)
    # the kernel path was taken (not the eager fallback)
    assert type(neg_entropy(logits.requires_grad_(True), fused=True).grad_fn).__name__ == "_NegEntropyBackward"


def test_ci_builds_the_kernels():
    """On CI (a machine with gcc) the kernels must build: otherwise the tests above would be skipped."""
    if os.environ.get("CI") != "true":
        pytest.skip("only on CI")
    assert kernels.available(), kernels.describe()


@needs_kernels
def test_loss_kernels_are_checked_against_the_eager_losses_passed_in(monkeypatch):
    """lnl.accel.kernels never imports lnl.losses: the eager losses come in through verify_losses, once per
    process, and a kernel that disagrees with them is not used (with a warning)."""
    from lnl import losses

    monkeypatch.setattr(kernels, "_losses_ok", None)
    assert kernels.verify_losses(losses.neg_entropy, losses.bias_ce) is True
    monkeypatch.setattr(kernels, "_losses_ok", None)
    with pytest.warns(UserWarning, match="disagree"):
        assert kernels.verify_losses(lambda t: losses.neg_entropy(t) * 1.01, losses.bias_ce) is False
    z = torch.randn(2, 3, 8, 4, 5)
    with torch.no_grad():
        assert torch.equal(losses.neg_entropy(z, fused=True), losses.neg_entropy(z))  # the eager path now
