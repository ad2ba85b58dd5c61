"""Our fast path against the reference pipeline written like the authors' code (lnl.accel.reference).

Same weights, same images: the vectorized data path gives the same inputs and bias
labels as the per-sample Dataset, and our network (grouped heads, ReLU/max-pool
swapped, channels-last; with and without the fused CPU kernels and the folded input
batch norm of lnl.accel.kernels) gives the same losses and gradients in fp32 — tolerance
rtol 1e-4, atol 1e-5 (only the summation order differs) — and the same predictions
after a few LNL steps.
"""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from conftest import assert_grad_close
from lnl.config import Config
from lnl.data.tensors import DeviceData
from lnl.losses import bias_ce, grad_reverse, neg_entropy
from lnl.methods import METHODS
from lnl.models import build_model
from lnl.accel.reference import OfficialColoredMnist, ReferenceLNL, copy_into

RTOL = 1e-4
# Gradients: 5e-4 of their norm plus 1e-6 (some are ~1e-4 in norm): long fp32 sums whose rounding depends on
# the thread count (conftest.assert_grad_close)
GRAD_RTOL, GRAD_FLOOR = 5e-4, 1e-6


def _pairs(ref: ReferenceLNL, model) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, reference grad, our grad) for every parameter; head grads concatenated like ours."""
    n, f, g, h = ref.net, model.f, model.g, model.h
    convs = [m for m in g.features if isinstance(m, torch.nn.Conv2d)]
    pairs = [("bn0.w", n.bn0.weight, f.bn0.weight), ("bn0.b", n.bn0.bias, f.bn0.bias),
             ("conv1.w", n.conv1.weight, f.conv1.weight), ("conv1.b", n.conv1.bias, f.conv1.bias),
             ("conv2.w", n.conv2.weight, f.conv2.weight), ("conv3.w", n.conv3.weight, convs[0].weight),
             ("conv4.w", n.conv4.weight, convs[1].weight), ("fc.w", n.fc.weight, g.fc.weight)]
    out = [(name, a.grad, b.grad) for name, a, b in pairs]
    heads = list(ref.heads)
    out.append(("h.conv1.w", torch.cat([p.pred_conv1.weight.grad for p in heads]), h.conv1.weight.grad))
    out.append(("h.bn.w", torch.cat([p.pred_bn1.weight.grad for p in heads]), h.bn.weight.grad))
    out.append(("h.conv2.w", torch.cat([p.pred_conv2.weight.grad for p in heads]), h.conv2.weight.grad))
    return out


@pytest.fixture(params=[False, True], ids=["eager", "cpu-kernels"])
def pair(cmnist, request):
    torch.manual_seed(0)
    ref = ReferenceLNL(lr=0.01, lambda_=0.01, mu=0.1)
    model = build_model("paper")
    copy_into(ref, model)
    for part in (model.f.conv1, model.f.conv2, model.g, model.h):
        part.to(memory_format=torch.channels_last)
    model.use_fused_kernels(request.param)  # lnl.accel.kernels (eager fallback where no C compiler)
    images, labels = cmnist.x("train")[:512], cmnist.y("train")[:512]
    dataset = OfficialColoredMnist(images, labels)
    ref_batches = [default_collate([dataset[i] for i in range(s, s + 128)]) for s in range(0, 512, 128)]
    data = DeviceData(cmnist, torch.device("cpu"), train_size=512, test_size=500)
    our_batches = list(data.batches("train", 128))
    return ref, model, ref_batches, our_batches, data


def test_data_path_matches_the_per_sample_dataset(pair):
    _, _, ref_batches, our_batches, _ = pair
    assert len(ref_batches) == len(our_batches) == 4  # 512 images in batches of 128, both pipelines
    for (xs, cls, ys), (x, y, bias) in zip(ref_batches, our_batches):
        assert torch.equal(bias.long(), cls) and torch.equal(y, ys)
        assert torch.allclose(x, xs, atol=1e-5)


def test_same_losses_and_gradients_on_one_batch_in_fp32(pair):
    ref, model, ref_batches, our_batches, _ = pair
    (xs, cls, ys), (x, y, bias) = ref_batches[0], our_batches[0]
    # The same small noise on both inputs: flat-colour digits give equal activations in a max-pool window, and
    # which of them takes the gradient depends on the kernel (layout, vector width). On a 2-core AVX2 EPYC the
    # two paths broke such ties differently, 1e-3 of the gradients' norm apart (both valid subgradients); with
    # the ties broken both are within 4e-6 of the reference run in float64.
    noise = 1e-2 * torch.randn(xs.shape, generator=torch.Generator().manual_seed(0))
    xs, x = xs + noise, x + noise
    # pass A: CE + lambda * negative entropy
    ce_r, ne_r = ref.losses_pass_a(xs, ys)
    (ce_r + 0.01 * ne_r).backward()
    feat = model.f(x)
    ce, ne = F.cross_entropy(model.g(feat), y), neg_entropy(model.h(feat))
    (ce + 0.01 * ne).backward()
    assert ce.item() == pytest.approx(ce_r.item(), rel=RTOL) and ne.item() == pytest.approx(ne_r.item(), rel=RTOL)
    for name, a, b in _pairs(ref, model):
        assert_grad_close(b, a, rel=GRAD_RTOL, floor=GRAD_FLOOR, msg=name)
    # pass B: bias cross-entropy through the reversal layer
    ref._zero()
    model.zero_grad(set_to_none=False)
    bl_r = ref.loss_pass_b(xs, cls)
    bl_r.backward()
    bl = bias_ce(model.h(grad_reverse(model.f(x), 0.1)), bias)
    bl.backward()
    assert bl.item() == pytest.approx(bl_r.item(), rel=RTOL)
    for name, a, b in _pairs(ref, model):
        assert_grad_close(b, a, rel=GRAD_RTOL, floor=GRAD_FLOOR, msg=name)


def test_same_predictions_after_a_few_lnl_steps(pair):
    ref, model, ref_batches, our_batches, data = pair
    cfg = Config(method="lnl", lr=0.01, precision="fp32")
    method = METHODS.get("lnl")(cfg, model, contextlib.nullcontext)
    ref.train()
    model.train()
    for _ in range(2):
        for (xs, cls, ys), (x, y, bias) in zip(ref_batches, our_batches):
            ref.step(xs, cls, ys)
            method.step(x, y, bias, epoch=0)
    ref.net.eval()
    model.eval()
    x_test = next(data.batches("test", 500))[0]
    with torch.no_grad():
        a = ref.net(x_test)[1]
        b = model.g(model.f(x_test))
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_benchmark_script_writes_its_table_and_json(cache_dir, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "scripts/benchmark.py", "--no-epoch", "--warmup", "1", "--steps", "2",
                           "--cache-dir", str(cache_dir), "--json", str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {(r["step"], r["pipeline"]): r for r in result["rows"]}
    assert set(rows) == {("baseline", "reference"), ("baseline", "ours"), ("lnl", "reference"), ("lnl", "ours")}
    for (step, pipeline), row in rows.items():
        assert row["images_per_s"] > 0 and row["peak_mem_mb"] > 0
        ref = rows[(step, "reference")]["images_per_s"]
        assert row["ratio"] == pytest.approx(row["images_per_s"] / ref)
    assert "| lnl | ours |" in proc.stdout and result["env"]["batch_size"] == 128


def test_benchmark_reports_a_failing_pipeline_instead_of_stopping():
    """A variant this machine can't run (e.g. a compile mode) becomes a row with its error."""
    from lnl.accel.bench import measure_all
    from lnl.accel.bench_suites import speed_table

    seen = []

    def broken(batch):
        raise RuntimeError("no such backend\nsecond line")

    pipelines = [("ok", seen.append, lambda: iter(range(1000))), ("broken", broken, lambda: iter(range(1000)))]
    out = measure_all(pipelines, torch.device("cpu"), warmup=2, steps=3, repeats=2, epoch=False)
    assert out["broken"] == {"error": "RuntimeError: no such backend"}
    assert out["ok"]["images_per_s"] > 0 and len(out["ok"]["images_per_s_rounds"]) == 2
    assert len(seen) == 2 + 3 * 2 + 3  # warm-up, timed rounds, the memory pass
    assert "failed: RuntimeError" in speed_table([{"step": "lnl", "pipeline": "broken", **out["broken"]}])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("method", ["lnl", "baseline"])
