"""The report: selection rules, aggregation, golden Markdown table, every figure, W&B in and out.

Golden file: tests/fixtures/golden_table_last.md. After changing the table format or
the fixture records (python tests/fixtures/make_records.py), regenerate it with

    LNL_REGENERATE_GOLDEN=1 python -m pytest tests/test_report.py -k golden

and review the diff.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from conftest import REPO
from lnl import selection
from lnl.report import load, render, tables
from lnl.report.build import build_report, publish_wandb

FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden_table_last.md"


@pytest.fixture
def records(cache_dir):
    recs = load.from_folders([FIXTURES / "records"])
    for r in recs:  # the sample-image figure regenerates nothing: use the session's data cache
        r["config"]["cache_dir"] = str(cache_dir)
    return recs


def test_fixture_records_cover_two_methods_two_levels_two_seeds(records):
    runs = tables.runs_frame(records)
    finished = runs[runs["status"] == "finished"]
    assert finished.groupby(["method", "color_var"]).size().to_dict() == {
        ("baseline", 0.02): 2, ("baseline", 0.03): 2, ("lnl", 0.02): 2, ("lnl", 0.03): 2}
    assert all(len(r["confusion"]) == 3 for r in records if r["status"] == "finished")


def test_golden_markdown_table(records):
    text = render.to_markdown(tables.comparison(records, "last", "std"))
    if os.environ.get("LNL_REGENERATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_selection_rules_pick_the_right_epoch():
    epochs = [{"epoch": 1, "val_biased/acc": 0.90, "val_unbiased/acc": 0.30, "test/acc": 0.31},
              {"epoch": 2, "val_biased/acc": 0.97, "val_unbiased/acc": 0.50, "test/acc": 0.52},
              {"epoch": 3, "val_biased/acc": 0.97, "val_unbiased/acc": 0.70, "test/acc": 0.69},
              {"epoch": 4, "val_biased/acc": 0.95, "val_unbiased/acc": 0.60, "test/acc": 0.99}]
    assert selection.select_epoch(epochs, "last")["epoch"] == 4
    assert selection.select_epoch(epochs, "val_biased")["epoch"] == 2  # tie 0.97: the earliest epoch
    assert selection.select_epoch(epochs, "val_unbiased")["epoch"] == 3  # never the test-best epoch 4
    with pytest.raises(ValueError):
        selection.select_epoch(epochs, "test")


def test_a_record_keeps_the_confusion_matrices_its_rules_can_pick_after_every_epoch():
    epochs = [{"epoch": 1, "val_biased/acc": 0.90, "val_unbiased/acc": 0.30, "test/acc": 0.31},
              {"epoch": 2, "val_biased/acc": 0.97, "val_unbiased/acc": 0.50, "test/acc": 0.52},
              {"epoch": 3, "val_biased/acc": 0.97, "val_unbiased/acc": 0.70, "test/acc": 0.69},
              {"epoch": 4, "val_biased/acc": 0.95, "val_unbiased/acc": 0.60, "test/acc": 0.99},
              {"epoch": 5, "val_biased/acc": 0.93, "val_unbiased/acc": 0.65, "test/acc": 0.70}]
    kept: dict = {}
    for i, e in enumerate(epochs):  # as training does: add the epoch's matrix, then prune
        kept = selection.keep_selectable({**kept, str(e["epoch"]): [[e["epoch"]]]}, epochs[:i + 1])
    assert set(kept) == {"2", "3", "5"} == {str(selection.select_epoch(epochs, r)["epoch"]) for r in selection.RULES}
    assert kept["3"] == [[3]]  # each epoch keeps its own matrix


def test_selection_over_configurations_uses_the_rules_validation_metric():
    def run(run_id, lr, seed, vb, vu, test):
        return {"run_id": run_id, "status": "finished", "confusion": {},
                "config": {"method": "lnl", "color_var": 0.02, "seed": seed, "lr": lr},
                "epochs": [{"epoch": 1, "val_biased/acc": vb, "val_unbiased/acc": vu, "test/acc": test}]}

    recs = [run("a0", 0.1, 0, 0.99, 0.40, 0.41), run("a1", 0.1, 1, 0.98, 0.42, 0.43),
            run("b0", 0.01, 0, 0.95, 0.80, 0.79), run("b1", 0.01, 1, 0.96, 0.82, 0.81)]
    by_vb = tables.choose_configurations(tables.selected_runs(recs, "val_biased"))
    by_vu = tables.choose_configurations(tables.selected_runs(recs, "val_unbiased"))
    assert sorted(by_vb["run_id"]) == ["a0", "a1"] and sorted(by_vu["run_id"]) == ["b0", "b1"]


@pytest.mark.parametrize("error", ["std", "sem"])
def test_plus_minus_is_what_the_header_says(records, error):
    table = tables.comparison(records, "val_unbiased", error)
    for method in ("baseline", "lnl"):
        tests = [selection.select_epoch(r["epochs"], "val_unbiased")["test/acc"] for r in records
                 if r["status"] == "finished" and r["config"]["method"] == method and r["config"]["color_var"] == 0.02]
        row = table[(table["method"] == method) & (table["color_var"] == 0.02)].iloc[0]
        std = float(np.std(tests, ddof=1))
        assert row["mean"] == pytest.approx(np.mean(tests)) and row["n"] == len(tests) == 2
        assert row["error"] == pytest.approx(std if error == "std" else std / math.sqrt(2))
    text = render.to_markdown(table)
    assert ("standard deviation (ddof=1)" in text) == (error == "std")
    assert ("standard error of the mean" in text) == (error == "sem")


def test_missing_cells_and_unfinished_runs_are_shown(records):
    table = tables.comparison(records, "last")
    missing = table[(table["method"] == "lnl") & (table["color_var"] == 0.025)].iloc[0]
    assert missing["n"] == 0 and math.isnan(missing["mean"]) and missing["paper"] == pytest.approx(0.8854)
    cell = table[(table["method"] == "lnl") & (table["color_var"] == 0.03)].iloc[0]
    assert cell["n"] == 2 and cell["runs"] == 2  # the diverged run is another configuration: listed below
    partial = [r for r in records if r["run_id"] != "lnl-cv0.030-s1"]
    partial.append({**next(r for r in records if r["run_id"] == "lnl-cv0.030-s1"), "status": "failed"})
    assert "(n=1/2)" in render.to_markdown(tables.comparison(partial, "last"))  # a failed seed of the same config
    problems = tables.status_table(records)
    assert problems["run_id"].tolist() == ["lnl-cv0.030-s2"] and problems["status"].tolist() == ["diverged"]
    latex = render.to_latex(table)
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex and r"$\pm$" in latex


def _small_study():
    study = optuna.create_study(study_name="lnl_tune-lnl-cv0.020", direction="maximize")
    study.optimize(lambda t: 1 - (t.suggest_float("lambda", 1e-3, 1, log=True) - 0.1) ** 2
                   + 0.1 * t.suggest_float("mu", 0.01, 10, log=True), n_trials=6)
    return study


def test_every_figure_is_written_and_non_empty(records, tmp_path):
    written = build_report(records, tmp_path / "rep", studies=[_small_study()])
    names = {p.relative_to(tmp_path / "rep").as_posix() for p in written}
    for stem in ("confusion_grid", "accuracy_vs_color_var", "training_curves", "samples",
                 "optuna_history_lnl_tune-lnl-cv0.020", "optuna_importances_lnl_tune-lnl-cv0.020"):
        for suffix in ("png", "pdf"):
            assert f"figures/{stem}.{suffix}" in names
            assert (tmp_path / "rep" / "figures" / f"{stem}.{suffix}").stat().st_size > 5000
    for name in ("README.md", "results.csv", "runs.csv", "table_last.md", "table_val_biased.tex"):
        assert name in names
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert readme.count("![") == 6 and "lnl-cv0.030-s2" in readme and "Selection: `val_unbiased`" in readme
    assert all(Path(tmp_path / "rep" / p).exists() for p in names)


def test_a_report_without_pdfs_writes_and_links_none(records, tmp_path):
    """Study pages live in the tracked tree: PNG only, and no link to a PDF that is not there."""
    written = build_report(records, tmp_path / "rep", studies=[_small_study()], pdf=False)
    assert written and not any(p.suffix == ".pdf" for p in written)
    assert not list((tmp_path / "rep").rglob("*.pdf"))
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert readme.count("![") == 6 and "[PDF]" not in readme


@pytest.mark.slow
def test_report_script(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/report.py", "--runs", str(FIXTURES / "records"), "--out",
                           str(tmp_path / "r"), "--error", "sem", "--no-samples"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "standard error of the mean" in (tmp_path / "r" / "table_last.md").read_text()
    bad = subprocess.run([sys.executable, "scripts/report.py", "--runs", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "x")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2


class _FakeRun:
    def __init__(self, record):
        self.id, self.name, self.state, self.path = record["run_id"][-6:], record["run_id"], "finished", \
            ["ent", "proj", record["run_id"][-6:]]
        self.config = {**record["config"], "_wandb": {}}
        last = str(record["epochs"][-1]["epoch"])
        self.summary = {**record["final"], "status": record["status"], "test/confusion": record["confusion"].get(last),
                        "_runtime": 3.0}
        self._history = [{**e, "_step": i} for i, e in enumerate(record["epochs"])]

    def history(self, keys=None, pandas=True):
        return [{k: v for k, v in row.items() if k in keys or k.startswith("_")} for row in self._history]


class _FakeApi:
    def __init__(self, records):
        self.records, self.calls = records, []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        return [_FakeRun(r) for r in self.records]


def test_wandb_runs_read_into_the_same_schema(records):
    api = _FakeApi(records)
    from_wandb = load.from_wandb("ent/proj", sweeps=["abc"], group=None, api=api)
    assert api.calls == [("ent/proj", {"sweep": {"$in": ["abc"]}})]
    assert [r["run_id"] for r in from_wandb] == [r["run_id"] for r in records]
    local = tables.comparison(records, "val_biased")
    remote = tables.comparison(from_wandb, "val_biased")
    assert local[["mean", "n"]].fillna(-1).equals(remote[["mean", "n"]].fillna(-1))


@pytest.mark.slow  # a W&B offline run starts W&B\'s service process
def test_publish_to_wandb_offline(records, tmp_path, monkeypatch):
    from wandb_log import read_run

    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    out = tmp_path / "rep"
    written = build_report(records, out)
    info = publish_wandb(out, written, records, mode="offline")
    logged = read_run(next(Path(info["dir"]).glob("run-*.wandb")))
    assert logged["run"].job_type == "report"
    keys = set(logged["summary"])
    assert {"tables/results/_type", "figures/confusion_grid/_type", "figures/training_curves/_type"} <= keys


@pytest.mark.parametrize("argv0", ["/x/lnl/commands/report.py", "/x/scripts/report.py", "/x/.venv/bin/lnl-report"])
def test_report_names_its_command_as_typed(argv0, monkeypatch):
    """However lnl-report was started, the report's "Generated by" line shows `lnl-report <flags>`."""
    from lnl.report.build import command_line

    monkeypatch.setattr(sys, "argv", [argv0, "--runs", "my runs", "--out", "r"])
    assert command_line() == "lnl-report --runs 'my runs' --out r"
    monkeypatch.setattr(sys, "argv", ["/x/other.py", "--a"])
    assert command_line() == "python /x/other.py --a"


