"""A W&B Report over the same runs and the same tables as the Markdown report.

Built with ``wandb-workspaces`` (``wandb_workspaces.reports.v2``, the library W&B maintains for
Reports as code). The blocks, in order:

1. what the report covers (runs, groups, selection rules) and how to re-build it;
2. per model-selection rule, the comparison table with the paper's numbers: the very Markdown that
   ``scripts/report.py`` writes (:func:`lnl.report.tables.comparison` + ``to_markdown``), so the two
   reports can't disagree; the calibration table when given;
3. a panel grid over the real runs (a run set filtered by W&B group, or by sweep, grouped by method
   and sigma^2): unbiased test accuracy per sigma^2 and method, the ``val_unbiased/acc``,
   ``val_biased/acc`` and ``bias/acc`` curves (mean and std over seeds), the unbiased test confusion
   matrix (the table ``wandb.plot.confusion_matrix`` logs) and the sample images;
4. for a tuning sweep or an Optuna study (runs whose identity differs in more than seed, method and
   sigma^2): parallel coordinates over the tuned parameters and parameter importance for
   ``val_unbiased/acc``;
5. the report's figures, from the ``report`` run that ``--publish-wandb`` logs them to.

Every panel reads keys the runs really log (:data:`LOGGED_KEYS`; a test holds the panels to it).
Building is offline; :func:`save` needs a W&B login and the server. :func:`to_json` writes the spec
without a server: ``wandb-workspaces`` looks up each run set's project id on the server, which a dry
run answers with a placeholder (:data:`OFFLINE_PROJECT_ID`).
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

from lnl.records import EPOCH_KEYS
from lnl.report import render, tables
from lnl.selection import RULES
from lnl.tracking import wandb_group

#: What a training run logs to W&B: the per-epoch keys (history and summary), the confusion matrix's
#: table, the per-class table and the sample grids (lnl.tracking.WandbTracker).
LOGGED_KEYS = frozenset(EPOCH_KEYS) | {"test/confusion_matrix_table", "test/per_class_accuracy",
                                       "samples/train", "samples/test"}
OFFLINE_PROJECT_ID = "offline-dry-run"
CONFUSION_FIELDS = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
#: Config keys that never count as tuned parameters (conditions and bookkeeping).
_CONDITIONS = {"seed", "method", "color_var", "data_seed"}


def run_filter(records: list[dict[str, Any]]) -> str:
    """The run set's filter: the W&B sweeps the runs came from when every run knows its sweep, else
    their W&B groups (as :func:`lnl.tracking.wandb_group` names them); never the ``report`` runs."""
    sweeps = sorted({(r.get("wandb") or {}).get("sweep") for r in records} - {None})
    if sweeps and all((r.get("wandb") or {}).get("sweep") for r in records):
        return f"Metric('Sweep') in {sweeps!r} and Metric('JobType') != 'report'"
    groups = sorted({wandb_group(r["config"]) for r in records})
    return f"Metric('Group') in {groups!r} and Metric('JobType') != 'report'"


def tuned_parameters(records: list[dict[str, Any]]) -> list[str]:
    """Configuration keys whose values differ between runs of the same method (the parameters a search
    varied; a grid of methods with their own recipes, like the paper table, varies none)."""
    configuring = [k for k in records[0]["config"] if k not in tables._NOT_CONFIGURATION and k not in _CONDITIONS]
    varied = []
    for key in configuring:
        for method in {r["config"]["method"] for r in records}:
            values = {json.dumps(r["config"].get(key), sort_keys=True, default=str) for r in records
                      if r["config"]["method"] == method}
            if len(values) > 1:
                varied.append(key)
                break
    return varied


def build(records: list[dict[str, Any]], entity: str, project: str, *, title: str, error: str = "std",
          calibration: list[dict[str, Any]] | None = None, figure_keys: list[str] | None = None,
          report_run: str | None = None, command: str | None = None) -> Any:
    """The :class:`wandb_workspaces.reports.v2.Report` for ``records`` (see module doc). Offline."""
    import wandb_workspaces.reports.v2 as wr

    if not records:
        raise ValueError("no run records to report on")
    groups = sorted({wandb_group(r["config"]) for r in records})
    runs = wr.Runset(entity=entity, project=project, name="Training runs", filters=run_filter(records),
                     groupby=["config.method", "config.color_var"])
    intro = (f"{len(records)} runs in {len(groups)} W&B group(s) ({', '.join(groups[:8])}"
             f"{', ...' if len(groups) > 8 else ''}). Unbiased test accuracy per method and sigma^2, "
             f"mean ± {'standard deviation' if error == 'std' else 'standard error'} over seeds, beside the "
             "paper's numbers (Kim et al., CVPR 2019, Fig. 4), once per model-selection rule.")
    blocks: list[Any] = [wr.P(intro)]
    if command:
        blocks.append(wr.MarkdownBlock(text=f"Re-build:\n\n```\n{command}\n```"))
    for rule in RULES:
        blocks += [wr.H2(f"Selection rule: {rule}"),
                   wr.MarkdownBlock(text=render.to_markdown(tables.comparison(records, rule, error)))]
    if calibration:
        blocks += [wr.H2("Calibration of sigma^2 (Baseline and Gray only)"),
                   wr.MarkdownBlock(text=render.calibration_markdown(tables.calibration(calibration)))]
    blocks += [wr.H2("Runs"), wr.PanelGrid(runsets=[runs], panels=run_panels())]
    tuned = tuned_parameters(records)
    if tuned:
        blocks += [wr.H2("Tuning"), wr.P(f"Parameters that differ between runs: {', '.join(tuned)}."),
                   wr.PanelGrid(runsets=[runs], panels=tuning_panels(tuned))]
    if figure_keys and report_run:
        figures = wr.Runset(entity=entity, project=project, name="Report figures",
                            filters=f"Metric('JobType') == 'report' and Metric('Name') == {report_run!r}")
        blocks += [wr.H2("Figures"),
                   wr.PanelGrid(runsets=[figures], panels=[wr.MediaBrowser(title="Report figures", num_columns=2,
                                                                           media_keys=figure_keys)])]
    return wr.Report(entity=entity, project=project, title=title[:128], width="fluid",
                     description="Built by scripts/report.py --wandb-report from the run records.", blocks=blocks)


def run_panels() -> list[Any]:
    """Panels over the training runs (grouped by method and sigma^2 in the run set)."""
    import wandb_workspaces.reports.v2 as wr

    curve = dict(x="epoch", groupby_aggfunc="mean", groupby_rangefunc="stddev")
    return [
        wr.BarPlot(title="Unbiased test accuracy per sigma^2 and method (last epoch)", metrics=["test/acc"],
                   orientation="v", groupby_aggfunc="mean", groupby_rangefunc="stddev"),
        wr.LinePlot(title="Unbiased validation accuracy", y=["val_unbiased/acc"], **curve),
        wr.LinePlot(title="Biased validation accuracy", y=["val_biased/acc"], **curve),
        wr.LinePlot(title="Bias head accuracy (the color the features still carry)", y=["bias/acc"], **curve),
        wr.CustomChart(query={"summaryTable": {"tableKey": "test/confusion_matrix_table"}},
                       chart_name="wandb/confusion_matrix/v1", chart_fields=dict(CONFUSION_FIELDS),
                       chart_strings={"title": "Unbiased test confusion matrix"}),
        wr.MediaBrowser(title="Training and test samples", media_keys=["samples/train", "samples/test"]),
    ]


def tuning_panels(parameters: list[str]) -> list[Any]:
    """Parallel coordinates over ``parameters`` and the objective, and parameter importance."""
    import wandb_workspaces.reports.v2 as wr

    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p)) for p in parameters]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric("val_unbiased/acc")))
    return [wr.ParallelCoordinatesPlot(title="Tuned parameters vs unbiased validation accuracy", columns=columns),
            wr.ParameterImportancePlot(with_respect_to="val_unbiased/acc")]


def panel_keys(report: Any) -> set[str]:
    """Every run key a report's panels read (metrics, media, tables); config columns excluded."""
    import wandb_workspaces.reports.v2 as wr

    keys: set[str] = set()
    for block in report.blocks:
        for panel in getattr(block, "panels", []) or []:
            if isinstance(panel, wr.LinePlot):
                keys |= set(panel.y) | ({panel.x} if panel.x else set())
            elif isinstance(panel, wr.BarPlot):
                keys |= set(panel.metrics)
            elif isinstance(panel, wr.MediaBrowser):
                keys |= set(panel.media_keys)
            elif isinstance(panel, wr.ParameterImportancePlot):
                keys.add(panel.with_respect_to)
            elif isinstance(panel, wr.ParallelCoordinatesPlot):
                keys |= {c.metric.name for c in panel.columns if isinstance(c.metric, wr.SummaryMetric)}
            elif isinstance(panel, wr.CustomChart):
                keys.add(panel.query["summaryTable"]["tableKey"])
    return keys