def test_cuda_graph_replay_matches_eager_steps(method, optimizer="sgd"):
    """The replayed training step (lnl.accel.cuda_graphs) makes the same updates as eager steps: same
    statistics and weights after eager warm-up, a capture, replays, a partial batch, a phase change
    (LNL's plain-CE warm-up epoch, then unlearning) and a learning-rate change. fp32, tolerance 1e-4."""
    from lnl.accel.cuda_graphs import CudaGraphStep

    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    device = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(n, 3, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen),
                torch.randint(0, 8, (n, 3, 14, 14), generator=gen).masked_fill_(
                    torch.rand(n, 3, 14, 14, generator=gen) < 0.5, 255).to(torch.uint8))
               for n in [32] * 7 + [9]]
    runs = {}
    for graphs in (False, True):
        torch.manual_seed(0)
        # Both runs use the graph-capturable optimizer (fused SGD): this compares replay against
        # eager execution, not two optimizer implementations.
        cfg = Config(method=method, optimizer=optimizer, precision="fp32", cuda_graphs=True, warmup_epochs=1,
                     lr=0.01, bias_lr=0.02, lambda_=0.5, mu=0.5)
        model = build_model("paper").to(device).to(memory_format=torch.channels_last)
        m = METHODS.get(method)(cfg, model, contextlib.nullcontext)
        step = CudaGraphStep(m, batch_size=32, warmup_steps=2) if graphs else m.step
        stats = []
        for epoch in range(2):
            for i, (x, y, bias) in enumerate(batches):
                for opt in m.optimizers.values():
                    opt.param_groups[0]["lr"] = cfg.lr * (1 + epoch + i / 10)
                out = step(x.to(device), y.to(device), bias.to(device), epoch)
                stats.append({k: v.item() for k, v in out.items()})
        if graphs:
            assert set(step.graphs) == ({"warmup", "unlearn"} if method == "lnl" else {"train"})
        runs[graphs] = stats, {k: v.detach().cpu() for k, v in model.state_dict().items()}
    (eager_stats, eager_w), (graph_stats, graph_w) = runs[False], runs[True]
    for a, b in zip(eager_stats, graph_stats):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    for key in eager_w:
        torch.testing.assert_close(graph_w[key].float(), eager_w[key].float(), rtol=1e-4, atol=1e-5, msg=key)


def test_cuda_graphs_only_replace_sgd_steps():
    """Adam runs stay eager (see lnl.accel.cuda_graphs); CPU runs are never graphed."""
    from lnl.accel.cuda_graphs import graphed_step

    for optimizer in ("sgd", "adam"):
        cfg = Config(method="lnl", optimizer=optimizer)
        method = METHODS.get("lnl")(cfg, build_model("paper"), contextlib.nullcontext)
        assert graphed_step(method, torch.device("cpu"), 128, True) == method.step
    assert graphed_step(method, torch.device("cuda"), 128, True) == method.step  # adam
