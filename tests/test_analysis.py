"""lnl.analysis and lnl.report.select on small fixtures: the headline table's arithmetic, the paper's curve at
equal Baseline accuracy, a study's comparison table, and runs selected by configuration."""
from __future__ import annotations

import copy
import json

import pytest

from conftest import REPO
from lnl.analysis import equal_baseline, figures, headline, protocol, study
from lnl.analysis.paper import paper
from lnl.config import Config
from lnl.report.select import pairs, select, selection_key


def _record(method: str, cv: float, seed: int, accs: list[float], status: str = "finished", **config) -> dict:
    """A record whose test accuracy is ``accs`` per epoch and whose val_unbiased peaks at the second epoch."""
    cfg = Config.from_dict({"method": method, "color_var": cv, "seed": seed, **config})
    epochs = [{"epoch": k + 1, "test/acc": a, "val_unbiased/acc": 0.9 if k == 1 else 0.5, "val_biased/acc": 0.5}
              for k, a in enumerate(accs)]
    return {"run_id": cfg.default_run_id(), "status": status, "config": cfg.to_dict(), "epochs": epochs,
            "identity": cfg.identity_hash()}


def test_headline_rows_are_means_over_finished_seeds():
    recs = [_record("lnl", 0.02, 0, [0.1, 0.8, 0.82]), _record("lnl", 0.02, 1, [0.1, 0.7, 0.86]),
            _record("lnl", 0.02, 2, [0.1, 0.9, 0.99], status="failed"), _record("gray", 0.05, 0, [0.95])]
    rows = {(r["system"], r["rule"], r["color_var"]): r for r in headline.rows(recs)}
    last = rows[("LNL", "last", 0.02)]
    assert last["n"] == 2 and last["mean"] == pytest.approx(0.84) and last["std"] == pytest.approx(0.0282843, rel=1e-4)
    assert last["diff"] == pytest.approx(0.84 - paper()[("lnl", 0.02)])
    assert rows[("LNL", "val_unbiased", 0.02)]["mean"] == pytest.approx(0.75)   # epoch 2 of each seed
    assert rows[("Gray", "last", 0.05)]["std"] is None and rows[("Gray", "last", 0.05)]["n"] == 1
    assert rows[("BlindEye", "last", 0.03)]["mean"] is None
    csv_text = headline.to_csv(headline.rows(recs))
    assert csv_text.splitlines()[0] == "system,rule,color_var,mean,std,n,paper,diff"
    assert "LNL,last,0.020,0.8400,0.0283,2,0.8185,0.0215" in csv_text.splitlines()
    assert "BlindEye,last,0.030,,,0,0.7883," in csv_text.splitlines()
    table = headline.markdown(headline.rows(recs))
    assert "| **LNL** | ours | 0.840 ± 0.028 (2) | — |" in table and "| **Gray** | ours | — |" in table


def test_a_method_the_paper_did_not_run_gets_a_row_of_ours_only(tmp_path):
    recs = [_record("baseline", 0.02, 0, [0.5]), _record("lnl", 0.02, 0, [0.8]), _record("lff", 0.02, 0, [0.6]),
            _record("lff", 0.02, 1, [0.7])]
    systems = headline.systems_of(("baseline", "lnl", "lff", "lnl"))
    assert systems == (("Baseline", "baseline"), ("LNL", "lnl"), ("LfF", "lff"))   # display names, first order
    table = headline.rows(recs, systems)
    text = headline.markdown(table)
    assert headline.names(table) == ["Baseline", "LNL", "LfF"]
    assert "| **LfF** | ours | 0.650 ± 0.071 (2) |" in text and text.count("| | paper |") == 2   # none for LfF
    assert "LfF,last,0.020,0.6500,0.0707,2,," in headline.to_csv(table)
    iso = equal_baseline.table(recs, systems=systems)
    assert [r["method"] for r in iso] == ["lnl"]               # no paper curve to set LfF against
    assert figures.accuracy_figure(table, tmp_path / "a.png").stat().st_size > 0
    assert figures.equal_baseline(iso, tmp_path / "e.png").stat().st_size > 0   # one panel


