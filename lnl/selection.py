"""Model-selection rules: which epoch of a run a published number reads.

Each rule picks one epoch from a run's per-epoch metrics (the record's ``epochs``):

- ``last``: the final epoch;
- ``val_biased``: the best ``val_biased/acc`` (no unbiased data used);
- ``val_unbiased``: the best ``val_unbiased/acc`` (held-out training images recolored at random: it assumes
  unbiased validation data).

No rule ever looks at the test set; ties go to the earliest epoch. An epoch without a test accuracy is never
picked. The report (:mod:`lnl.report.tables`) states the rules in full; training uses
:func:`selectable_epochs` to keep only the confusion matrices a rule can ever read.
"""
from __future__ import annotations

import math
from typing import Any

RULES = ("last", "val_biased", "val_unbiased")
RULE_METRIC = {"last": "val_biased/acc", "val_biased": "val_biased/acc", "val_unbiased": "val_unbiased/acc"}


def select_epoch(epochs: list[dict[str, Any]], rule: str) -> dict[str, Any] | None:
    """The epoch dict a rule picks from one run's epochs (None if it has none)."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; rules: {', '.join(RULES)}")
    usable = [e for e in epochs if e.get("test/acc") is not None]
    if not usable:
        return None
    if rule == "last":
        return max(usable, key=lambda e: e["epoch"])
    key = RULE_METRIC[rule]
    scored = [e for e in usable if e.get(key) is not None and math.isfinite(e[key])]
    if not scored:
        return None
    best = max(e[key] for e in scored)
    return min((e for e in scored if e[key] == best), key=lambda e: e["epoch"])


def selectable_epochs(epochs: list[dict[str, Any]]) -> set[int]:
    """The epochs some rule picks from these epochs. Applied after every epoch, it keeps what the finished
    run needs: a later epoch can only replace a rule's pick, never bring back an earlier epoch it dropped
    (ties keep the earliest epoch, which was kept when it was first the best)."""
    picked = (select_epoch(epochs, rule) for rule in RULES)
    return {int(e["epoch"]) for e in picked if e is not None}


def keep_selectable(confusion: dict[str, Any], epochs: list[dict[str, Any]]) -> dict[str, Any]:
    """``confusion`` (epoch -> matrix) without the matrices of epochs no rule can pick: a run's per-epoch
    matrices were half the store's size, and the report reads only the selected epochs'."""
    keep = selectable_epochs(epochs)
    return {k: v for k, v in confusion.items() if int(k) in keep}
