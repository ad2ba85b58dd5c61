"""Fused C kernels for the CPU hot spots of the training step, with eager fallbacks.

Once the convolutions run in bf16 on AMX, the memory-bound parts of the paper's
network dominate a CPU step: each eager op is another pass over a large
activation. One C kernel per direction replaces each chain, with the same values
and gradients (``tests/test_kernels.py``):

* :func:`max_pool_relu` (``pool_relu.c``): f's max-pool + ReLU at 28x28, with
  one-byte window offsets instead of int64 indices and a gather backward instead
  of a zero-filled scatter;
* :func:`neg_entropy`, :func:`bias_ce` (``bias_losses.c``): LNL's two losses on h's
  logits, one pass each that also writes the gradient (used by ``lnl.losses``, which
  passes its eager losses to :func:`verify_losses`: nothing here imports upward).

The C sources are compiled on first use with the system C compiler (``$CC``,
else ``cc``) into a per-user cache (``$LNL_KERNEL_CACHE``, else
``~/.cache/lnl/accel/kernels``), keyed by the source, flags, compiler and CPU, and
loaded with :mod:`ctypes`: no Python headers, ninja or torch extension build is
needed, and a build takes about a second (1.3 s here). The library is written under a
temporary name and renamed into place, so concurrent processes (sweep workers)
never load a half-written file. Without a working compiler, or for tensors the
kernel does not cover (CUDA, NCHW, fp16, ...), the eager PyTorch ops run
instead; ``Config.cpu_kernels`` turns the kernels off.

The kernels use OpenMP. PyTorch's wheels ship ``libgomp.so.1``; the dynamic
loader resolves our library's ``libgomp.so.1`` to the copy torch already loaded,
so both share one thread pool and ``torch.set_num_threads`` applies to both
(:func:`max_threads`; checked with threadpoolctl in ``tests/test_kernels.py``). A
compiler without ``-fopenmp`` (Apple clang) builds them single-threaded, with a warning.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from lnl.data.colored import IGNORE_INDEX

HERE = Path(__file__).parent
SOURCES = [HERE / "pool_relu.c", HERE / "bias_losses.c"]
HEADERS = [HERE / "common.h"]
# -ffp-contract=off: no fused multiply-adds, so the backward recomputes the forward's ReLU mask bit for bit.
FLAG_SETS = tuple([*flags, "-ffp-contract=off"] for flags in
                  (["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"]))

_lib: ctypes.CDLL | None = None
_status: str | None = None  # None: not built yet
_losses_ok: bool | None = None  # None: the loss kernels not checked yet (verify_losses)


def _cpu_id() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))]
    return platform.machine() + "\n" + "\n".join(dict.fromkeys(lines))


def cache_dir() -> Path:
    """Where built libraries live: ``$LNL_KERNEL_CACHE``, else ``~/.cache/lnl/accel/kernels`` (else a temp folder)."""
    if os.environ.get("LNL_KERNEL_CACHE"):
        return Path(os.environ["LNL_KERNEL_CACHE"])
    home = Path.home() / ".cache" / "lnl" / "kernels"
    try:
        home.mkdir(parents=True, exist_ok=True)
        return home
    except OSError:
        return Path(tempfile.gettempdir()) / f"lnl-kernels-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _compiler() -> str | None:
    cc = os.environ.get("CC", "cc")
    return shutil.which(cc)


def build() -> tuple[Path | None, str]:
    """Compile the kernels, or find them in the cache: (library path or None, what happened)."""
    cc = _compiler()
    if cc is None:
        return None, f"no C compiler ({os.environ.get('CC', 'cc')!r} not found)"
    source = b"\0".join(path.read_bytes() for path in SOURCES + HEADERS)
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"{cc} --version failed: {err}"
    errors = []
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(), version.encode(),
                                         _cpu_id().encode()])).hexdigest()[:16]
        path = cache_dir() / key / "liblnl_kernels.so"
        what = f"{Path(cc).name} {' '.join(flags)}"
        if path.is_file():
            return path, what
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
        except OSError as err:
            return None, f"cache folder not writable: {err}"
        os.close(fd)
        cmd = [cc, *flags, "-shared", "-fPIC", f"-I{HERE}", *map(str, SOURCES), "-o", tmp, "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            os.replace(tmp, path)  # atomic: another process sees no file or the whole file
            return path, what
        os.unlink(tmp)
        errors.append(f"{' '.join(cmd)}: {proc.stderr.strip()[:300]}")
    return None, "compilation failed:\n" + "\n".join(errors)


def _declare(lib: ctypes.CDLL) -> None:
    ptr, i = ctypes.c_void_p, ctypes.c_int
    lib.lnl_max_threads.argtypes, lib.lnl_max_threads.restype = [], i
    for dtype in ("bf16", "f32"):
        for name in (f"lnl_pool_relu_{dtype}_fwd", f"lnl_pool_relu_{dtype}_bwd"):
            getattr(lib, name).argtypes = [ptr, ptr, ptr] + [i] * 6
            getattr(lib, name).restype = i
        getattr(lib, f"lnl_losses_{dtype}_neg_entropy").argtypes = [ptr, ptr, ctypes.c_long, i, i, ptr]
        getattr(lib, f"lnl_losses_{dtype}_bias_ce").argtypes = [ptr, ptr, ptr, ctypes.c_long, i, i, i, ptr, ptr]
        getattr(lib, f"lnl_losses_{dtype}_scale_grad").argtypes = [ptr, ptr, ptr, ctypes.c_long, ctypes.c_long]


def library() -> ctypes.CDLL | None:
    """The loaded kernel library (built on first call), or None where it can't be built or fails its check."""
    global _lib, _status
    if _status is None:
        path, _status = build()
        if path is not None:
            try:
                lib = ctypes.CDLL(str(path))
                _declare(lib)
                _lib = lib
                problem = _self_check()
            except (OSError, AttributeError) as err:
                problem = f"could not load {path}: {err}"
            if problem:
                _lib, _status = None, problem
        if _lib is None:
            warnings.warn(f"lnl: CPU kernels unavailable, using eager PyTorch ops: {_status}", stacklevel=2)
        elif "-fopenmp" not in _status:
            warnings.warn(f"lnl: CPU kernels built without OpenMP ({_status}; e.g. Apple clang has no -fopenmp): "
                          "they run single-threaded, torch's ops keep their threads", stacklevel=2)
    return _lib