def test_a_record_from_before_a_field_existed_groups_with_newer_seeds():
    """Seed 0 written before `alpha` existed (no key), seed 1 after (its default): one configuration, so
    the table's mean is over both seeds; a non-default value is another configuration."""
    from lnl.config import Config

    new = Config(method="lnl", seed=1).to_dict()
    old = {k: v for k, v in Config(method="lnl", seed=0).to_dict().items() if k not in ("alpha", "mu_schedule")}
    assert tables.configuration_key(old) == tables.configuration_key(new)
    assert tables.configuration_key({**new, "mu_schedule": "dann"}) != tables.configuration_key(new)


def test_calibration_separates_clipped_and_redrawn_jitter_and_ignores_lnl():
    """Each (reading of sigma^2, color bounds) is its own row; a record from before color_bounds existed
    counts as clipped; LNL never enters the calibration."""
    from lnl.config import Config

    def rec(method, acc, **extra):
        config = Config(method=method, color_var=0.05, **extra).to_dict()
        return {"status": "finished", "config": config, "epochs": [{"epoch": 1, "test/acc": acc}]}

    old = rec("baseline", 0.867)
    old["config"].pop("color_bounds")
    table = tables.calibration([old, rec("baseline", 0.916, color_bounds="resample"), rec("lnl", 0.959),
                                rec("gray", 0.966)])
    got = {(r.color_noise, r.method): (round(r.mean, 3), round(r.diff, 3)) for r in table.itertuples()}
    assert got == {("per_channel_var", "baseline"): (0.867, 0.022),
                   ("per_channel_var + resample", "baseline"): (0.916, 0.071),
                   ("per_channel_var", "gray"): (0.966, 0.006)}
    assert "closest: **`per_channel_var`**" in render.calibration_markdown(table)


