"""W&B sweep YAMLs (sweeps/*.yaml): read, check against the config, render the agent's argv.

A sweep file is the one declaration of a search space: ``wandb agent`` runs it,
and :mod:`lnl.search` maps the same file to Optuna distributions. Parameters are
flat and named like the config's public keys (``color_var``, ``lambda``,
``bias_lr``), since each becomes a ``--key=value`` flag of scripts/train.py.

Bias level is an experimental condition, not a hyperparameter: a sweep file
searches at one level, and :func:`for_condition` makes one copy per level
(scripts/create_sweeps.py, scripts/optuna_search.py).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Iterable

import yaml

from lnl.config import Config, ConfigError
from lnl.errors import UserError

SWEEP_KEYS = {"program", "method", "metric", "parameters", "early_terminate", "run_cap", "command", "name",
              "description", "project", "entity"}
DISTRIBUTIONS = {"constant", "categorical", "int_uniform", "uniform", "q_uniform", "log_uniform",
                 "log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values", "normal", "q_normal",
                 "log_normal", "q_log_normal"}
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
SPEC_KEYS = {"value", "values", "distribution", "min", "max", "mu", "sigma", "q", "probabilities", "parameters"}
SEARCH_METHODS = {"grid", "random", "bayes"}


class SweepError(UserError):
    """A sweep YAML that W&B or this harness would reject or misread."""


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read a sweep YAML and check it (:func:`check_sweep`)."""
    path = Path(path)
    try:
        sweep = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:  # missing, binary, or broken YAML
        raise SweepError(f"{path}: cannot read sweep YAML ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    if not isinstance(sweep, dict):
        raise SweepError(f"{path}: a sweep YAML is a mapping")
    problems = check_sweep(sweep)
    if problems:
        raise SweepError(f"{path}: " + "; ".join(problems))
    return sweep


def public_keys() -> set[str]:
    return set(Config().to_dict())


def _spec_kind(spec: dict[str, Any]) -> str:
    """The W&B distribution a parameter spec stands for (W&B's own inference rules)."""
    if "distribution" in spec:
        return spec["distribution"]
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        ints = isinstance(spec["min"], int) and isinstance(spec["max"], int)
        return "int_uniform" if ints else "uniform"
    if "mu" in spec or "sigma" in spec:
        return "normal"
    return "unknown"


def check_sweep(sweep: dict[str, Any]) -> list[str]:
    """Problems that would make the sweep fail or silently do something else; [] if none.

    The shape is checked before any value: a scalar where W&B wants a list (``values: 0.5``) would
    otherwise be iterated character by character, and a misspelt key (``valuse``) silently ignored.
    """
    problems = [f"unknown top-level key {k!r}" for k in sweep if k not in SWEEP_KEYS]
    problems += _top_level_shape(sweep)
    params = sweep.get("parameters")
    if not isinstance(params, dict) or not params:
        return problems + ["needs a 'parameters' mapping"]
    known = public_keys()
    for name, spec in params.items():
        if name not in known:
            problems.append(f"parameter {name!r} is not a config key of scripts/train.py")
            continue
        if not isinstance(spec, dict):
            problems.append(f"parameter {name!r}: needs a mapping such as {{value: ...}} or {{values: [...]}}")
            continue
        if "parameters" in spec:
            problems.append(f"parameter {name!r}: nested parameters are not supported (use flat names)")
            continue
        shape = _spec_shape(spec)
        if shape:
            problems.append(f"parameter {name!r}: {shape}")
            continue
        kind = _spec_kind(spec)
        if kind not in DISTRIBUTIONS:
            problems.append(f"parameter {name!r}: unknown distribution {kind!r}")
            continue
        for value in _example_values(kind, spec):
            try:
                Config.from_dict({name: value})
            except ConfigError as err:
                problems.append(f"parameter {name!r}: {err}")
                break
        if "min" in spec and "max" in spec:
            try:
                if float(spec["min"]) >= float(spec["max"]):
                    problems.append(f"parameter {name!r}: min must be below max")
            except (TypeError, ValueError):
                problems.append(f"parameter {name!r}: min and max must be numbers (write 1.0e-5, not 1e-5)")
    return problems


def _top_level_shape(sweep: dict[str, Any]) -> list[str]:
    """What each top-level key must be (W&B's sweep configuration reference)."""
    problems = []
    for key in ("program", "name", "description", "project", "entity"):
        if key in sweep and not isinstance(sweep[key], str):
            problems.append(f"{key} must be a string; got {type(sweep[key]).__name__}")
    if "method" in sweep and sweep["method"] not in SEARCH_METHODS:
        problems.append(f"method must be one of {', '.join(sorted(SEARCH_METHODS))}; got {sweep['method']!r}")
    metric = sweep.get("metric")
    if metric is not None and (not isinstance(metric, dict) or not isinstance(metric.get("name"), str)):
        problems.append("metric needs a name")
    elif metric is not None and metric.get("goal", "maximize") not in ("maximize", "minimize"):
        problems.append(f"metric goal must be maximize or minimize; got {metric.get('goal')!r}")
    command = sweep.get("command")
    if command is not None and (not isinstance(command, list) or not all(isinstance(c, str) for c in command)):
        problems.append("command must be a YAML block list of strings")
    run_cap = sweep.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int) or run_cap < 1):
        problems.append(f"run_cap must be an integer >= 1; got {run_cap!r}")
    if "early_terminate" in sweep and not isinstance(sweep["early_terminate"], dict):
        problems.append("early_terminate must be a mapping such as {type: hyperband, min_iter: 3}")
    return problems


