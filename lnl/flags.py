"""``lnl-train``'s command line: one flag per :class:`~lnl.config.Config` field, built on :mod:`argparse`.

Every flag takes either spelling, ``--color-var 0.03`` or the ``--color_var=0.03`` that ``wandb agent``
renders from a sweep's ``${args}``; a boolean flag alone means True (``--resume``), and ``None`` unsets an
optional value. ``--config FILE.yaml`` lays a YAML file under the flags: defaults < recipe < YAML < flags.
argparse only splits the command line; :meth:`Config.from_dict` converts and checks every value, so the
command line, a YAML file and a sweep agree. Errors are a :class:`~lnl.errors.ConfigError`: one line,
exit status 2 (:func:`lnl.commands.one_line_errors`), never argparse's usage block.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import typing
from typing import Any, NoReturn, Sequence

from lnl.config import Config
from lnl.config_files import load_yaml
from lnl.config_values import field_name, public_name, suggest
from lnl.errors import ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        missing = re.match(r"argument --([\w-]+).*: expected one argument", message)
        if missing:
            raise ConfigError(field_name(missing.group(1)).rstrip("_"), "needs a value")
        raise ConfigError(None, message)


def parser(prog: str = "lnl-train") -> argparse.ArgumentParser:
    """The parser: ``--config`` and one option per field (its dashed spelling shown in ``--help``, its
    snake_case spelling accepted silently). Options left out of argv stay out of the namespace."""
    p = _Parser(prog=prog, allow_abbrev=False, argument_default=argparse.SUPPRESS,
                usage="%(prog)s [--config FILE.yaml] [--key VALUE | --key=VALUE ...]", description="Train on Colored MNIST. Precedence: defaults < recipe < --config YAML < flags. "
                            "Every flag also accepts --snake_case=VALUE as wandb agent writes it.")
    p.add_argument("--config", metavar="FILE.yaml", help="a YAML mapping of config keys, under the flags")
    groups = {True: p.add_argument_group("what a run computes (its identity and run id)"),
              False: p.add_argument_group("how and where it runs (execution settings, not in the identity)")}
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        group = groups[f.metadata["identity"]]
        public = public_name(f.name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        boolean = {"nargs": "?", "const": "True"} if hints[f.name] is bool else {}
        text = f"{f.metadata['help']} [default {default!r}]".replace("%", "%%")
        group.add_argument(f"--{public.replace('_', '-')}", dest=f.name, metavar="VALUE", help=text, **boolean)
        if "_" in public:
            group.add_argument(f"--{public}", dest=f.name, help=argparse.SUPPRESS, **boolean)
    return p


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Command-line flags (and ``--config FILE``) as a validated :class:`Config`; ``-h`` prints the help."""
    argv = list(sys.argv[1:] if argv is None else argv)
    namespace, extra = parser().parse_known_args(argv)
    for token in extra:
        if token.startswith("--"):
            key = token[2:].partition("=")[0]
            names = [f.name for f in dataclasses.fields(Config)]
            raise ConfigError(None, f"unknown option --{key}{suggest(field_name(key), names)}")
        raise ConfigError(None, f"unexpected argument {token!r} (flags look like --key=value)")
    flags: dict[str, Any] = vars(namespace)
    config_file = flags.pop("config", None)
    # One merge, so that a recipe (from the YAML or a flag) sits under both: defaults < recipe < YAML < flags.
    values = {**load_yaml(config_file), **flags} if config_file else flags
    return Config.from_dict(values).validate()
