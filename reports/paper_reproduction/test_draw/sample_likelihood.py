"""How well each unbiased-color draw explains the 10 decoded test images of the authors' file B.

Reads tests/fixtures/official_samples.npz (decoded from the authors' released files, see its note) and the
package's default palette; prints, for a few per-channel jitter variances v, the log-likelihood ratios of
the ten test colors under 'other_palette' vs 'palette' and under 'palette' vs 'uniform_rgb' (Gaussian
jitter, clipping ignored: no observed channel is 0 or 255). Run: .venv/bin/python <this file>.
"""
import numpy as np

from lnl.data import colored

z = np.load("tests/fixtures/official_samples.npz", allow_pickle=False)
test = z["split"] == "test"
colors, labels = z["flat_color"][test] / 255.0, z["labels"][test]
palette = colored.load_palette("default")
dist = np.linalg.norm(colors[:, None, :] - palette[None], axis=2)  # (10 images, 10 means)
rows = np.arange(len(labels))
print("label:              ", labels)
print("nearest palette mean:", dist.argmin(1))
print("distance to own mean:", np.round(dist[rows, labels], 3))
print("distance to nearest: ", np.round(dist.min(1), 3))
for v in (0.01, 0.02, 0.035, 0.05):
    density = np.exp(-dist ** 2 / (2 * v)) / (2 * np.pi * v) ** 1.5
    any_mean = density.mean(1)
    other_mean = (density.sum(1) - density[rows, labels]) / 9
    print(f"v {v:.3f}: log LR other_palette/palette {np.log(other_mean / any_mean).sum():+.2f}, "
          f"palette/uniform_rgb {np.log(any_mean).sum():+.2f}")
# A check the likelihoods miss: uniform RGB puts a channel below 40/255 with probability 40/256 = 0.156.
low = int((z["flat_color"][test] < 40).sum())
print(f"channels below 40: {low} of {colors.size} (uniform_rgb expects {colors.size * 40 / 256:.1f})")
