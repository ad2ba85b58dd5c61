"""Shared fixtures: one real Colored MNIST cache per session, W&B off unless a test turns it on."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lnl.accel.workers import thread_share  # imports no torch: the thread share below must come first

REPO = Path(__file__).resolve().parents[1]
# Under pytest-xdist (``make test`` runs two workers) each worker process, and every subprocess it starts,
# takes its share of the cores, as the harness's own workers do (lnl.accel.workers): two processes with torch's
# default thread count each on 2 cores ran 3.5x slower, not 2x (issue 14). A value set by hand is kept.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if XDIST_WORKERS > 1:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(thread_share(XDIST_WORKERS)))
# Small budgets used across the suite: a few thousand real images, one or two epochs.
TINY = {"train_size": 2000, "test_size": 1000, "val_eval_size": 1000, "epochs": 1, "progress": False,
        "batch_size": 100, "optimizer": "adam", "lr": 0.003}


def pretrain_recipe(tmp_path: Path, baseline_epochs: int = 2) -> str:
    """A recipe YAML whose LNL runs start from a short SGD baseline (``init_from``), for pretrained-start tests."""
    path = tmp_path / "protocol.yaml"
    path.write_text("all: {optimizer: sgd, momentum: 0.9, lr_schedule: step, lr_step_epochs: 1, lr_gamma: 0.1}\n"
                    f"baseline: {{epochs: {baseline_epochs}, lr: 0.01}}\n"
                    "lnl: {lr: 0.001, lr_step_epochs: 40, init_from: baseline}\n")
    return str(path)


def assert_grad_close(actual, expected, rel=1e-4, floor=5e-5, msg=""):
    """||actual - expected|| <= rel * ||expected|| + floor: gradients are long fp32 sums (batch x positions)
    whose rounding depends on the summation order, which changes with the thread count (one thread: 1.6e-4
    of the norm for a first-layer weight gradient, two threads: 3e-5). The floor covers gradients that are
    ~0 in theory (a bias right before a batch norm: 1.2e-5 of noise with one thread); a real mistake is
    orders of magnitude above both."""
    err = (actual.double() - expected.double()).norm().item()
    assert err <= rel * expected.double().norm().item() + floor, f"{msg}: |diff| {err:.3g}"


@pytest.fixture(autouse=True)
def _no_wandb_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A cache holding Colored MNIST at sigma^2 = 0.02 (generated once per session).

    Under pytest-xdist the workers share one folder (lnl.data.cache: if both build it at once, the first
    atomic rename wins and the other reads that copy). Set LNL_TEST_CACHE to a folder to reuse a cache
    across sessions.
    """
    from lnl.data.dataset import load_generated

    shared = tmp_path_factory.getbasetemp().parent / "cache" if XDIST_WORKERS > 1 else None
    folder = Path(os.environ.get("LNL_TEST_CACHE") or shared or tmp_path_factory.mktemp("cache"))
    load_generated(0.02, cache_dir=folder)
    return folder


@pytest.fixture(scope="session")
def cmnist(cache_dir):
    from lnl.data.dataset import load_generated

    return load_generated(0.02, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def mnist():
    from lnl.data.mnist import load_mnist

    return load_mnist(cache_dir="/nonexistent-lnl-test", download=False)


@pytest.fixture
def tiny_config(cache_dir, tmp_path):
    """A factory of small real-data configs writing their runs under tmp_path."""
    from lnl.config import Config

    def make(**overrides):
        values = {**TINY, "cache_dir": str(cache_dir), "runs_dir": str(tmp_path / "runs"), **overrides}
        return Config.from_dict(values)

    return make


def tiny_grid_yaml(path: Path, name: str, cache_dir: Path) -> Path:
    """A 4-run grid sweep YAML (baseline and gray x seeds 0, 1; 1 epoch on 500 images) for run_sweep.py."""
    path.write_text(f"""name: {name}
program: scripts/train.py
method: grid
metric:
  name: val_unbiased/acc
  goal: maximize
parameters:
  method:
    values: [baseline, gray]
  seed:
    values: [0, 1]
  epochs:
    value: 1
  train_size:
    value: 500
  test_size:
    value: 200
  val_eval_size:
    value: 200
  cache_dir:
    value: {cache_dir}
  wandb_mode:
    value: disabled
""")
    return path


class Lines:
    """A child's stdout (a text pipe), line by line, read by a thread into a queue: :meth:`until` waits for
    the event a child reports (e.g. an epoch line, printed once its checkpoint is saved) on the pipe instead
    of sleeping and polling, and times out instead of blocking when the child stays silent."""

    def __init__(self, proc) -> None:
        import queue
        import threading

        self.proc, self.seen, self._queue = proc, [], queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in iter(self.proc.stdout.readline, ""):
            self._queue.put(line)
        self._queue.put(None)  # end of output

    def until(self, needle: str | None, timeout: float = 300) -> list[str]:
        """Lines up to the first containing ``needle`` (``None``: up to the end of the output)."""
        import queue

        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{needle!r} never came in {timeout} s; last: {self.seen[-5:]}") from None
            if line is None:
                if needle is None:
                    return self.seen
                raise AssertionError(f"the child ended ({self.proc.wait()}) before {needle!r}; last: {self.seen[-5:]}")
            self.seen.append(line)
            if needle is not None and needle in line:
                return self.seen
