"""lnl.analysis.test_colors: the decoded test colors against the two palettes (NOTES item 24), and our own
test draw's share of color 9, which the comparison rests on."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from lnl.analysis import test_colors


@pytest.fixture(scope="module")
def tc():
    return test_colors


def test_binomial_tail(tc):
    assert tc.binom_tail(0, 10, 0.3) == pytest.approx(1.0)
    assert tc.binom_tail(5, 10, 0.1) == pytest.approx(0.0016349, rel=1e-4)  # sum_{i>=5} C(10,i) .1^i .9^(10-i)
    assert tc.binom_tail(10, 10, 0.5) == pytest.approx(0.5 ** 10)


def test_half_the_decoded_test_colors_lie_nearest_color_9(tc):
    colors, labels = tc.test_colors()
    assert labels.tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    for spec in tc.PALETTES.values():
        # the figure's palette is named relative to the repository root, where lnl-report runs
        nn, dist = tc.nearest(colors, tc.colored.load_palette(spec if spec == "default" else str(REPO / spec)))
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