def max_threads() -> int | None:
    """Threads the kernels' parallel regions use now (None without the library): with OpenMP, the
    ``torch.set_num_threads`` value, since the kernels share torch's OpenMP runtime; 1 without it."""
    lib = library()
    return None if lib is None else int(lib.lnl_max_threads())


def describe() -> str:
    """How the kernels were built (flags), or why they are not used; for run records."""
    library()
    return ("built: " if _lib is not None else "unavailable: ") + (_status or "")


def _self_check() -> str | None:
    """The layer kernel on a small input against the eager ops (guards against a miscompiled library).
    The loss kernels are checked by :func:`verify_losses`, against the eager losses lnl.losses passes in."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 9, 7, generator=gen).contiguous(memory_format=torch.channels_last)
    checks = [(x, lambda t: _MaxPoolReLU.apply(t), lambda t: F.relu(F.max_pool2d(t, 3, 2, 1)))]
    with torch.enable_grad():  # the first use may come under no_grad (an evaluation, a method's extra forward)
        agree = _agree(checks, gen)
    return None if agree else "the built library disagrees with the eager ops on a test input"


def verify_losses(neg_entropy: Callable[[torch.Tensor], torch.Tensor],
                  bias_ce: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Whether the loss kernels are usable: the library loads and, checked once per process on a small
    input, its two losses match ``neg_entropy`` and ``bias_ce``, the eager losses of :mod:`lnl.losses`
    (passed in: this module sits below lnl.losses and never imports it). Warns once when they disagree."""
    global _losses_ok
    if _losses_ok is None:
        if not available():
            _losses_ok = False
            return False
        gen = torch.Generator().manual_seed(1)
        z = torch.randn(2, 3, 8, 4, 5, generator=gen)
        labels = torch.randint(0, 8, (2, 3, 4, 5), generator=gen).masked_fill_(
            torch.rand(2, 3, 4, 5, generator=gen) < 0.3, IGNORE_INDEX).to(torch.uint8)
        _losses_ok = _agree([(z, lambda t: _NegEntropy.apply(t), neg_entropy),
                             (z, lambda t: _BiasCE.apply(t, labels), lambda t: bias_ce(t, labels))], gen)
        if not _losses_ok:
            warnings.warn("lnl: the loss kernels disagree with the eager losses on a test input; "
                          "using the eager losses", stacklevel=2)
    return _losses_ok


