"""How well each unbiased-color draw explains the 10 decoded test images of the authors' file B.

Reads tests/fixtures/official_samples.npz (decoded from the authors' released files, see its note) and the
package's default palette; prints, for a few per-channel jitter variances v, the log-likelihood ratios of
the ten test colors under 'other_palette' vs 'palette' and under 'palette' vs 'uniform_rgb' (Gaussian
jitter, clipping ignored: no observed channel is 0 or 255). The loading, distances and likelihoods are
``palette_fig9/test_colors.py``'s, which also compares the two palettes for digit 9.
Run: .venv/bin/python <this file>.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "palette_fig9"))
from test_colors import colored, log_likelihood, nearest, test_colors  # noqa: E402

colors, labels = test_colors()
palette = colored.load_palette("default")
print("label:              ", labels)
print("nearest palette mean:", nearest(colors, palette)[0])
print("distance to own mean:", np.round(np.linalg.norm(colors - palette[labels], axis=1), 3))
print("distance to nearest: ", np.round(nearest(colors, palette)[1] / 255, 3))
for v in (0.01, 0.02, 0.035, 0.05):
    any_mean = log_likelihood(colors, labels, palette, v, other_only=False)  # uniform_rgb's density is 1
    other_mean = log_likelihood(colors, labels, palette, v, other_only=True)
    print(f"v {v:.3f}: log LR other_palette/palette {other_mean - any_mean:+.2f}, "
          f"palette/uniform_rgb {any_mean:+.2f}")
# A check the likelihoods miss: uniform RGB puts a channel below 40/255 with probability 40/256 = 0.156.
low = int((np.rint(colors * 255) < 40).sum())
print(f"channels below 40: {low} of {colors.size} (uniform_rgb expects {colors.size * 40 / 256:.1f})")