def _spec_shape(spec: dict[str, Any]) -> str | None:
    """Why one parameter's spec has the wrong shape, or None."""
    unknown = sorted(str(k) for k in spec if k not in SPEC_KEYS)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)} (a spec has value, values, distribution, min, max, ...)"
    if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
        return f"values must be a non-empty list such as [0.1, 0.2]; got {spec['values']!r}"
    if "value" in spec and isinstance(spec["value"], (list, dict)):
        return f"value must be one value (use values: [...] for several); got {spec['value']!r}"
    probabilities = spec.get("probabilities")
    if probabilities is not None and (not isinstance(probabilities, list)
                                      or len(probabilities) != len(spec.get("values") or [])):
        return "probabilities must be a list as long as values"
    if "distribution" in spec and not isinstance(spec["distribution"], str):
        return f"distribution must be a name such as log_uniform_values; got {spec['distribution']!r}"
    return None


def _example_values(kind: str, spec: dict[str, Any]) -> list[Any]:
    if kind == "constant":
        return [spec.get("value")]
    if kind == "categorical":
        return list(spec.get("values") or [])
    if kind in ("log_uniform",):  # bounds are exponents of e
        return [math.exp(float(spec["min"])), math.exp(float(spec["max"]))]
    if "min" in spec and "max" in spec:
        return [spec["min"], spec["max"]]
    return []


def for_condition(sweep: dict[str, Any], color_var: float | None = None, method: str | None = None,
                  ) -> dict[str, Any]:
    """A copy of ``sweep`` fixed at one bias level (and method), with a name saying so."""
    out = copy.deepcopy(sweep)
    suffix = []
    if method is not None:
        out["parameters"]["method"] = {"value": method}
        suffix.append(method)
    if color_var is not None:
        out["parameters"]["color_var"] = {"value": float(color_var)}
        suffix.append(f"cv{color_var:.3f}")
    if suffix:
        out["name"] = "-".join([str(sweep.get("name", "sweep"))] + suffix)
    return out


def plain(value: Any) -> Any:
    """NumPy scalars (what the sweeps engine returns) to Python values."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict, str)) else value


def render_args(params: dict[str, Any]) -> list[str]:
    """``${args}`` exactly as ``wandb agent`` renders it: ``--key=str(value)`` per parameter.

    Booleans become ``True``/``False``, None ``None``, floats as Python prints them
    (``1e-05``), lists as their Python repr.
    """
    return [f"--{key}={plain(value)}" for key, value in params.items()]


def agent_command(sweep: dict[str, Any], params: dict[str, Any], interpreter: str = "python",
                  env: str = "/usr/bin/env") -> list[str]:
    """The argv the W&B agent would execute for one suggestion (macros expanded)."""
    args = render_args(params)
    values = {k: plain(v) for k, v in params.items()}
    macros: dict[str, list[str]] = {
        "${env}": [env], "${interpreter}": [interpreter], "${program}": [str(sweep.get("program", ""))],
        "${args}": args, "${args_no_hyphens}": [a[2:] for a in args],
        "${args_no_boolean_flags}": [a for k, a in zip(values, args) if not isinstance(values[k], bool)]
        + [f"--{k}" for k, v in values.items() if v is True],
        "${args_json}": [json.dumps(values)],
    }
    argv: list[str] = []
    for part in sweep.get("command") or DEFAULT_COMMAND:
        if part in macros:
            argv.extend(macros[part])
        elif part.startswith("${") and part.endswith("}"):
            continue  # the agent silently drops unknown macros
        else:
            argv.append(part)
    return argv


def searched(sweep: dict[str, Any]) -> Iterable[str]:
    """Names of parameters that vary (not constants)."""
    return [k for k, spec in sweep["parameters"].items() if _spec_kind(spec) != "constant"]