def test_time_to_accuracy_reads_validation_means_and_costs_the_pretraining():
    """Issue 12 item 7: the fewest epochs whose mean val_unbiased over seeds reaches the paper's LNL row
    (0.8185 at sigma^2 = 0.020), its test accuracy, its cost; never a test-chosen length; cosine runs (their
    prefixes are not shorter runs) and baselines (their paper row is no target) left out."""
    def run(run_id, method, seed, vu, test, epoch_s, **config):
        epochs = [{"epoch": i + 1, "val_unbiased/acc": v, "test/acc": t, "time/epoch_s": s, "time/eval_s": 5.0}
                  for i, (v, t, s) in enumerate(zip(vu, test, epoch_s))]
        return {"run_id": run_id, "status": "finished", "epochs": epochs, "confusion": {},
                "init": {"from_run": f"base{seed}"} if method == "lnl" else None,
                "config": {"method": method, "color_var": 0.02, "seed": seed, "lr_schedule": "step", **config}}

    base = [run(f"base{s}", "baseline", s, [0.40] * 2, [0.40] * 2, [55.0, 55.0]) for s in (0, 1)]
    # seed 0 reaches 0.8185 at epoch 2, seed 1 at epoch 3; their mean (0.815, 0.825, 0.835) at epoch 3;
    # the test accuracy peaks at epoch 4, which must not matter. Seed 1's 3rd epoch was paused (900 s).
    lnl = [run("l0", "lnl", 0, [0.70, 0.82, 0.83, 0.84], [0.69, 0.80, 0.82, 0.90], [85.0, 85.0, 85.0, 85.0]),
           run("l1", "lnl", 1, [0.60, 0.81, 0.82, 0.83], [0.61, 0.79, 0.81, 0.90], [85.0, 85.0, 900.0, 85.0])]
    cosine = [run(f"c{s}", "lnl", s, [0.9] * 4, [0.9] * 4, [85.0] * 4, lr_schedule="cosine") for s in (0, 1)]
    table = tables.time_to_accuracy(base + lnl + cosine)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["method"] == "lnl" and row["seeds"] == 2 and row["reached"] and row["epochs"] == 3
    assert math.isclose(row["val_mean"], 0.825) and math.isclose(row["test_mean"], 0.815)
    assert math.isclose(row["test_std"], float(np.std([0.82, 0.81], ddof=1)))
    # 3 epochs x the median epoch (85 + 5 s) + the baseline's 2 epochs x 60 s, in minutes
    assert math.isclose(row["minutes"], (3 * 90 + 2 * 60) / 60) and row["pretrained"]
    text = render.time_to_accuracy_markdown(table)
    assert "| lnl | 0.020 |" in text and "| 3 | 0.8250 | 0.8150 ± 0.0071 | 0.8185 | 6.5 | yes |" in text
    slow = tables.time_to_accuracy(base + [run(f"s{s}", "lnl", s, [0.70, 0.80], [0.7, 0.99], [85.0, 85.0])
                                           for s in (0, 1)])
    assert not slow.iloc[0]["reached"] and slow.iloc[0]["best_epoch"] == 2
    assert "not reached (best mean: epoch 2)" in render.time_to_accuracy_markdown(slow)


