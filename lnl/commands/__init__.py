"""The command-line tools, one module each, with a ``main(argv) -> exit code``.

Each is a console entry point (``pyproject.toml``), ``python -m lnl.commands.<module>`` and, for a
clone, ``python scripts/<module>.py``; they parse flags and print, the work is in the library:

=====================  ==================  ==================================================
entry point            module              library
=====================  ==================  ==================================================
``lnl-train``          ``train``           :func:`lnl.engine.train`
``lnl-prepare-data``   ``prepare_data``    :mod:`lnl.data.dataset`
``lnl-demo``           ``demo``            ``make demo``: baseline vs LNL and a report
``lnl-create-sweeps``  ``create_sweeps``   :mod:`lnl.sweep_config`, ``wandb.sweep``
``lnl-run-sweep``      ``run_sweep``       :func:`lnl.search.grid_runs`, :func:`lnl.pool.train_pool`
``lnl-optuna-search``  ``optuna_search``   :mod:`lnl.studies`, :mod:`lnl.search`
``lnl-report``         ``report``          :mod:`lnl.report`
``lnl-benchmark``      ``benchmark``       :mod:`lnl.bench_suites`, :mod:`lnl.bench`
=====================  ==================  ==================================================

Exit codes: 0 done, 1 a run or an external service failed, 2 a bad flag or value (one line).
"""
