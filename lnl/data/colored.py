"""Colored MNIST as defined by Kim et al. (CVPR 2019, Sec. 4.1), vectorized.

Each digit class has a mean color (``palette``). An image's color is drawn
around it (the jitter, see :data:`COLOR_NOISE`) on the [0, 1] scale and kept in
[0, 1] (see :data:`COLOR_BOUNDS`). How the color is painted (``strokes``):

* ``binary`` (default, as in the authors' released files): pixels whose MNIST
  gray value is > 128 get the image's one flat color, all others are exactly
  black. Checked pixel for pixel on 30 images decoded from those files
  (``lnl/resources/official_samples.npz``).
* ``graded``: ``gray x color`` (this package's first reading of the paper).

* biased split (training, ``val_biased``): the mean color is the label's own;
* unbiased split (test, ``val_unbiased``), by ``UNBIASED_COLORS`` (``Config.unbiased_colors``):
  ``palette`` (default) a uniformly chosen palette color, independent of the label, with the
  same jitter; ``other_palette`` the same but never the label's own color (none of the ten
  decoded test samples carries its own digit's color: weak evidence, 0.9^10 = 0.35 under
  ``palette``); ``uniform_rgb`` a uniformly random RGB color, no palette, no jitter. The decoded
  test colors fit none of them well: darker than uniform RGB, farther from the palette means
  than the jitter allows (reports/paper_reproduction/test_draw/README.md).

Everything is whole-array NumPy: no Python loop per image.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

PALETTES = Path(__file__).resolve().parent.parent / "resources" / "palettes"
IGNORE_INDEX = 255  # bias label of background pixels (official code: ignore_index=255)
STROKE_THRESHOLD = 128  # binary strokes: MNIST gray > 128 is foreground (a pixel of 128 is background)
STROKES = ("binary", "graded")
UNBIASED_COLORS = ("palette", "other_palette", "uniform_rgb")
# Which bias labels h ignores (bias_labels): 'channel' the authors' rule, a channel value of exactly 0;
# 'background' only pixels whose three channels are 0. The two agree on data whose foreground channels never
# reach 0, as in the authors' files as far as they were seen (official_samples/FINDINGS.md: channel values
# 2-251, no 255 in a file's 60,000 training images); on data whose jitter clips a channel to 0
# (here: the green of about a quarter of the 9s) 'channel' also hides those foreground values from h.
BIAS_IGNORE = ("channel", "background")
# How a jittered channel is kept in [0, 1]. 'clip' (this package's first reading) piles the tails onto 0 and 1:
# at sigma^2 = 0.020 about a quarter of the 9s get green 0 and half of the 2s green 255. 'resample' draws each
# channel again until 0 < c < 1, a truncated normal: a public reimplementation attributes this rule to
# Algorithm 1 of the paper's supplementary material (not in our reference files), and it fits the authors'
# released data (foreground channel values 2-251, no 255 in a file's 60,000 training images;
# official_samples/FINDINGS.md), which clipping does not.
COLOR_BOUNDS = ("clip", "resample")
_MAX_REDRAWS = 10_000  # a channel mean in [0, 1] with sigma <= 1 is redrawn a handful of times at most
# How sigma^2 (Config.color_var) maps onto the per-channel color noise on [0, 1]. The authors never
# published their generator; which reading matches the paper is decided on the Baseline and Gray rows
# (reports/paper_reproduction, "Calibration"), never on LNL's.
COLOR_NOISE = {
    "per_channel_var": lambda v: np.sqrt(v),      # N(0, sigma^2) on each channel
    "total_var": lambda v: np.sqrt(v / 3.0),      # the 3-D color's total variance is sigma^2
    "std": lambda v: v,                           # sigma^2 read as the per-channel standard deviation
}


def load_palette(spec: str = "default") -> np.ndarray:
    """The 10 mean colors as a (10, 3) float array in [0, 1].

    ``spec`` is a packaged palette's name (``lnl/resources/palettes/<name>.csv``:
    ``default``, estimated from the authors' released files, or ``v1``, this
    package's first guess) or a CSV path with columns ``digit,r,g,b`` (0-255),
    one row per digit 0-9.
    """
    path = PALETTES / f"{spec}.csv" if (PALETTES / f"{spec}.csv").is_file() else Path(spec)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PALETTES.glob("*.csv")))
        raise ValueError(f"palette {spec!r}: no such file (packaged palettes: {known}; or a CSV path)")
    try:
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from None
    try:
        by_digit = {int(r["digit"]): [float(r["r"]), float(r["g"]), float(r["b"])] for r in rows}
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: needs columns digit,r,g,b with numbers ({err})") from None
    if sorted(by_digit) != list(range(10)):
        raise ValueError(f"{path}: needs exactly one row for each digit 0-9")
    colors = np.array([by_digit[d] for d in range(10)], dtype=np.float64) / 255.0
    if not np.isfinite(colors).all() or colors.min() < 0 or colors.max() > 1:
        raise ValueError(f"{path}: color values must be in 0-255")
    return colors


def draw_colors(mean_ids: np.ndarray, palette: np.ndarray, color_var: float,
                rng: np.random.Generator, noise: str = "per_channel_var", bounds: str = "clip") -> np.ndarray:
    """Per-image colors: ``palette[mean_id]`` plus Gaussian jitter (``COLOR_NOISE[noise]`` gives its
    per-channel standard deviation from ``color_var``), kept in [0, 1] by ``bounds`` (one of
    :data:`COLOR_BOUNDS`: ``clip``, or ``resample`` every channel outside the open interval (0, 1) until
    it falls inside); (N, 3) float64. Deterministic given ``rng``'s state."""
    if bounds not in COLOR_BOUNDS:
        raise ValueError(f"bounds must be one of {', '.join(COLOR_BOUNDS)}; got {bounds!r}")
    std = COLOR_NOISE[noise](color_var)
    means = palette[mean_ids]
    colors = means + rng.normal(0.0, std, size=means.shape)
    if bounds == "clip":
        return np.clip(colors, 0.0, 1.0)
    for _ in range(_MAX_REDRAWS):  # whole-array rejection sampling: only the channels still outside
        outside = (colors <= 0.0) | (colors >= 1.0)
        n = int(outside.sum())
        if n == 0:
            return colors
        colors[outside] = means[outside] + rng.normal(0.0, std, size=n)
    raise RuntimeError(f"color jitter: channels still outside (0, 1) after {_MAX_REDRAWS} draws (std {std})")