def test_per_class_pools_the_chosen_configurations_seeds_at_the_selected_epoch():
    """Per-digit accuracy from the confusion matrices of the epoch each rule picks, summed over the seeds of
    the configuration the rule chose: a digit failing on every seed shows as the weakest even when the mean
    accuracy looks fair."""
    def cm(correct_9):  # 10 test images per digit; all right except digit 9 (`correct_9` of 10) and 0 -> 6
        m = np.eye(10, dtype=int) * 10
        m[9, 9], m[9, 7] = correct_9, 10 - correct_9
        m[0, 0], m[0, 6] = 8, 2
        return m.tolist()

    def run(run_id, seed, lam, confusions, vu):
        epochs = [{"epoch": i + 1, "val_unbiased/acc": v, "val_biased/acc": 0.9, "test/acc": 0.5}
                  for i, v in enumerate(vu)]
        return {"run_id": run_id, "status": "finished", "epochs": epochs,
                "confusion": {str(i + 1): c for i, c in enumerate(confusions)},
                "config": {"method": "lnl", "color_var": 0.02, "seed": seed, "lambda": lam}}

    chosen = [run("a0", 0, 0.1, [cm(0), cm(3)], [0.5, 0.8]), run("a1", 1, 0.1, [cm(0), cm(1)], [0.5, 0.7])]
    other = [run("b0", 0, 0.3, [cm(10)] * 2, [0.2, 0.3]), run("b1", 1, 0.3, [cm(10)] * 2, [0.2, 0.3])]
    records = chosen + other
    table = tables.per_class(tables.choose_configurations(tables.selected_runs(records, "val_unbiased")))
    row = table.iloc[0]
    assert len(table) == 1 and row["seeds"] == 2 and row["weakest"] == 9
    assert math.isclose(row["9"], 4 / 20) and math.isclose(row["0"], 0.8) and math.isclose(row["5"], 1.0)
    first = tables.per_class(tables.choose_configurations(tables.selected_runs(chosen, "val_biased")))
    assert math.isclose(first.iloc[0]["9"], 0.0)  # val_biased ties at 0.9: the earliest epoch, 0 of 10 right
    text = render.per_class_markdown(table)
    assert "| lnl | 0.020 | 2 | 0.80 | 1.00 |" in text and text.rstrip().endswith("| **0.20** |")


