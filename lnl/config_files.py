"""The files and pairs a config is read from: YAML config files, recipes and ``KEY=VALUE`` lists.

A recipe (``lnl/resources/recipes/<name>.yaml`` or a path) maps method names to config values, plus an
optional ``all`` entry that every method shares; :meth:`lnl.config.Config.from_dict` lays a recipe's values
for the run's method under the values given explicitly. Every unreadable or malformed file is a
:class:`~lnl.errors.ConfigError` naming the file: one line, never a traceback.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

from lnl.errors import ConfigError


def parse_pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (a script's ``--set`` / ``--filter``) -> dict; one-line error otherwise."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(None, f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _read_yaml(path: Path, key: str) -> Any:
    """A YAML file's content; unreadable, non-UTF-8 or invalid YAML is a ConfigError on ``key``."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path} is not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(key, f"{path}: cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(key, f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a flat YAML mapping of config keys (``{key: value}`` or W&B's ``{key: {value: v}}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"file not found: {path}")
    data = _read_yaml(path, "config")
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping of config keys")
    # W&B's config-defaults style: {"lr": {"value": 0.01}}
    return {k: (v["value"] if isinstance(v, dict) and set(v) <= {"value", "desc"} else v) for k, v in data.items()}


RECIPES = Path(__file__).resolve().parent / "resources" / "recipes"


def load_recipe(spec: str, method: str) -> dict[str, Any]:
    """The values a recipe sets for ``method``.

    A recipe YAML maps method names to config values, plus an optional ``all``
    entry shared by every method (the method's own entry wins).
    """
    path = Path(spec) if spec.endswith((".yaml", ".yml")) else RECIPES / f"{spec}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.yaml")))
        raise ConfigError("recipe", f"no recipe {spec!r} (named recipes: {known}; or a path to a .yaml)")
    stat = path.stat()
    data = _recipe_file(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if not isinstance(data, dict) or method not in data:
        raise ConfigError("recipe", f"recipe {spec!r} has no entry for method {method!r}")
    for entry in ("all", method):
        if not isinstance(data.get(entry) or {}, dict):
            raise ConfigError("recipe", f"recipe {spec!r}: the entry {entry!r} must be a mapping of config keys; "
                                        f"got {type(data[entry]).__name__}")
    return {**(data.get("all") or {}), **(data.get(method) or {})}


@functools.lru_cache(maxsize=64)
def _recipe_file(path: str, mtime_ns: int, size: int) -> Any:
    """A recipe file's content, read once per version of the file: a grid or a store of records builds
    thousands of configs from a handful of recipes (and a pretraining run's config from each). The
    modification time and size are part of the key, so an edited recipe is read again. Callers must not
    change what it returns."""
    return _read_yaml(Path(path), "recipe")
