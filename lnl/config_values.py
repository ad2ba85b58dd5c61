"""Config keys and values as users type them, converted to the config's names and types.

A value may come from a command line (always a string: ``"0.01"``, ``"True"``, ``"None"``), from a YAML file
(already typed, or a list or mapping where a number belongs) or from ``wandb agent``'s argv (``--lr=1e-05``,
``--epochs=2.0`` when a sweep renders an integer as a float). :func:`convert` accepts each spelling that
means the field's type and refuses everything else with a :class:`~lnl.errors.ConfigError`, one line.
"""
from __future__ import annotations

import ast
import difflib
import functools
import types
import typing
from typing import Any, Callable

from lnl.errors import ConfigError

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def public_name(name: str) -> str:
    """The name users see: ``lambda`` for the field ``lambda_`` (a Python keyword)."""
    return name[:-1] if name.endswith("_") else name


def field_name(key: str) -> str:
    """The field a user's key names: ``--color-var``, ``color_var`` and ``lambda`` -> ``lambda_``."""
    key = key.strip().lstrip("-").replace("-", "_")
    return key + "_" if key in ("lambda",) else key


def suggest(name: str, names: typing.Iterable[str]) -> str:
    """`` (did you mean 'lr'?)`` for a near miss among ``names``, else ``''``."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {public_name(close[0])!r}?)" if close else ""


@functools.lru_cache(maxsize=None)
def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, resolved once: it re-evaluates every annotation string on each call
    (0.1 s for Config), and a store of records builds hundreds of configs."""
    return typing.get_type_hints(cls)


def plain(value: Any) -> Any:
    """A JSON-ready value: tuples become lists."""
    return list(value) if isinstance(value, (list, tuple)) else value


def to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
        raise ValueError
    if isinstance(raw, float):
        return int(raw)
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)  # '2.0' as a sweep renders a YAML 2.0; '2.5' stays an error
        if not number.is_integer():
            raise
        return int(number)


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError
    return float(raw)


def _to_str(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError
    return str(raw)


def _to_list(raw: Any) -> list[str]:
    if isinstance(raw, str):  # '[a, b]' as wandb agent renders a list, or 'a,b' as a user types it
        text = raw.strip()
        raw = ast.literal_eval(text) if text.startswith("[") else [t.strip() for t in text.split(",") if t.strip()]
    if not isinstance(raw, (list, tuple)):
        raise ValueError
    return [str(v) for v in raw]


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {bool: to_bool, int: _to_int, float: _to_float, str: _to_str}
_KINDS = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}


def convert(name: str, tp: Any, raw: Any) -> Any:
    """``raw`` (a string from argv, or a YAML value) as type ``tp`` (``Optional[...]`` allows None)."""
    key = public_name(name)
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType)
    if optional:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if raw is None or (isinstance(raw, str) and raw.strip() in ("None", "null", "~")):
        if optional:
            return None
        raise ConfigError(key, "must not be None")
    to = _to_list if typing.get_origin(tp) is list else _CONVERTERS[tp]
    try:
        return to(raw)
    except (ValueError, TypeError, OverflowError, SyntaxError, RecursionError):  # a YAML list or mapping included
        raise ConfigError(key, f"must be {_KINDS.get(tp, 'a list')}{' or None' if optional else ''}; "
                               f"got {raw!r}") from None