def test_studies_table_counts_a_multi_seed_trial_once_with_its_mean():
    """--seeds-per-trial 2: trial 0's two runs are one trial whose value is their mean best-epoch
    val_unbiased (what Optuna maximized), not the better seed; trial 1 lost a seed run, so it is not
    finished and has no value; a single-seed study still reads as before."""
    def run(run_id, trial, lam, vu, status="finished", study="s3"):
        return {"run_id": run_id, "status": status, "epochs": [{"epoch": i + 1, "val_unbiased/acc": v}
                                                               for i, v in enumerate(vu)],
                "config": {"method": "lnl", "color_var": 0.02, "seed": 0, "study": study, "trial": trial,
                           "lambda": lam}}

    records = [run("s3-trial0000", 0, 0.3, [0.70, 0.78]), run("s3-trial0000-seed1", 0, 0.3, [0.76, 0.74]),
               run("s3-trial0001", 1, 0.1, [0.90, 0.95]), run("s3-trial0001-seed1", 2, 0.1, [0.5], "running"),
               run("one-trial0000", 0, 0.3, [0.6], study="one"), run("one-trial0001", 1, 0.1, [0.7], study="one")]
    table = tables.studies_table(records).set_index("study")
    s3 = table.loc["s3"]
    assert (s3["trials"], s3["seeds"], s3["finished"], s3["failed"]) == (2, 2, 1, 1)
    assert s3["best_trial"] == 0 and math.isclose(s3["best val_unbiased/acc"], 0.77)  # mean(0.78, 0.76)
    assert s3["best_params"] == "lambda=0.3"
    one = table.loc["one"]
    assert (one["trials"], one["seeds"], one["best_trial"], one["best_params"]) == (2, 1, 1, "lambda=0.1")


