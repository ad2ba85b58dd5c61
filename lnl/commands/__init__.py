"""The command-line tools, one module each, with a ``main(argv) -> exit code``.

Each is a console entry point (``pyproject.toml``), ``python -m lnl.commands.<module>`` and, for a
clone, ``python scripts/<module>.py``; they parse flags and print, the work is in the library:

=====================  ==================  ==================================================
entry point            module              library
=====================  ==================  ==================================================
``lnl-train``          ``train``           :func:`lnl.training.loop.train`
``lnl-prepare-data``   ``prepare_data``    :mod:`lnl.data.dataset`
``lnl-demo``           ``demo``            ``make demo``: baseline vs LNL and a report
``lnl-create-sweeps``  ``create_sweeps``   :mod:`lnl.sweep_config`, ``wandb.sweep``
``lnl-run-sweep``      ``run_sweep``       :func:`lnl.search.grid_runs`, :func:`lnl.accel.pool.train_pool`
``lnl-optuna-search``  ``optuna_search``   :mod:`lnl.studies`, :mod:`lnl.search`
``lnl-report``         ``report``          :mod:`lnl.report`
``lnl-benchmark``      ``benchmark``       :mod:`lnl.accel.bench_suites`, :mod:`lnl.accel.bench`
=====================  ==================  ==================================================

Exit codes: 0 done, 1 a run or an external service failed, 2 a bad flag or value (one line), 130 / 143
interrupted by Ctrl-C / SIGTERM (one line; runs keep their checkpoints), 141 the reader of stdout went away.
"""
from __future__ import annotations

import errno
import functools
import os
import sys
from typing import Callable, Optional, Sequence

from lnl.errors import UserError

Main = Callable[[Optional[Sequence[str]]], int]
_FIXABLE_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def one_line_errors(main: Main) -> Main:
    """The one top-level handler of every command: the harness's own :class:`~lnl.errors.UserError`
    becomes ``error: <message>`` on one line and exit status 2; Ctrl-C or SIGTERM one line and 130 / 143;
    any other exception keeps its traceback."""

    @functools.wraps(main)
    def wrapped(argv: Optional[Sequence[str]] = None) -> int:
        try:
            return main(argv)
        except UserError as err:
            print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `lnl-run-sweep ... --dry-run | head`: the reader has gone, nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return 141
        except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (lnl.training.run_folder): records say interrupted
            name = err.args[0] if err.args else "SIGINT"
            print(f"lnl: interrupted ({name}); each run keeps its last epoch's checkpoint: the same command "
                  "resumes", file=sys.stderr)
            return 128 + (15 if name == "SIGTERM" else 2)
        except OSError as err:
            if err.errno not in _FIXABLE_OS_ERRORS:
                raise
            # A full disk, a read-only or forbidden folder: the user's to fix, not a bug. Records say why.
            print(f"error: {err.filename or 'writing'}: {err.strerror}", file=sys.stderr)
            return 2

    return wrapped


def at_least(**bounds: tuple[float, float]) -> None:
    """Refuse the first flag below its bound, e.g. ``at_least(steps=(args.steps, 1))``: a UserError naming it."""
    for name, (value, least) in bounds.items():
        if value is not None and value < least:
            raise UserError(f"--{name.replace('_', '-')} must be >= {least}; got {value}")
