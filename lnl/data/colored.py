"""Colored MNIST as defined by Kim et al. (CVPR 2019, Sec. 4.1), vectorized.

Each digit class has a mean color (``palette``). An image's color is drawn from
N(mean, sigma^2 I) on the [0, 1] scale, clipped to [0, 1], and the image is
``gray x color``: the strokes are colored, the background stays black.

* biased split (training, ``val_biased``): the mean color is the label's own;
* unbiased split (test, ``val_unbiased``): the mean color is drawn uniformly at
  random, independent of the label, with the same jitter.

Everything is whole-array NumPy: no Python loop per image.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

PACKAGED_PALETTE = Path(__file__).resolve().parent.parent / "resources" / "palette.csv"
IGNORE_INDEX = 255  # bias label of background pixels (official code: ignore_index=255)
N_BINS = 8          # bias label = channel value // 32


def load_palette(spec: str = "default") -> np.ndarray:
    """The 10 mean colors as a (10, 3) float array in [0, 1].

    ``spec`` is ``"default"`` (the packaged palette.csv) or a CSV path with columns
    ``digit,r,g,b`` (0-255), one row per digit 0-9.
    """
    path = PACKAGED_PALETTE if spec == "default" else Path(spec)
    if not path.is_file():
        raise ValueError(f"palette file not found: {path}")
    rows = list(csv.DictReader(path.open()))
    try:
        by_digit = {int(r["digit"]): [float(r["r"]), float(r["g"]), float(r["b"])] for r in rows}
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: needs columns digit,r,g,b with numbers ({err})") from None
    if sorted(by_digit) != list(range(10)):
        raise ValueError(f"{path}: needs exactly one row for each digit 0-9")
    colors = np.array([by_digit[d] for d in range(10)], dtype=np.float64) / 255.0
    if colors.min() < 0 or colors.max() > 1:
        raise ValueError(f"{path}: color values must be in 0-255")
    return colors


def draw_colors(mean_ids: np.ndarray, palette: np.ndarray, color_var: float,
                rng: np.random.Generator) -> np.ndarray:
    """Per-image colors ~ N(palette[mean_id], color_var I), clipped to [0, 1]; (N, 3) float64."""
    noise = rng.normal(0.0, np.sqrt(color_var), size=(len(mean_ids), 3))
    return np.clip(palette[mean_ids] + noise, 0.0, 1.0)


def paint(gray: np.ndarray, colors: np.ndarray, chunk: int = 10000) -> np.ndarray:
    """``gray`` (N, 28, 28) uint8 times per-image ``colors`` (N, 3) -> (N, 28, 28, 3) uint8."""
    out = np.empty(gray.shape + (3,), dtype=np.uint8)
    for start in range(0, len(gray), chunk):  # chunks bound the float32 temporaries (~100 MB)
        g = gray[start:start + chunk, :, :, None].astype(np.float32)
        c = colors[start:start + chunk, None, None, :].astype(np.float32)
        out[start:start + chunk] = np.rint(g * c).astype(np.uint8)
    return out


def colorize(gray: np.ndarray, labels: np.ndarray, palette: np.ndarray, color_var: float,
             rng: np.random.Generator, *, biased: bool) -> tuple[np.ndarray, np.ndarray]:
    """Color a split. Returns ``(images (N,28,28,3) uint8, mean color ids (N,))``."""
    if biased:
        mean_ids = labels.astype(np.int64)
    else:
        mean_ids = rng.integers(0, len(palette), size=len(labels))
    colors = draw_colors(mean_ids, palette, color_var, rng)
    return paint(gray, colors), mean_ids.astype(np.int8)


def bias_labels(images: np.ndarray) -> np.ndarray:
    """Per-pixel color classes as the official code computes them.

    The RGB image is resized to 14x14 with PIL's nearest rule (which samples the
    odd rows and columns, 1, 3, ..., 27), each channel value v becomes the bin
    ``v // 32`` (8 bins), and pixels whose channel value is exactly 0 (the black
    background) get ``IGNORE_INDEX``. Input (N, 28, 28, 3) uint8, output
    (N, 3, 14, 14) uint8.
    """
    small = images[:, 1::2, 1::2, :]
    labels = np.where(small == 0, IGNORE_INDEX, small // 32).astype(np.uint8)
    return np.ascontiguousarray(labels.transpose(0, 3, 1, 2))


def to_gray(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as PIL's ``convert("L")``: (N, 28, 28, 3) uint8 -> (N, 28, 28) uint8.

    The paper's Gray reference trains and tests on gray versions of the colored
    images, so brightness differences between the class colors remain.
    """
    rgb = images.astype(np.uint32)
    return ((rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000).astype(np.uint8)
