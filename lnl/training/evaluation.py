"""Scoring a network: accuracy per split, the confusion matrix, a run's final and best values, the epoch line."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from lnl.config import Config
from lnl.data.tensors import DeviceData
from lnl.losses import bias_correct
from lnl.models import LNLNet


# evaluation
@torch.no_grad()
def evaluate(model: LNLNet, data: DeviceData, split: str, autocast: Callable[[], Any],
             batch_size: int = 500, bias_head: bool = True) -> dict[str, Any]:
    """Accuracy, predictions and (if ``bias_head``) the bias head's pixel accuracy on one split."""
    was_training = model.training
    model.eval()
    preds, correct_bias, counted_bias = [], 0, 0
    with autocast():
        for x, _, bias in data.batches(split, batch_size):
            feat = model.f(x)
            preds.append(model.g(feat).argmax(dim=1))
            if bias_head:
                c, n = bias_correct(model.h(feat), bias)
                correct_bias, counted_bias = correct_bias + c, counted_bias + n
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=data.device)
    labels = data[split].y
    acc = (pred == labels).float().mean().item() if len(labels) else float("nan")
    bias_acc = (correct_bias / max(int(counted_bias), 1)) if counted_bias else float("nan")
    return {"acc": acc, "pred": pred.cpu().numpy(), "bias_acc": float(bias_acc)}


# what evaluate_splits (lnl.training.loop) returns: None for each in an epoch that is not scored
SCORE_KEYS = ("bias/acc", "bias/acc_biased", "val_biased/acc", "val_unbiased/acc", "test/acc", "test/pred")


def scored_epoch(cfg: Config, epoch: int) -> bool:
    """Whether ``epoch`` (0-based) is scored on the validation and test splits: every ``eval_every``-th and the
    last (``eval_every`` 0: the last only). Scoring does not touch the weights, the optimizers or the batch
    order, so a run trains the same whichever epochs it scores."""
    last = epoch + 1 == cfg.epochs
    return last or (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0)


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, n: int = 10) -> list[list[int]]:
    """Rows: true class, columns: predicted class."""
    return np.bincount(labels * n + pred, minlength=n * n).reshape(n, n).tolist()


def summary(epochs: list[dict[str, Any]], confusion: dict[str, Any], status: str) -> dict[str, Any]:
    """Final and best values: the record's ``final`` and the W&B run summary."""
    if not epochs:
        return {}
    last = epochs[-1]
    final = {k: v for k, v in last.items() if isinstance(v, (int, float)) and not k.startswith("time/")}
    final["epochs_completed"] = len(epochs)
    for key in ("val_biased/acc", "val_unbiased/acc"):
        values = [(e.get(key), e["epoch"]) for e in epochs if e.get(key) is not None and math.isfinite(e[key])]
        if values:
            best, epoch = max(values, key=lambda t: (t[0], -t[1]))  # first epoch reaching the max
            final[f"best/{key}"] = best
            final[f"best/{key.split('/')[0]}/epoch"] = epoch
    matrix = confusion.get(str(last["epoch"]))
    if matrix is not None:
        final["test/confusion"] = matrix
        cm = np.asarray(matrix, dtype=np.float64)
        final["test/per_class_acc"] = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).round(6).tolist()
    return final


def epoch_line(cfg: Config, m: dict[str, Any]) -> str:
    def fmt(key: str, digits: int = 4) -> str:
        v = m.get(key)
        return f"{v:.{digits}f}" if isinstance(v, float) else "-"

    return (f"epoch {m['epoch']}/{cfg.epochs}  ce {fmt('train/ce')}  entropy {fmt('train/entropy', 3)}  "
            f"bias_loss {fmt('bias/loss', 3)}  bias_acc {fmt('bias/acc', 3)}  val_biased {fmt('val_biased/acc')}  "
            f"val_unbiased {fmt('val_unbiased/acc')}  test {fmt('test/acc')}  "
            f"({m['time/epoch_s']:.1f}s, {m['throughput']:.0f} img/s)")