def _agree(checks: list[tuple[torch.Tensor, Callable, Callable]], gen: torch.Generator) -> bool:
    """Each (input, fused, eager): same values and input gradients (rtol 1e-4, atol 1e-5)."""
    for inputs, fused, eager in checks:
        inputs = inputs.detach().requires_grad_(True)
        a, b = fused(inputs), eager(inputs)
        grad = torch.randn(a.shape, generator=gen)
        (ga,) = torch.autograd.grad(a, inputs, grad)
        (gb,) = torch.autograd.grad(b, inputs, grad)
        if not (torch.allclose(a, b, rtol=1e-4, atol=1e-5) and torch.allclose(ga, gb, rtol=1e-4, atol=1e-5)):
            return False
    return True


def available() -> bool:
    return library() is not None


_DTYPES = {torch.bfloat16: "bf16", torch.float32: "f32"}
# Sizes the C sources keep in stack buffers: LNL_MAX_C (common.h), MAX_K and MAX_HEADS (bias_losses.c).
MAX_CHANNELS, MAX_BINS, MAX_HEADS = 1024, 64, 16


def _pooled(size: int) -> int:
    return (size + 2 - 3) // 2 + 1


class _MaxPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, c, h, w = x.shape
        ho, wo = _pooled(h), _pooled(w)
        y = torch.empty((n, c, ho, wo), dtype=x.dtype, memory_format=torch.channels_last)
        off = torch.empty((n, c, ho, wo), dtype=torch.uint8, memory_format=torch.channels_last)
        fn = getattr(library(), f"lnl_pool_relu_{_DTYPES[x.dtype]}_fwd")
        if fn(x.data_ptr(), y.data_ptr(), off.data_ptr(), n, h, w, c, ho, wo):
            raise RuntimeError(f"lnl kernel: {c} channels is more than the kernel supports")
        ctx.save_for_backward(off)
        ctx.in_hw = (h, w)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (off,) = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        n, c, ho, wo = grad.shape
        h, w = ctx.in_hw
        gx = torch.empty((n, c, h, w), dtype=grad.dtype, memory_format=torch.channels_last)
        getattr(library(), f"lnl_pool_relu_{_DTYPES[grad.dtype]}_bwd")(
            grad.data_ptr(), off.data_ptr(), gx.data_ptr(), n, h, w, c, ho, wo)
        return gx


def fused_ok(x: torch.Tensor) -> bool:
    """Whether the C kernel covers ``x``: a CPU, channels-last, bf16/fp32 (N, C, H, W) tensor."""
    return (x.device.type == "cpu" and x.dim() == 4 and x.dtype in _DTYPES and x.shape[1] <= MAX_CHANNELS
            and x.is_contiguous(memory_format=torch.channels_last) and available())


def max_pool_relu(x: torch.Tensor, fused: bool = True) -> torch.Tensor:
    """``relu(max_pool2d(x, 3, stride=2, padding=1))``; the C kernel where it applies (``fused``)."""
    if fused and fused_ok(x):
        return _MaxPoolReLU.apply(x)
    return F.relu(F.max_pool2d(x, 3, 2, 1))