def test_the_protocol_note_measures_the_colour_conflicting_share_for_label_free_methods():
    low, high = protocol.conflicting_share(0.02, n=20_000), protocol.conflicting_share(0.05, n=20_000)
    assert 0 < low < high < 0.9                          # more jitter, more colours nearer another digit's mean
    assert protocol.conflicting_share(1e-6, n=20_000) == 0.0   # no jitter: every colour is its own digit's
    assert protocol.conflicting_share(0.02, n=20_000, seed=3) == protocol.conflicting_share(0.02, n=20_000, seed=3)
    assert protocol.note((("Baseline", "baseline"), ("LNL", "lnl"))) == ""   # the paper's systems: no note
    one = protocol.note((("LNL", "lnl"), ("LfF", "lff")), levels=(0.05, 0.02))
    assert one.startswith("LfF finds the bias") and "(σ² 0.020) to" in one and "up-weight." in one
    assert "ReBias" not in one
    both = protocol.note((("LfF", "lff"), ("ReBias", "rebias")), levels=(0.02, 0.05))
    assert both.startswith("LfF and ReBias find") and both.endswith("from a perfect score.")


def test_the_papers_curve_is_interpolated_between_its_own_points():
    assert equal_baseline.paper_at("lnl", 0.4055) == (pytest.approx(0.8185), False)   # its σ² 0.020 point
    assert equal_baseline.paper_at("lnl", 0.845) == (pytest.approx(0.9618), False)    # its σ² 0.050 point
    mid, extrapolated = equal_baseline.paper_at("gray", (0.6626 + 0.7333) / 2)
    assert mid == pytest.approx((0.9166 + 0.9325) / 2) and not extrapolated
    beyond, extrapolated = equal_baseline.paper_at("lnl", 0.866)                      # past its last Baseline
    slope = (0.9618 - 0.9555) / (0.845 - 0.7973)
    assert extrapolated and beyond == pytest.approx(0.9618 + slope * (0.866 - 0.845))


def test_equal_baseline_rows_pair_each_system_with_the_baseline_of_its_level(tmp_path):
    recs = [_record("baseline", 0.035, s, [0.70 + 0.01 * s]) for s in range(3)] + \
        [_record("lnl", 0.035, 0, [0.9]), _record("lnl", 0.05, 0, [0.95])]   # no Baseline at 0.050
    rows = equal_baseline.table(recs)
    assert [(r["system"], r["color_var"]) for r in rows] == [("LNL", 0.035)]
    assert rows[0]["baseline"] == pytest.approx(0.71)
    assert rows[0]["paper_at_baseline"] == pytest.approx(equal_baseline.paper_at("lnl", 0.71)[0])
    assert "| LNL | 0.035 | 0.710 | 0.900 (1) |" in equal_baseline.markdown(rows)
    assert figures.equal_baseline(rows, tmp_path / "f.png").stat().st_size > 0


def test_a_study_table_groups_its_grid_by_the_varied_settings():
    sweep = {"parameters": {"method": {"value": "lnl"}, "seed": {"values": [0, 1]},
                            "lambda": {"values": [0.01, 0.1]}}}
    configs = [Config.from_dict({"method": "lnl", "seed": s, "lambda": lam}) for lam in (0.01, 0.1) for s in (0, 1)]
    recs = [_record("lnl", 0.02, 0, [0.8], **{"lambda": 0.01}), _record("lnl", 0.02, 1, [0.9], **{"lambda": 0.01})]
    assert study.axes(sweep) == ["lambda"]
    text = study.markdown(sweep, pairs(recs, configs))
    assert "| 0.01 | 2/2 | 0.850 ± 0.071 |" in text and "| 0.1 | 0/2 | — |" in text


def test_runs_are_selected_by_configuration_not_by_folder_or_spelling():
    wanted = Config.from_dict({"method": "baseline", "color_var": 0.035, "palette": "reports/x/palette.csv"})
    rec = _record("baseline", 0.035, 0, [0.7], palette="/elsewhere/checkout/reports/x/palette.csv")
    assert rec["run_id"] != wanted.default_run_id()          # the path as typed entered the run id
    assert select([rec], [wanted]) == [rec]                 # yet it is the same run
    other = _record("baseline", 0.035, 0, [0.7], palette="reports/y/palette.csv")
    assert select([other], [wanted]) == []
    # a run started from another: its start counts, not the name of the recipe that trained it
    a = Config.from_dict({"method": "lnl", "init_from": "baseline", "lr": 0.001, "recipe": "official"})
    b = Config.from_dict({"method": "lnl", "init_from": "baseline", "lr": 0.001, "recipe": "headline",
                          "epochs": a.epochs, "lr_step_epochs": a.lr_step_epochs, "lambda": a.lambda_, "mu": a.mu,
                          "precision": a.precision, "alpha": a.alpha})
    assert a.default_run_id() == b.default_run_id() and selection_key(a) == selection_key(b)