def test_no_storage_password_reaches_the_page_or_the_report_spec(tmp_path, monkeypatch):
    """A password in --optuna-storage (in the authority or the query, percent-encoded or not, as `--flag URL` or
    `--flag=URL`) is masked everywhere lnl-report writes its command line: README.md and the W&B Report spec."""
    import lnl.optuna_storage
    from lnl.commands import report as report_cmd

    monkeypatch.setattr(lnl.optuna_storage, "studies_of", lambda records, storage: [])
    for url in ("postgresql+psycopg2://lnl@db.example/lnl?password=s3cr3t%21pw", "postgresql://lnl:s3cr3t!pw@db/x"):
        for form in ([ "--optuna-storage", url], [f"--optuna-storage={url}"]):
            out = tmp_path / f"rep{abs(hash((url, form[0])))}"
            argv = ["--runs", str(REPO / "tests" / "fixtures" / "records"), "--out", str(out), "--no-samples",
                    *form, "--wandb-report", "me/p", "--dry-run"]
            monkeypatch.setattr(sys, "argv", ["lnl-report", *argv])
            assert report_cmd.main(argv) == 0
            for path in (out / "README.md", out / "wandb_report.json"):
                text = path.read_text()
                assert "s3cr3t" not in text and "%21pw" not in text, path
            assert "***" in (out / "README.md").read_text()