def uses_batch_statistics(bn: torch.nn.BatchNorm2d) -> bool:
    """A batch norm in training mode, affine, updating its running statistics with a momentum: the
    case models.FeatureExtractor's folded input batch norm reproduces."""
    return bn.training and bn.affine and bn.track_running_stats and bn.momentum is not None


def _as_double(t: torch.Tensor) -> float:
    return float(t.item()) if isinstance(t, torch.Tensor) else float(t)


class _NegEntropy(torch.autograd.Function):
    """lnl.losses.neg_entropy in one pass that also writes the (unscaled) gradient."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, heads, bins, h, w = logits.shape
        grad = torch.empty(logits.shape, dtype=torch.float32)
        total = ctypes.c_double()
        if getattr(library(), f"lnl_losses_{_DTYPES[logits.dtype]}_neg_entropy")(
                logits.data_ptr(), grad.data_ptr(), n * heads, bins, h * w, ctypes.byref(total)):
            raise RuntimeError(f"lnl kernel: {bins} bins is more than the kernel supports")
        count = n * heads * h * w
        ctx.save_for_backward(grad)
        ctx.plane_scale, ctx.dtype = torch.full((n * heads,), 1.0 / max(count, 1)), logits.dtype
        return torch.tensor(total.value / max(count, 1), dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return _scaled(grad, ctx.plane_scale * _as_double(grad_out), ctx.dtype)


class _BiasCE(torch.autograd.Function):
    """lnl.losses.bias_ce in one pass that also writes the (unscaled) gradient."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, heads, bins, h, w = logits.shape
        grad = torch.empty(logits.shape, dtype=torch.float32)
        loss, count = torch.zeros(heads, dtype=torch.float64), torch.zeros(heads, dtype=torch.int64)
        if getattr(library(), f"lnl_losses_{_DTYPES[logits.dtype]}_bias_ce")(
                logits.data_ptr(), labels.data_ptr(), grad.data_ptr(), n * heads, bins, h * w, heads,
                loss.data_ptr(), count.data_ptr()):
            raise RuntimeError(f"lnl kernel: {bins} bins or {heads} heads is more than the kernel supports")
        per_head = 1.0 / count.clamp_min(1).double()
        ctx.save_for_backward(grad)
        ctx.plane_scale, ctx.dtype = per_head.float().repeat(n), logits.dtype  # plane b is head b % heads
        return (loss * per_head).sum().float()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return _scaled(grad, ctx.plane_scale * _as_double(grad_out), ctx.dtype), None


def _scaled(grad: torch.Tensor, plane_scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``grad * plane_scale[plane]`` in ``dtype``, one pass."""
    out = torch.empty(grad.shape, dtype=dtype)
    planes = plane_scale.numel()
    getattr(library(), f"lnl_losses_{_DTYPES[dtype]}_scale_grad")(
        grad.data_ptr(), plane_scale.contiguous().data_ptr(), out.data_ptr(), planes, grad.numel() // planes)
    return out


def losses_ok(logits: torch.Tensor, labels: torch.Tensor | None = None) -> bool:
    """Whether the loss kernels cover these (N, heads, bins, H, W) logits (and (N, heads, H, W) labels);
    the caller also checks :func:`verify_losses` once."""
    return (logits.device.type == "cpu" and logits.dim() == 5 and logits.dtype in _DTYPES
            and logits.is_contiguous() and logits.shape[2] <= MAX_BINS and logits.shape[1] <= MAX_HEADS
            and (labels is None or (labels.dtype == torch.uint8 and labels.is_contiguous()
                                    and labels.shape == logits.shape[:2] + logits.shape[3:]))
            and available())


def neg_entropy(logits: torch.Tensor) -> torch.Tensor:
    """:func:`lnl.losses.neg_entropy` by the C kernel; call through lnl.losses (which checks losses_ok)."""
    return _NegEntropy.apply(logits)


def bias_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """:func:`lnl.losses.bias_ce` by the C kernel; call through lnl.losses (which checks losses_ok)."""
    return _BiasCE.apply(logits, labels)