def paint(gray: np.ndarray, colors: np.ndarray, strokes: str = "binary", chunk: int = 10000) -> np.ndarray:
    """Paint per-image ``colors`` (N, 3) in [0, 1] onto ``gray`` digits (N, 28, 28) uint8.

    ``binary``: one flat color ``rint(255 * color)`` where gray > 128, exactly black elsewhere;
    ``graded``: ``rint(gray * color)``. Returns (N, 28, 28, 3) uint8.
    """
    if strokes not in STROKES:
        raise ValueError(f"strokes must be one of {', '.join(STROKES)}; got {strokes!r}")
    out = np.empty(gray.shape + (3,), dtype=np.uint8)
    for start in range(0, len(gray), chunk):  # chunks bound the float32 temporaries (~100 MB)
        g = gray[start:start + chunk, :, :, None]
        c = colors[start:start + chunk, None, None, :].astype(np.float32)
        if strokes == "binary":
            flat = np.rint(c * 255.0).astype(np.uint8)
            out[start:start + chunk] = np.where(g > STROKE_THRESHOLD, flat, np.uint8(0))
        else:
            out[start:start + chunk] = np.rint(g.astype(np.float32) * c).astype(np.uint8)
    return out


def colorize(gray: np.ndarray, labels: np.ndarray, palette: np.ndarray, color_var: float,
             rng: np.random.Generator, *, biased: bool, strokes: str = "binary",
             noise: str = "per_channel_var", unbiased: str = "palette",
             bounds: str = "clip") -> tuple[np.ndarray, np.ndarray]:
    """Color a split. Returns ``(images (N,28,28,3) uint8, mean color ids (N,); -1 where there is no
    palette mean)``. ``unbiased`` (one of :data:`UNBIASED_COLORS`) is how an unbiased split draws,
    ``bounds`` (:data:`COLOR_BOUNDS`) how the jitter stays in [0, 1]."""
    if unbiased not in UNBIASED_COLORS:
        raise ValueError(f"unbiased must be one of {', '.join(UNBIASED_COLORS)}; got {unbiased!r}")
    if biased:
        mean_ids = labels.astype(np.int64)
    elif unbiased == "uniform_rgb":
        colors = rng.uniform(0.0, 1.0, size=(len(labels), 3))
        return paint(gray, colors, strokes), np.full(len(labels), -1, dtype=np.int8)
    elif unbiased == "other_palette":
        # one of the other len(palette) - 1 means, uniformly; as many draws as 'palette' takes, so the
        # jitter that follows is the same stream
        mean_ids = (labels.astype(np.int64) + rng.integers(1, len(palette), size=len(labels))) % len(palette)
    else:
        mean_ids = rng.integers(0, len(palette), size=len(labels))
    colors = draw_colors(mean_ids, palette, color_var, rng, noise, bounds)
    return paint(gray, colors, strokes), mean_ids.astype(np.int8)


def bias_labels(images: np.ndarray, ignore: str = "channel") -> np.ndarray:
    """Per-pixel color classes as the official code computes them.

    The RGB image is resized to 14x14 with PIL's nearest rule (which samples the
    odd rows and columns, 1, 3, ..., 27), each channel value v becomes the bin
    ``v // 32`` (8 bins), and channel values of exactly 0 (the black background)
    get ``IGNORE_INDEX``; with ``ignore='background'`` only pixels whose three
    channels are 0 do (see :data:`BIAS_IGNORE`). Input (N, 28, 28, 3) uint8,
    output (N, 3, 14, 14) uint8.
    """
    if ignore not in BIAS_IGNORE:
        raise ValueError(f"ignore must be one of {BIAS_IGNORE}; got {ignore!r}")
    small = images[:, 1::2, 1::2, :]
    zero = small == 0
    if ignore == "background":
        zero = zero.all(axis=-1, keepdims=True)
    labels = np.where(zero, IGNORE_INDEX, small // 32).astype(np.uint8)
    return np.ascontiguousarray(labels.transpose(0, 3, 1, 2))


def to_gray(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as PIL's ``convert("L")``: (N, 28, 28, 3) uint8 -> (N, 28, 28) uint8.

    The paper's Gray reference trains on gray versions of the colored training
    images (brightness differences between the class colors remain); it is
    tested on the raw MNIST digits (see ``lnl.data.dataset``).
    """
    rgb = images.astype(np.uint32)
    return ((rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000).astype(np.uint8)