def test_the_headline_sweep_names_the_committed_runs_by_id():
    """The recipe `headline` reproduces the run ids of the runs it stands for: a sweep point and its record in
    the store share one id (checked on a few records, whatever the store holds)."""
    from lnl.report.select import sweep_configs

    configs = {c.default_run_id(): c for c in sweep_configs(REPO / "sweeps" / "headline.yaml", REPO / "results")}
    stored = [p for p in (REPO / "results").glob("lnl-cv0.020-s*/record.json")]
    matched = [p for p in stored if p.parent.name in configs]
    assert matched
    for path in matched:
        record = json.loads(path.read_text())
        assert record["identity"] == configs[record["run_id"]].identity_hash()
        assert copy.deepcopy(record["config"])["epochs"] == configs[record["run_id"]].epochs


def test_a_recipe_beside_the_headline_is_held_to_the_criterion_per_level_and_seed():
    """Issue 38 item 3: LNL's 3-seed mean >= the headline's - 0.005, the Baseline within 0.01 of the
    headline's; judged only with 3 seeds on both sides, per level; per-seed values shown."""
    from lnl.analysis import recipe_compare

    def trio(method, cv, accs, **config):
        return [_record(method, cv, s, [0.1, a], **config) for s, a in enumerate(accs)]

    headline_runs = (trio("lnl", 0.02, [0.84, 0.85, 0.83]) + trio("baseline", 0.02, [0.50, 0.50, 0.50])
                     + trio("lnl", 0.05, [0.94, 0.94, 0.94]) + trio("baseline", 0.05, [0.86, 0.87, 0.86]))
    fast = (trio("lnl", 0.02, [0.836, 0.836, 0.836], epochs=3) + trio("baseline", 0.02, [0.511, 0.511, 0.511], epochs=3)
            + trio("lnl", 0.05, [0.92, 0.93, 0.94], epochs=3) + trio("baseline", 0.05, [0.86, 0.87], epochs=3))
    table = {(r["method"], r["color_var"]): r for r in recipe_compare.rows(fast, headline_runs)}
    assert table[("lnl", 0.02)]["meets"] is True          # 0.836 >= 0.840 - 0.005
    assert table[("baseline", 0.02)]["meets"] is False     # 0.511 is 0.011 above
    assert table[("lnl", 0.05)]["meets"] is False and table[("lnl", 0.05)]["diff"] == pytest.approx(-0.01)
    assert table[("baseline", 0.05)]["meets"] is None      # two seeds: not judged yet
    assert table[("lnl", 0.02)]["seeds"] == {0: 0.836, 1: 0.836, 2: 0.836}
    text = recipe_compare.verdict(list(table.values()), "fast")
    assert text.startswith("`fast` misses the criterion at ") and "LNL σ² 0.050 (-0.0100)" in text
    assert "Baseline σ² 0.020 (+0.0110)" in text
    page = recipe_compare.markdown(list(table.values()), "fast")
    assert "| LNL | 0.020 | s0 0.8360, s1 0.8360, s2 0.8360 | 0.8360 | s0 0.8400, s1 0.8500, s2 0.8300 |" in page
    good = [r for r in table.values() if r["meets"]]
    # LNL met at 0.020 but no Baseline judged there: the level is not met (a calibration row is part of it)
    assert recipe_compare.verdict(good, "fast") == ("`fast` cannot be judged yet: the criterion needs 3 seeds of "
                                                    "LNL and Baseline on both sides (σ² 0.020).")
    both = [dict(table[("baseline", 0.02)], meets=True), table[("lnl", 0.02)], table[("baseline", 0.05)]]
    assert recipe_compare.verdict(both, "fast", [0.02, 0.035, 0.05]) == (
        "`fast` meets the criterion at σ² 0.020; σ² 0.035, 0.050 not yet judged (fewer than 3 seeds of LNL or "
        "Baseline on a side).")
    assert recipe_compare.verdict(both[:2], "fast") == "`fast` meets the criterion at σ² 0.020."
    assert "cannot be judged yet" in recipe_compare.verdict([], "fast")


def test_the_page_says_what_each_system_knows_of_the_bias():
    from lnl.analysis.headline import bias_knowledge, systems_of

    assert bias_knowledge(systems_of()) == bias_knowledge() == (
        "What each system knows of the bias: BlindEye and LNL train against each pixel's colour label (bias "
        "labels); Gray knows that colour is the bias and sees gray images; Baseline uses no bias labels.")
    later = bias_knowledge(systems_of(("baseline", "blind_eye", "gray", "lnl", "lff", "rebias")))
    assert later.endswith("; Baseline, LfF and ReBias use no bias labels.")  # neither later method uses them