@contextlib.contextmanager
def offline_lookups() -> Iterator[None]:
    """Answer wandb-workspaces' project-id lookups without a server (for a dry run's JSON spec)."""
    import wandb_workspaces.reports.v2.interface as interface

    class _Service:
        def execute_graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
            return {"project": {"internalId": OFFLINE_PROJECT_ID}}

    class _Api:
        pass

    api = _Api()
    api.__dict__["_service_api"] = _Service()
    saved = interface._get_api
    interface._get_api = lambda: api
    try:
        yield
    finally:
        interface._get_api = saved


def to_json(report: Any, path: str | Path) -> Path:
    """Write the Report's spec (what ``save`` would send) to ``path`` without a server."""
    with offline_lookups():
        model = report._to_model()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model.model_dump(by_alias=True, exclude_none=True, mode="json"), indent=1))
    return path


def save(report: Any) -> str:
    """Save the Report on the W&B server (needs a login); its URL."""
    report.save()
    return report.url


def report_from_args(args: Any, records: list, written: list[Path]) -> int:
    """``--wandb-report``: publish the figures to a report run, build the Report, save it (or write its spec)."""
    import sys

    from lnl.report import load
    from lnl.report.build import command_line, publish_wandb

    entity, _, project = args.wandb_report.partition("/")
    if not entity or not project or "/" in project:
        print(f"error: --wandb-report must be ENTITY/PROJECT; got {args.wandb_report!r}", file=sys.stderr)
        return 2
    run_name = f"report-{Path(args.out).name}"
    figure_keys = [f"figures/{p.stem}" for p in written if p.suffix == ".png"]
    calibration = load.from_folders(args.calibration) if args.calibration else None
    report = build(records, entity, project, title=args.title, error=args.error, calibration=calibration,
                        figure_keys=figure_keys, report_run=run_name, command=command_line())
    if args.dry_run:
        path = to_json(report, Path(args.out) / "wandb_report.json")
        print(f"report: W&B Report spec ({len(report.blocks)} blocks) -> {path} (dry run: nothing sent; the "
              f"figures panel reads the '{run_name}' run that a real run publishes)")
        return 0
    try:
        publish_wandb(Path(args.out), written, records, project=project, entity=entity, mode="online",
                      name=run_name)
        url = save(report)
    except Exception as err:  # noqa: BLE001 - no login, no server: one line, the Markdown report stands
        print(f"error: the W&B Report could not be saved ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
              "--dry-run writes its spec without a server", file=sys.stderr)
        return 1
    print(f"report: W&B Report {url}")
    return 0
