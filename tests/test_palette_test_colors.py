"""reports/paper_reproduction/palette_fig9/test_colors.py: the decoded test colors against the two palettes
(NOTES item 24), and our own test draw's share of color 9, which the comparison rests on."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import report_script


@pytest.fixture(scope="module")
def tc():
    return report_script("palette_fig9/test_colors")


def test_binomial_tail(tc):
    assert tc.binom_tail(0, 10, 0.3) == pytest.approx(1.0)
    assert tc.binom_tail(5, 10, 0.1) == pytest.approx(0.0016349, rel=1e-4)  # sum_{i>=5} C(10,i) .1^i .9^(10-i)
    assert tc.binom_tail(10, 10, 0.5) == pytest.approx(0.5 ** 10)


def test_half_the_decoded_test_colors_lie_nearest_color_9(tc):
    colors, labels = tc.test_colors()
    assert labels.tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    for spec in tc.PALETTES.values():
        nn, dist = tc.nearest(colors, tc.colored.load_palette(spec))
        assert nn.tolist() == [0, 7, 9, 9, 1, 9, 9, 1, 9, 0]
        assert 19 <= dist.min() and dist.max() <= 112  # 0-255 scale: no test color sits on a palette mean


def test_our_test_draw_puts_one_in_ten_nearest_color_9(tc, monkeypatch):
    monkeypatch.setattr(tc, "DRAWS", 20_000)
    palette = tc.colored.load_palette("default")
    share = tc.share_nearest(palette, "palette", 0.020, np.random.default_rng(1))
    assert share == pytest.approx(0.10, abs=0.01)
    # colors exactly at the means are each nearest their own
    assert tc.nearest(palette, palette)[0].tolist() == list(range(10))


def test_likelihood_excludes_the_digits_own_mean(tc):
    palette = tc.colored.load_palette("default")
    at_means = palette[[3, 4]]
    labels = np.array([3, 5])
    # the first color is its own digit's mean, the nearest other (digit 1's) 0.1 away: at σ 0.032 excluding
    # its own mean costs it ≈ 0.1² / (2 σ²) = 5 nats; the second gains log(10 / 9) from the smaller mixture
    drop = (tc.log_likelihood(at_means, labels, palette, 0.001, other_only=False)
            - tc.log_likelihood(at_means, labels, palette, 0.001, other_only=True))
    assert 3 < drop < 8


def test_compare_pairs_each_figure_run_with_the_default_palettes_same_seed():
    compare = report_script("palette_fig9/compare")
    rows = [r.split(" | ") for r in compare.seed_rows()[2:]]
    lnl = [r for r in rows if "LNL" in r[2]]
    assert lnl and all(r[3] != "—" for r in lnl)                    # every figure run has its default twin
    levels = [r.split(" | ") for r in compare.level_rows()[2:]]
    gap = {(r[0].strip("| "), r[1], r[3]): float(r[7]) for r in levels}  # Δ at equal Baseline
    lnl = "LNL λ 0.01, μ 0.1 (40 epochs)"
    assert gap[("0.035", lnl, "digit 9 from the figure")] > gap[("0.035", lnl, "default")]
