"""Speed, behind one door: everything that makes a run faster without changing what it computes.

The training loop (:mod:`lnl.training.loop`) imports this package at one place and calls it through three
functions: :func:`share_cores` (this process's share of the cores, before any data is loaded),
:func:`accelerate` (the layout this machine runs fastest) and :func:`training_step` (the method's step,
CUDA-graphed when asked). With ``--fast-path manual --channels-last false --cpu-kernels false
--cuda-graphs false`` the loop runs plain PyTorch.

=================  ==========================================================================
module             what it does
=================  ==========================================================================
``fast_path``      times the candidate layouts once per machine and caches the fastest
``kernels``        fused C kernels for the CPU's memory-bound ops (max-pool + ReLU, LNL's losses)
``cuda_graphs``    captures a whole training step as one CUDA graph
``workers``        each worker process's share of the cores (``LNL_WORKERS``)
``pool``           N worker processes on fixed slots (``lnl-run-sweep --jobs``)
``reference``      a pipeline in the manner of the authors' code, for the benchmark
``bench*``         ``lnl-benchmark``'s measurements and tables
=================  ==========================================================================
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch

    from lnl.config import Config
    from lnl.methods import Method


def share_cores(threads: int | None) -> dict[str, Any]:
    """This worker's share of the cores (:mod:`lnl.accel.workers`), set before data or torch threads exist;
    a bad ``LNL_WORKERS`` value is a ConfigError (one line)."""
    from lnl.accel.workers import WorkerEnvError, apply_share
    from lnl.config import ConfigError

    try:
        return apply_share(threads)
    except WorkerEnvError as err:
        raise ConfigError(None, str(err)) from None


def accelerate(cfg: "Config", device: "torch.device", build: Callable[..., Any], precision: str,
               n_train: int) -> tuple["Config", dict[str, Any]]:
    """``cfg`` with the layout this machine runs fastest (:func:`lnl.accel.fast_path.choose`: timed once per
    machine and cached; the numbers do not change), and what the run record says about the speed path."""
    import lnl.accel.fast_path as fast_path

    cfg, layout = fast_path.choose(cfg, device, build, precision, n_train=n_train)
    return cfg, {"cpu_kernels": cpu_kernels_status(cfg, device), "fast_path": layout}


def training_step(method: "Method", device: "torch.device", cfg: "Config") -> Callable[..., Any]:
    """The method's training step, captured as one CUDA graph when ``cfg.cuda_graphs`` asks (and
    ``torch.compile`` is off); otherwise ``method.step`` itself."""
    from lnl.accel.cuda_graphs import graphed_step

    return graphed_step(method, device, cfg.batch_size, cfg.cuda_graphs and not cfg.compile)


def cpu_kernels_status(cfg: "Config", device: "torch.device") -> str:
    """Whether this run uses the fused CPU kernels (:mod:`lnl.accel.kernels`), for the run record."""
    if device.type != "cpu" or not cfg.cpu_kernels or cfg.compile:
        return "off"
    import lnl.accel.kernels as kernels

    return kernels.describe()
