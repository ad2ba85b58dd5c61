"""lnl.analysis.test_draw: networks scored under test draws that favour palette color 9, by re-weighting
their accuracy per drawn color (NOTES item 25)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import REPO
from lnl.analysis import test_draw


@pytest.fixture(scope="module")
def rw():
    return test_draw


def test_p9_weights_and_the_calibrated_share(rw):
    assert np.allclose(rw.p9_weights(0.1), 0.1)  # our draw: uniform
    w = rw.p9_weights(0.4)
    assert w.sum() == pytest.approx(1.0) and w[9] == 0.4 and np.allclose(w[:9], 0.6 / 9)
    acc = np.r_[np.full(9, 0.6), 0.2]
    p = rw.calibrated_p9(acc, 0.5)
    assert p == pytest.approx(0.25) and rw.p9_weights(p) @ acc == pytest.approx(0.5)
    assert math.isnan(rw.calibrated_p9(acc, 0.7))  # above every mix of 0.6 and 0.2
    assert math.isnan(rw.calibrated_p9(acc, 0.1))
    assert math.isnan(rw.calibrated_p9(np.full(10, 0.5), 0.5))


def test_em_recovers_known_mixture_weights(rw):
    palette = rw.colored.load_palette("default")
    rng = np.random.default_rng(3)
    truth = np.zeros(10)
    truth[[0, 4, 9]] = 0.3, 0.2, 0.5
    ids = rng.choice(10, size=4000, p=truth)
    colors = palette[ids] + rng.normal(0.0, 0.05, size=(4000, 3))
    w = rw.fit_weights(colors, palette, 0.05 ** 2, iters=300)
    assert w.sum() == pytest.approx(1.0)
    assert np.abs(w - truth).max() < 0.03, w.round(3)


def test_committed_scores_add_up_to_the_records(rw):
    """by_color.csv re-scores finished networks per drawn palette mean: per run, its total over the ten colors
    must be the record's own test accuracy (the same network on the same digits; bf16 autocast without the
    training's fused CPU kernels flips up to 15 of 10,000 here, on digits at a decision boundary)."""
    import csv
    import json

    totals = {}
    for r in csv.DictReader(open(REPO / rw.BY_COLOR, encoding="utf-8")):
        t = totals.setdefault(r["run_id"], [0, 0])
        t[0] += int(r["correct"])
        t[1] += int(r["digits"])
    assert totals
    for run_id, (correct, digits) in totals.items():
        record = json.loads((REPO / "results" / run_id / "record.json").read_text())
        assert digits == 10_000
        assert correct / digits == pytest.approx(record["final"]["test/acc"], abs=0.002), run_id


def test_the_report_reads_the_per_color_counts(rw, tmp_path):
    """A small by_color.csv: the plain mean of the per-color accuracies is our draw, and a calibrated draw
    puts the Baseline's expected accuracy on the paper's row."""
    path = tmp_path / "by_color.csv"
    rows = ["run_id,method,color_var,seed,color_id,digits,correct"]
    for method, nine, rest in (("baseline", 20, 50), ("lnl", 40, 90)):
        rows += [f"{method}-x,{method},0.020,0,{c},100,{nine if c == 9 else rest}" for c in range(10)]
    path.write_text("\n".join(rows) + "\n")
    acc = rw.load(path)
    assert rw.scored(acc, "lnl", 0.02, rw.p9_weights(0.1)) == [pytest.approx(0.85)]
    base = acc[("baseline", 0.02)][0]
    p = rw.calibrated_p9(base, rw.paper()[("baseline", 0.02)])
    assert rw.p9_weights(p) @ base == pytest.approx(rw.paper()[("baseline", 0.02)])
    text = rw.report(acc)
    assert "| lnl | p9 = 0.1 | 0.850 (+0.03" in text and "| lnl | paper | 0.8185 |" in text


