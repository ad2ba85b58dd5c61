"""The W&B Report (lnl.report.wandb_report): built offline from fixture records, checked block by block."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from conftest import REPO
from lnl.report import load, render, tables
from lnl.report import wandb_report as wrep
from lnl.selection import RULES

wr = pytest.importorskip("wandb_workspaces.reports.v2")
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture
def records():
    return load.from_folders([FIXTURES / "records"])


def test_report_blocks_are_the_markdown_tables_then_the_run_panels(records):
    figure_keys = ["figures/confusion_grid", "figures/accuracy_vs_color_var"]
    report = wrep.build(records, "me", "my-lnl", title="Paper grid", figure_keys=figure_keys,
                        report_run="report-paper", command="python scripts/report.py ...")
    kinds = [type(b).__name__ for b in report.blocks]
    assert kinds == ["P", "MarkdownBlock", "H2", "MarkdownBlock", "H2", "MarkdownBlock", "H2", "MarkdownBlock",
                     "H2", "PanelGrid", "H2", "P", "PanelGrid", "H2", "PanelGrid"]
    # the fixture holds runs of three configurations (optimizer, lr, momentum differ): a tuning section
    assert wrep.tuned_parameters(records) == ["optimizer", "lr", "momentum"]
    # one block per selection rule, each the very Markdown the folder report writes
    headings, texts = report.blocks[2:8:2], report.blocks[3:8:2]
    assert len(headings) == len(texts) == len(RULES) == 3
    for rule, heading, table in zip(RULES, headings, texts):
        assert heading.text == f"Selection rule: {rule}"
        assert table.text == render.to_markdown(tables.comparison(records, rule, "std"))
        assert "|  | paper | 0.4055 |" in table.text  # the paper's Baseline at 0.020 beside ours
    runs = report.blocks[9].runsets[0]
    assert runs.entity == "me" and runs.project == "my-lnl"
    assert runs.filters == ("Metric('Group') in ['baseline-cv0.020', 'baseline-cv0.030', 'lnl-cv0.020', "
                            "'lnl-cv0.030'] and Metric('JobType') != 'report'")
    assert runs.groupby == ["config.method", "config.color_var"]
    panels = {type(p).__name__: p for p in report.blocks[9].panels}
    assert panels["BarPlot"].metrics == ["test/acc"]
    assert [p.y for p in report.blocks[9].panels if isinstance(p, wr.LinePlot)] == [
        ["val_unbiased/acc"], ["val_biased/acc"], ["bias/acc"]]
    assert panels["CustomChart"].query == {"summaryTable": {"tableKey": "test/confusion_matrix_table"}}
    figures = report.blocks[14]
    assert figures.runsets[0].filters == "Metric('JobType') == 'report' and Metric('Name') == 'report-paper'"
    assert figures.panels[0].media_keys == figure_keys
    # every panel reads a key the runs log
    assert wrep.panel_keys(report) - set(figure_keys) <= wrep.LOGGED_KEYS


def test_a_search_gets_parallel_coordinates_and_importance(records):
    tuned = copy.deepcopy(records)
    for k, r in enumerate(tuned):
        r["config"].update(lr=0.001 * (k + 1), optimizer="sgd", momentum=0.9)
        r["config"]["study"] = "lnl_tune-lnl-cv0.020"
    assert wrep.tuned_parameters(tuned) == ["lr"]
    report = wrep.build(tuned, "me", "p", title="Study")
    heads = [b.text for b in report.blocks if isinstance(b, wr.H2)]
    assert heads[-1] == "Tuning"
    grid = report.blocks[-1]
    coords = next(p for p in grid.panels if isinstance(p, wr.ParallelCoordinatesPlot))
    assert [c.metric.name for c in coords.columns] == ["lr", "val_unbiased/acc"]
    assert isinstance(coords.columns[0].metric, wr.Config)
    assert next(p for p in grid.panels if isinstance(p, wr.ParameterImportancePlot)).with_respect_to == \
        "val_unbiased/acc"
    assert grid.runsets[0].filters.startswith("Metric('Group') in ['lnl_tune-lnl-cv0.020']")


def test_the_paper_grid_has_no_tuning_section():
    """Methods with their own recipes (baseline lr 0.01, LNL lr 0.001 from the baseline) are not a search."""
    paper = [r for r in load.from_folders([REPO / "results"]) if r["config"].get("recipe") == "official_short"]
    assert wrep.tuned_parameters(paper) == []
    report = wrep.build(paper, "me", "p", title="Paper grid")
    assert [b.text for b in report.blocks if isinstance(b, wr.H2)] == [
        "Selection rule: last", "Selection rule: val_biased", "Selection rule: val_unbiased", "Runs"]


def test_a_wandb_sweep_is_filtered_by_its_sweep_id(records):
    for r in records:
        r["wandb"] = {"sweep": "abc123"}
    assert wrep.run_filter(records) == "Metric('Sweep') in ['abc123'] and Metric('JobType') != 'report'"


@pytest.mark.slow
def test_dry_run_writes_the_spec_without_a_server(tmp_path):
    out = tmp_path / "rep"
    proc = subprocess.run([sys.executable, "scripts/report.py", "--runs", str(FIXTURES / "records"), "--out", str(out),
                           "--no-samples", "--wandb-report", "me/my-lnl", "--dry-run"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    spec = json.loads((out / "wandb_report.json").read_text())
    assert spec["displayName"] == "Colored MNIST: unbiased test accuracy"
    assert spec["project"] == {"name": "my-lnl", "entityName": "me"}
    blocks = spec["spec"]["blocks"]
    markdown = [b["content"] for b in blocks if b["type"] == "markdown-block"]
    assert markdown[1] == (out / "table_last.md").read_text()  # the same table as the folder report
    grids = [b for b in blocks if b["type"] == "panel-grid"]
    run_set = grids[0]["metadata"]["runSets"][0]
    assert run_set["project"]["id"] == wrep.OFFLINE_PROJECT_ID
    assert {f["key"]["name"] for f in run_set["filters"]["filters"]} == {"group", "jobType"}
    views = [p["viewType"] for p in grids[0]["metadata"]["panelBankSectionConfig"]["panels"]]
    assert views[:4] == ["Bar Chart", "Run History Line Plot", "Run History Line Plot", "Run History Line Plot"]
    media = grids[-1]["metadata"]["panelBankSectionConfig"]["panels"][0]["config"]
    assert sorted(media["mediaKeys"]) == sorted(f"figures/{p.stem}" for p in (out / "figures").glob("*.png"))
    bad = subprocess.run([sys.executable, "scripts/report.py", "--runs", str(FIXTURES / "records"), "--out", str(out),
                          "--no-samples", "--wandb-report", "no-project", "--dry-run"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "ENTITY/PROJECT" in bad.stderr
