"""Replay a method's whole training step as one CUDA graph.

The paper's network is small: at batch 128 a GPU finishes each kernel of an LNL
step long before Python has launched the next, so an eager step is bound by
launch overhead (measured on an H200: 4.2 s per 60,000-image LNL epoch, about
9 ms per step, whatever the precision). Capturing the step once (both passes,
backward and both optimizer steps) and replaying it launches it all at once.

Contract (the pattern of PyTorch's "whole-network capture"):

* Per phase of the method (LNL's plain-CE warm-up epochs and its unlearning
  epochs are different steps) the first ``warmup_steps`` steps run eagerly on a
  side stream (lazy state: momentum buffers, cuDNN plans); the next full batch is
  captured and every later full batch of that phase is a replay. Replays run the
  same kernels on the same values as eager steps would.
* Batches of another size (the last, partial batch of an epoch) run eagerly.
* The learning rate stays a Python float that the scheduler sets as usual; the
  captured optimizer (fused SGD, which accepts a tensor learning rate) reads it
  from a one-element device tensor refreshed before each replay.
* SGD only. With Adam (capturable) the replayed steps drifted from eager ones by
  1e-4 relative within 16 steps on an H200 while SGD matched, so Adam runs stay
  eager until that is understood.
* Gradients are freed before a capture so that everything the graph writes lives
  in its private memory pool and stays valid for its replays.
"""
from __future__ import annotations

from typing import Any

import torch

from lnl.methods import Method, Stats


class _Captured:
    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: tuple[torch.Tensor, ...], outputs: Stats,
                 lrs: list[tuple[dict[str, Any], torch.Tensor]]) -> None:
        self.graph, self.inputs, self.outputs, self.lrs = graph, inputs, outputs, lrs


class CudaGraphStep:
    """Callable like ``method.step``; returns fresh tensors (safe to keep across steps)."""

    def __init__(self, method: Method, batch_size: int, warmup_steps: int = 3) -> None:
        self.method, self.batch_size, self.warmup_steps = method, batch_size, warmup_steps
        self.graphs: dict[str, _Captured] = {}
        self.eager_steps: dict[str, int] = {}
        self.side = torch.cuda.Stream()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> Stats:
        if x.shape[0] != self.batch_size:
            return self.method.step(x, y, bias, epoch)
        phase = self.method.phase(epoch)
        captured = self.graphs.get(phase)
        if captured is None:
            done = self.eager_steps.get(phase, 0)
            if done < self.warmup_steps:
                self.eager_steps[phase] = done + 1
                return self._side_stream_step(x, y, bias, epoch)
            captured = self.graphs[phase] = self._capture(x, y, bias, epoch)
        for static, value in zip(captured.inputs, (x, y, bias)):
            static.copy_(value)
        for group, lr in captured.lrs:
            lr.fill_(group["lr"])
        captured.graph.replay()
        return {k: v.clone() for k, v in captured.outputs.items()}

    def _side_stream_step(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> Stats:
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            stats = self.method.step(x, y, bias, epoch)
        torch.cuda.current_stream().wait_stream(self.side)
        return stats

    def _capture(self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor, epoch: int) -> _Captured:
        inputs = (x.clone(), y.clone(), bias.clone())
        lrs = []
        for opt in self.method.optimizers.values():
            opt.zero_grad(set_to_none=True)
            for group in opt.param_groups:
                lrs.append((group, torch.tensor(float(group["lr"]), device=x.device)))
        floats = [group["lr"] for group, _ in lrs]
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        try:
            for group, lr in lrs:
                group["lr"] = lr
            with torch.cuda.graph(graph):
                outputs = self.method.step(*inputs, epoch)
        finally:
            for (group, _), value in zip(lrs, floats):
                group["lr"] = value
        return _Captured(graph, inputs, outputs, lrs)


def graphed_step(method: Method, device: torch.device, batch_size: int, enabled: bool) -> Any:
    """``method.step``, or its CUDA-graph replay on a GPU when ``enabled`` and the optimizer is SGD."""
    if enabled and device.type == "cuda" and method.cfg.optimizer == "sgd" and method.graphable:
        return CudaGraphStep(method, batch_size)
    return method.step