def test_an_unreachable_storage_is_one_line_without_its_password(tmp_path, capsys):
    from lnl.commands import report as report_cmd

    code = report_cmd.main(["--runs", str(REPO / "tests" / "fixtures" / "records"), "--out", str(tmp_path / "r"),
                            "--optuna-storage", "postgresql+psycopg2://lnl:s3cr3t@127.0.0.1:9/none"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "s3cr3t" not in err and err.startswith("error: --optuna-storage")


@pytest.mark.parametrize("field,value,reason", [
    ("color_var", "0.02", "config.color_var is '0.02', not a number"),
    ("epochs", {"1": {"epoch": 1}}, "epochs is not a list"),
    ("confusion", {"3": [[1, 2], [3]]}, "the confusion matrix of epoch 3"),
])
def test_one_bad_record_is_skipped_and_named_unless_strict(field, value, reason, tmp_path, capsys):
    """A wrong-typed field in one record: the report goes on without it, naming the file and why; --strict
    makes it an error (exit 2, one line, the file named)."""
    import shutil

    from lnl.commands import report as report_cmd

    runs = tmp_path / "runs"
    shutil.copytree(REPO / "tests" / "fixtures" / "records", runs)
    bad = runs / "lnl-cv0.020-s0" / "record.json"
    record = json.loads(bad.read_text())
    if field == "color_var":
        record["config"]["color_var"] = value
    else:
        record[field] = value
    bad.write_text(json.dumps(record))
    out = tmp_path / "rep"
    assert report_cmd.main(["--runs", str(runs), "--out", str(out), "--no-samples"]) == 0
    err = capsys.readouterr().err
    assert f"skipping {bad}: {reason}" in err
    assert (out / "README.md").is_file() and "lnl" in (out / "README.md").read_text()
    assert report_cmd.main(["--runs", str(runs), "--out", str(tmp_path / "strict"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: {reason}") and err.count("\n") == 1


def test_recipe_cost_splits_phases_per_machine_and_names_where_the_pretrained_run_ran():
    """Issue 38 item 4: minutes per (sigma^2, seed) per recipe, the pretrained phase (found by init.from_run)
    apart from the run's own training and evaluation, each priced at its median epoch; the machine named by
    the record (CPU model and precision, or the GPU), a pretrained run on another machine named as such."""
    from lnl.report import recipe_cost

    def run(run_id, method, seed, epoch_s, eval_s, device_name, device="cpu", start=None, recipe="fast"):
        epochs = [{"epoch": i + 1, "time/epoch_s": s, "time/eval_s": eval_s} for i, s in enumerate(epoch_s)]
        return {"run_id": run_id, "status": "finished", "epochs": epochs, "init": {"from_run": start} if start else None,
                "env": {"device": device, "device_name": device_name, "precision": "bf16", "threads": 2},
                "config": {"method": method, "color_var": 0.02, "seed": seed, "recipe": recipe,
                           "init_from": "baseline" if start else None}}

    cpu = "AMD EPYC (AVX-512 bf16)"
    base = [run("b0", "baseline", 0, [60.0, 60.0, 6000.0], 6.0, cpu), run("b1", "baseline", 1, [30.0] * 3, 6.0, cpu)]
    lnl = [run("l0", "lnl", 0, [120.0] * 2, 12.0, cpu, start="b0"),
           run("l1", "lnl", 1, [120.0] * 2, 12.0, "NVIDIA H200", device="cuda", start="b1")]
    table = recipe_cost.recipe_cost({"fast": base + lnl}, base + lnl)
    rows = {(r.method, r.machine): r for r in table.itertuples()}
    assert set(rows) == {("baseline", f"{cpu}, bf16, 2 threads"), ("lnl", f"{cpu}, bf16, 2 threads"),
                         ("lnl", "NVIDIA H200, bf16")}
    b = rows[("baseline", f"{cpu}, bf16, 2 threads")]
    assert b.seeds == 2 and b.pretrained == "" and b.pretrained_min == 0.0
    assert math.isclose(b.train_min, (3 * 60 + 3 * 30) / 2 / 60) and math.isclose(b.eval_min, 3 * 6 / 60)
    here = rows[("lnl", f"{cpu}, bf16, 2 threads")]
    assert math.isclose(here.pretrained_min, (3 * 60 + 3 * 6) / 60) and here.pretrained == "baseline"
    assert math.isclose(here.total_min, here.pretrained_min + 2 * 132 / 60)
    assert rows[("lnl", "NVIDIA H200, bf16")].pretrained == f"baseline, on {cpu}, bf16, 2 threads"
    text = recipe_cost.markdown(table)
    assert "| fast | lnl | 0.020 | 1 | AMD EPYC (AVX-512 bf16), bf16, 2 threads | 3.3 (baseline) | 2 | 4.0 | 0.4 | 7.7 |" \
        in text
    missing = recipe_cost.recipe_cost({"fast": lnl[:1]}, lnl[:1])  # its baseline is not in the store given
    assert math.isnan(missing.iloc[0]["pretrained_min"]) and "not in store" in recipe_cost.markdown(missing)
    old = dict(base[0], env={"device": "cpu", "device_name": "x86_64", "precision": "fp32", "threads": 1})
    assert recipe_cost.where(old) == "CPU (model not recorded), fp32, 1 thread"


def test_a_run_resumed_on_another_machine_is_priced_per_machine():
    """A GPU job stopped at its deadline and finished on a CPU: each stretch at its own median epoch, the row
    naming both; records from before ``machines`` existed are recognised by GPU-speed first epochs."""
    from lnl.report import recipe_cost
    from lnl.training.run_folder import machines

    gpu = {"device": "cuda", "device_name": "NVIDIA H200", "precision": "bf16", "threads": 16}
    cpu = {"device": "cpu", "device_name": "AMD EPYC (AVX-512 bf16)", "precision": "bf16", "threads": 2}
    history = machines(machines([], 1, gpu), 1, gpu)
    assert history == [{"from_epoch": 1, **gpu}] and machines(history, 19, dict(gpu, extra=1)) == history
    history = machines(history, 19, cpu)
    assert [m["from_epoch"] for m in history] == [1, 19]
    epochs = [{"epoch": i + 1, "time/epoch_s": 4.0 if i == 0 else (2.4 if i < 18 else 24.0), "time/eval_s": 0.1}
              for i in range(20)]
    rec = {"epochs": epochs, "env": cpu, "machines": history}
    assert recipe_cost.where(rec) == "NVIDIA H200, bf16, then AMD EPYC (AVX-512 bf16), bf16, 2 threads"
    assert math.isclose(recipe_cost.phase_minutes(rec)[0], (18 * 2.4 + 2 * 24.0) / 60)
    legacy = {"epochs": epochs, "env": cpu}   # the same run before records named each machine
    assert recipe_cost.where(legacy) == recipe_cost.UNRECORDED + ", then AMD EPYC (AVX-512 bf16), bf16, 2 threads"
    assert math.isclose(recipe_cost.phase_minutes(legacy)[0], (18 * 2.4 + 2 * 24.0) / 60)
    busy = {"epochs": [dict(e, **{"time/epoch_s": 20.0 if e["epoch"] < 20 else 140.0}) for e in epochs], "env": cpu}
    assert recipe_cost.where(busy) == "AMD EPYC (AVX-512 bf16), bf16, 2 threads"   # a slow epoch: still one CPU


def test_a_report_of_runs_scored_after_their_last_epoch_only(records, tmp_path):
    """eval_every 0 (the demo's runs): the epochs before the last have no accuracies; every table and figure
    is still written, and each run reads its last epoch."""
    import copy

    sparse = copy.deepcopy(records)
    for r in sparse:
        for e in r["epochs"][:-1]:
            e.update(dict.fromkeys(("bias/acc", "bias/acc_biased", "val_biased/acc", "val_unbiased/acc",
                                    "test/acc")), **{"time/eval_s": 0.0})
        last = str(r["epochs"][-1]["epoch"]) if r["epochs"] else None
        r["confusion"] = {k: v for k, v in r["confusion"].items() if k == last}
    written = build_report(sparse, tmp_path / "rep", pdf=False)
    assert (tmp_path / "rep" / "figures" / "training_curves.png").stat().st_size > 5000
    full, last_only = (tables.comparison(rs, "last") for rs in (records, sparse))
    assert full[["mean", "n"]].equals(last_only[["mean", "n"]]) and written


def test_evaluation_minutes_count_the_scored_epochs_only():
    """A run scored after some epochs only (eval_every) records 0 s of evaluation for the others: the phase's
    evaluation minutes are its scored epochs' median times their count, not the median of all times all."""
    from lnl.report import recipe_cost

    record = {"env": {"device": "cpu", "device_name": "x", "precision": "fp32", "threads": 2},
              "epochs": [{"epoch": i + 1, "time/epoch_s": 30.0, "time/eval_s": 0.0 if i < 3 else 6.0}
                         for i in range(4)]}
    assert recipe_cost.phase_minutes(record) == (4 * 30 / 60, 6 / 60)
