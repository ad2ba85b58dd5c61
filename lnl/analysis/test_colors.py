"""What the authors' decoded *test* colors say about palette color 9 (NOTES item 24).

The ten test digits decoded from one of the authors' released files (``lnl/resources/official_samples.npz``,
a copy of ``../shared/reference/official_samples/samples.npz``) were used by neither palette estimate: the
default palette's means come from the decoded *training* digits, ``palette_fig9/palette.csv`` replaces digit
9's with the paper's figure. So they are a fair, model-free check of the two, and of our test draw:

* which palette mean each test color lies nearest;
* how often our own test draws (``--unbiased-colors palette`` / ``other_palette``, and uniform RGB) land
  nearest color 9, and how likely the observed count is under each (binomial tail);
* the log-likelihood of the ten colors under "a palette mean (any of the 10, or one of the 9 other than
  the digit's own) plus N(0, σ²) per channel", per palette, at σ² 0.020 and 0.050 (``per_channel_var``).

Nothing here trains or reads a model; ``lnl-report`` writes its Markdown (:func:`main`) into the palette
study's page. Palette paths are relative to the repository root.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lnl.data import colored

# 30 images decoded from the authors' released files (../shared/reference/official_samples/samples.npz)
SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "official_samples.npz"
PALETTES = {"default": "default", "digit 9 from the figure": "reports/paper_reproduction/palette_fig9/palette.csv"}
LEVELS = (0.020, 0.050)
DRAWS = 200_000


def test_colors() -> tuple[np.ndarray, np.ndarray]:
    """The decoded test digits' flat colors on [0, 1] (10, 3) and their labels (10,)."""
    s = np.load(SAMPLES, allow_pickle=False)
    test = s["split"] == "test"
    return s["flat_color"][test].astype(np.float64) / 255.0, s["labels"][test].astype(np.int64)


def nearest(colors: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest palette mean (Euclidean RGB) and the distance on 0-255, per color."""
    d = np.linalg.norm(colors[:, None, :] - palette[None], axis=2)
    return d.argmin(1), 255 * d.min(1)


def binom_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def share_nearest(palette: np.ndarray, draw: str, color_var: float, rng: np.random.Generator) -> float:
    """Share of our test draws (digits' labels uniform) whose color lies nearest palette color 9."""
    labels = rng.integers(0, 10, DRAWS)
    if draw == "uniform_rgb":
        colors = rng.uniform(0.0, 1.0, (DRAWS, 3))
    else:
        ids = rng.integers(0, 10, DRAWS) if draw == "palette" else (labels + rng.integers(1, 10, DRAWS)) % 10
        colors = colored.draw_colors(ids, palette, color_var, rng)
    return float((nearest(colors, palette)[0] == 9).mean())


def log_likelihood(colors: np.ndarray, labels: np.ndarray, palette: np.ndarray, color_var: float,
                   other_only: bool) -> float:
    """Sum over the colors of log p(color) under an equal mixture of N(mean, σ²) per channel over the palette
    means (all 10, or the 9 other than the digit's own when ``other_only``); densities on [0, 1]."""
    sd = colored.COLOR_NOISE["per_channel_var"](color_var)
    z = (colors[:, None, :] - palette[None]) / sd
    log_pdf = (-0.5 * z ** 2 - np.log(sd * math.sqrt(2 * math.pi))).sum(2)  # (n, 10)
    if other_only:
        log_pdf[np.arange(len(labels)), labels] = -np.inf
    k = 9 if other_only else 10
    m = log_pdf.max(1, keepdims=True)
    return float((m[:, 0] + np.log(np.exp(log_pdf - m).sum(1) / k)).sum())


def markdown() -> str:
    """The three tables (nearest means, our draws' shares, log-likelihoods) as Markdown."""
    colors, labels = test_colors()
    rng = np.random.default_rng(0)
    lines = ["| palette | nearest mean per test digit (label: nearest) | distance (0-255) | nearest 9 |",
             "|---|---|---|---:|"]
    palettes = {name: colored.load_palette(spec) for name, spec in PALETTES.items()}
    counts = {}
    for name, palette in palettes.items():
        nn, dist = nearest(colors, palette)
        counts[name] = int((nn == 9).sum())
        pairs = ", ".join(f"{lab}: {n}" for lab, n in zip(labels, nn))
        lines.append(f"| {name} | {pairs} | {', '.join(str(int(round(x))) for x in dist)} | "
                     f"{counts[name]} of {len(labels)} |")
    lines += ["", "| palette | our draw | σ² | share of draws nearest 9 | P(≥ observed of 10) |",
              "|---|---|---:|---:|---:|"]
    for name, palette in palettes.items():
        for draw in ("palette", "other_palette", "uniform_rgb"):
            for cv in (LEVELS if draw != "uniform_rgb" else LEVELS[:1]):
                p = share_nearest(palette, draw, cv, rng)
                cv_text = f"{cv:.3f}" if draw != "uniform_rgb" else "—"
                lines.append(f"| {name} | `{draw}` | {cv_text} | {p:.3f} | "
                             f"{binom_tail(counts[name], len(labels), p):.4f} |")
    lines += ["", "| palette | mixture | σ² | log-likelihood of the 10 test colors |", "|---|---|---:|---:|"]
    for cv in LEVELS:
        for other_only in (False, True):
            for name, palette in palettes.items():
                ll = log_likelihood(colors, labels, palette, cv, other_only)
                mix = "9 other means" if other_only else "all 10 means"
                lines.append(f"| {name} | {mix} | {cv:.3f} | {ll:.2f} |")
    return "\n".join(lines) + "\n"
