"""One Colored MNIST instance as NumPy arrays: build it, cache it, or load the authors' file.

Splits (all uint8 images, (N, 28, 28, 3)):

* ``train``: MNIST training images minus the held-out ones, biased colors;
* ``val_biased`` / ``val_unbiased``: the held-out training images (``val_size``,
  default 5,000) colored like train and like test; model selection uses these,
  never the test set;
* ``test``: the 10,000 MNIST test images, unbiased colors.

``val_unbiased`` and ``test`` also carry the raw MNIST digits (``<split>_gray``,
(N, 28, 28) uint8): the authors' files hold the raw test digits as
``test_gray``, and that is what the Gray reference is tested on.

A generated instance is a pure function of (data_seed, color_var, palette,
strokes, color_noise, val_size) and is cached on disk (see :mod:`lnl.data.cache`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lnl.data import cache, colored, safe_pickle
from lnl.data.mnist import load_mnist

FORMAT_VERSION = 2  # 2: binary strokes by default, color_noise, raw gray test digits
SPLITS = ("train", "val_biased", "val_unbiased", "test")


@dataclass
class ColoredMnist:
    """Images ``x``, labels ``y`` and mean-color ids ``color`` (-1: unknown) per split."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def x(self, split: str) -> np.ndarray:
        return self.arrays[f"{split}_x"]

    def y(self, split: str) -> np.ndarray:
        return self.arrays[f"{split}_y"]

    def color(self, split: str) -> np.ndarray:
        return self.arrays[f"{split}_color"]

    def gray(self, split: str) -> np.ndarray:
        """Gray images of ``split`` as the Gray reference sees them: the raw MNIST digits where
        the instance has them (``val_unbiased``, ``test``), else the luma of the colored images
        (``train``, ``val_biased``: the brightness of each class's color stays a bias)."""
        raw = self.arrays.get(f"{split}_gray")
        return raw if raw is not None else colored.to_gray(self.x(split))


def split_indices(n: int, val_size: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, val) index split of ``n`` training images."""
    order = np.random.default_rng([data_seed, 7919]).permutation(n)
    return np.sort(order[: n - val_size]), np.sort(order[n - val_size:])


def generate(color_var: float, palette: np.ndarray, data_seed: int, val_size: int,
             data_dir: str | None = None, cache_dir: str | Path = "data", strokes: str = "binary",
             color_noise: str = "per_channel_var", unbiased_colors: str = "palette",
             color_bounds: str = "clip") -> ColoredMnist:
    """Build Colored MNIST from standard MNIST (no cache; see :func:`load_generated`)."""
    mnist = load_mnist(data_dir=data_dir, cache_dir=cache_dir)
    # One independent stream per split, all derived from (data_seed, color_var); the same draws for
    # every stroke style, so 'binary' and 'graded' differ only in how the color is painted.
    root = np.random.SeedSequence([data_seed, int(round(color_var * 1e6))])
    rng_train, rng_vb, rng_vu, rng_test = (np.random.default_rng(s) for s in root.spawn(4))
    tr, va = split_indices(len(mnist.train_y), val_size, data_seed)
    arrays: dict[str, np.ndarray] = {}

    def put(split: str, gray: np.ndarray, labels: np.ndarray, rng: np.random.Generator, biased: bool) -> None:
        images, ids = colored.colorize(gray, labels, palette, color_var, rng, biased=biased, strokes=strokes,
                                       noise=color_noise, unbiased=unbiased_colors, bounds=color_bounds)
        arrays[f"{split}_x"], arrays[f"{split}_y"], arrays[f"{split}_color"] = images, labels, ids

    put("train", mnist.train_x[tr], mnist.train_y[tr], rng_train, True)
    put("val_biased", mnist.train_x[va], mnist.train_y[va], rng_vb, True)
    put("val_unbiased", mnist.train_x[va], mnist.train_y[va], rng_vu, False)
    put("test", mnist.test_x, mnist.test_y, rng_test, False)
    arrays["val_unbiased_gray"], arrays["test_gray"] = mnist.train_x[va], mnist.test_x
    return ColoredMnist(arrays, {"source": "generated", "mnist": mnist.source})


def cache_params(color_var: float, palette: np.ndarray, data_seed: int, val_size: int, strokes: str,
                 color_noise: str, unbiased_colors: str = "palette", color_bounds: str = "clip") -> dict[str, Any]:
    """Everything a generated instance depends on, exactly (``repr`` keeps every digit of the floats)."""
    params = {"format": FORMAT_VERSION, "color_var": repr(float(color_var)), "data_seed": int(data_seed),
              "val_size": int(val_size), "strokes": strokes, "color_noise": color_noise,
              "palette": [[repr(float(v)) for v in row] for row in palette]}
    if unbiased_colors != "palette":  # named only when not the default, so existing caches keep their keys
        params["unbiased_colors"] = unbiased_colors
    if color_bounds != "clip":  # likewise
        params["color_bounds"] = color_bounds
    return params


def cache_key(params: dict[str, Any]) -> str:
    """Folder name of a cached instance: readable fields plus a hash of all of ``params``."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return (f"v{FORMAT_VERSION}-cv{float(params['color_var']):.4f}-{params['strokes']}-seed{params['data_seed']}"
            f"-val{params['val_size']}-{digest}")


def load_generated(color_var: float, palette_spec: str = "default", data_seed: int = 0,
                   val_size: int = 5000, cache_dir: str | Path = "data",
                   data_dir: str | None = None, strokes: str = "binary",
                   color_noise: str = "per_channel_var", unbiased_colors: str = "palette",
                   color_bounds: str = "clip") -> ColoredMnist:
    """Colored MNIST from the on-disk cache, generating (and caching) it on a miss.

    The cached manifest must hold exactly the requested parameters; a cache made
    for other ones (a hash collision, a hand-copied folder) is rebuilt.
    """
    palette = colored.load_palette(palette_spec)
    params = cache_params(color_var, palette, data_seed, val_size, strokes, color_noise, unbiased_colors,
                          color_bounds)
    folder = Path(cache_dir) / "colored_mnist" / cache_key(params)

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        data = generate(color_var, palette, data_seed, val_size, data_dir=data_dir, cache_dir=cache_dir,
                        strokes=strokes, color_noise=color_noise, unbiased_colors=unbiased_colors,
                        color_bounds=color_bounds)
        return data.arrays, {**params, **data.meta}

    def matches(meta: dict[str, Any]) -> bool:
        return (all(meta.get(k) == v for k, v in params.items())
                and meta.get("unbiased_colors", "palette") == unbiased_colors
                and meta.get("color_bounds", "clip") == color_bounds)

    arrays, meta = cache.load_or_create(folder, build, accept=matches)
    return ColoredMnist(arrays, meta)


# ---------------------------------------------------------------------------------------
# The authors' released files
def read_official_npy(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``mnist_10color_jitter_var_<var>.npy`` without executing pickled code.

    The file is a 0-d object array (a pickled dict) that the authors load with
    ``np.load(path, allow_pickle=True, encoding="latin1").item()``; we parse the
    .npy header and unpickle the payload with the restricted unpickler.
    """
    with open(path, "rb") as stream:
        version = np.lib.format.read_magic(stream)
        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        _shape, _fortran, dtype = header(stream)
        if dtype.hasobject:
            payload = safe_pickle.load(stream, encoding="latin1")
        else:
            raise ValueError(f"{path}: expected a pickled dict (object array), found dtype {dtype}")
    data = payload.item() if isinstance(payload, np.ndarray) else payload
    need = {"train_image", "train_label", "test_image", "test_label"}
    if not isinstance(data, dict) or not need <= set(data):
        raise ValueError(f"{path}: expected a dict with keys {sorted(need)}")
    return data


def _recolor_unbiased(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Held-out official training images recolored with colors independent of their labels.

    The authors' files hold no unbiased copy of training images. We estimate each
    image's color from its brightest pixel (MNIST strokes reach 255), divide it
    out, and paint the digit, binarized as in the authors' files, with the color
    of another held-out image whose class is drawn uniformly at random.
    """
    flat = images.reshape(len(images), -1, 3).astype(np.float64)
    brightest = flat.sum(axis=2).argmax(axis=1)
    color = flat[np.arange(len(images)), brightest] / 255.0                  # (N, 3)
    channel = color.argmax(axis=1)
    peak = np.maximum(color[np.arange(len(images)), channel], 1e-6)
    gray = np.clip(flat[np.arange(len(images)), :, channel] / peak[:, None], 0, 255)  # (N, 784)
    by_class = [np.flatnonzero(labels == k) for k in range(10)]
    classes = [k for k in range(10) if len(by_class[k])]
    donor_class = rng.choice(classes, size=len(images))
    donors = np.array([rng.choice(by_class[k]) for k in donor_class]) if len(images) else np.zeros(0, int)
    return colored.paint(np.rint(gray).astype(np.uint8).reshape(-1, 28, 28), color[donors])


def load_official(path: str | Path, val_size: int = 5000, data_seed: int = 0) -> ColoredMnist:
    """The authors' file, split like a generated instance. ``test_gray`` comes from the file when it
    has one; the held-out gray digits are the luma of their recolored images."""
    data = read_official_npy(path)
    train_x = np.asarray(data["train_image"], dtype=np.uint8)
    train_y = np.asarray(data["train_label"]).astype(np.int64).reshape(-1)
    test_x = np.asarray(data["test_image"], dtype=np.uint8)
    test_y = np.asarray(data["test_label"]).astype(np.int64).reshape(-1)
    if train_x.shape[1:] != (28, 28, 3) or test_x.shape[1:] != (28, 28, 3):
        raise ValueError(f"{path}: images must be (N, 28, 28, 3) uint8")
    if val_size >= len(train_x):
        raise ValueError(f"val_size {val_size} >= {len(train_x)} training images in {path}")
    tr, va = split_indices(len(train_y), val_size, data_seed)
    unknown = lambda n: np.full(n, -1, dtype=np.int8)  # noqa: E731 - the file has no color ids
    rng = np.random.default_rng([data_seed, 104729])
    arrays = {
        "train_x": train_x[tr], "train_y": train_y[tr], "train_color": unknown(len(tr)),
        "val_biased_x": train_x[va], "val_biased_y": train_y[va], "val_biased_color": unknown(len(va)),
        "val_unbiased_x": _recolor_unbiased(train_x[va], train_y[va], rng), "val_unbiased_y": train_y[va],
        "val_unbiased_color": unknown(len(va)),
        "test_x": test_x, "test_y": test_y, "test_color": unknown(len(test_y)),
    }
    if data.get("test_gray") is not None:
        test_gray = np.asarray(data["test_gray"], dtype=np.uint8).reshape(-1, 28, 28)
        if len(test_gray) == len(test_y):
            arrays["test_gray"] = test_gray
    return ColoredMnist(arrays, {"source": "official", "path": str(path)})
