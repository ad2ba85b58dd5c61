"""lnl-evaluate: a finished run's final network scored again, on its own data or on another draw."""
from __future__ import annotations

import csv

import pytest

from lnl.commands.evaluate import main
from lnl.training.loop import train
from lnl.records import read_record


@pytest.fixture(scope="module")
def finished_baseline(cache_dir, tmp_path_factory):
    """One small finished baseline shared by the tests here (they only read it)."""
    from conftest import TINY
    from lnl.config import Config

    runs = tmp_path_factory.mktemp("evaluate_runs")
    result = train(Config.from_dict({**TINY, "method": "baseline", "epochs": 2, "cache_dir": str(cache_dir),
                                     "runs_dir": str(runs)}))
    assert result.status == "finished"
    return result.run_dir


def test_rescoring_on_the_same_data_gives_the_recorded_accuracy(finished_baseline, tmp_path, capsys):
    out = tmp_path / "same.csv"
    assert main([str(finished_baseline), "--out", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open()))
    recorded = read_record(finished_baseline)["final"]["test/acc"]
    # the same network on the same 1,000 test images (bf16 where the run used it): at most one flip
    assert float(row["test/acc"]) == pytest.approx(recorded, abs=0.0015)
    assert float(row["record_test/acc"]) == pytest.approx(recorded)
    assert row["run_id"] in capsys.readouterr().out


def test_another_unbiased_draw_moves_a_color_reading_baseline(finished_baseline, tmp_path):
    """A baseline trained on biased colors is right where a test digit happens to wear its own
    class's color; the 'other_palette' draw removes those, so its accuracy must drop."""
    out = tmp_path / "other.csv"
    assert main([str(finished_baseline), "--set", "unbiased_colors=other_palette", "--splits", "test",
                 "--out", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open()))
    recorded = read_record(finished_baseline)["final"]["test/acc"]
    assert row["overrides"] == "unbiased_colors=other_palette"
    assert float(row["test/acc"]) < recorded - 0.02, (row, recorded)


def test_only_data_keys_may_change_and_unfinished_runs_are_refused(finished_baseline, tmp_path, capsys):
    assert main([str(finished_baseline), "--set", "lr=0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lr" in err and "cannot be changed after training" in err
    assert main([str(finished_baseline), "--set", "unbiased_colors=random"]) == 2
    assert "unbiased_colors" in capsys.readouterr().err
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    assert main([str(empty)]) == 1


def test_a_run_trained_on_another_device_is_scored_on_this_one(finished_baseline):
    """Records of GPU runs say device 'cuda'; scoring them on a CPU-only machine must still work."""
    from lnl.rescore import overridden_config

    record = read_record(finished_baseline)
    gpu_record = {**record, "config": {**record["config"], "device": "cuda"}}
    assert overridden_config(gpu_record, {}).device == "auto"
    assert overridden_config(gpu_record, {"device": "cpu"}).device == "cpu"


def test_predictions_on_test_break_the_accuracy_down_by_drawn_color(finished_baseline):
    """predictions_on_test: the same network's test predictions, labels and drawn palette means; its accuracy
    is the one lnl-evaluate prints, and the color ids are the data's own."""
    import numpy as np

    from lnl.rescore import evaluate_run, overridden_config, predictions_on_test, run_data

    record, cache = read_record(finished_baseline), {}
    cfg = overridden_config(record, {})
    pred, y, color = predictions_on_test(finished_baseline, cfg, record, cache)
    raw, _ = run_data(cfg, cache)
    assert len(pred) == len(y) == len(color) == cfg.test_size
    assert np.array_equal(color, raw.color("test")[: cfg.test_size]) and set(np.unique(color)) <= set(range(10))
    assert np.mean(pred == y) == pytest.approx(evaluate_run(finished_baseline, cfg, record, ["test"], cache)["test"])
    assert len(cache) == 1  # the data were loaded once for both
    # a baseline reads color: on digits drawn in their own class's color it does better than on the rest
    own = color == y
    assert np.mean(pred[own] == y[own]) > np.mean(pred[~own] == y[~own]) + 0.05


@pytest.mark.parametrize("planted", ["torch", "pickle", "altered"])
def test_a_planted_checkpoint_runs_no_code_and_is_one_line(finished_baseline, tmp_path, capsys, planted):
    """lnl-evaluate loads final.pt through lnl.store.load_checkpoint: the recorded digest first, then torch's
    weights-only unpickler. A payload in torch's format or as a bare pickle never runs."""
    import json
    import pickle
    import shutil

    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.touch, ())

    run = tmp_path / finished_baseline.name
    shutil.copytree(finished_baseline, run)
    if planted == "torch":
        torch.save({"model": Payload()}, run / "final.pt")
    elif planted == "pickle":
        (run / "final.pt").write_bytes(pickle.dumps(Payload()))
    else:
        (run / "final.pt").write_bytes((run / "final.pt").read_bytes()[:-100])
    if planted != "altered":  # the attacker also rewrites the record's digest: the unpickler still refuses
        from lnl.store import sha256_file

        record = json.loads((run / "record.json").read_text())
        record["final_checkpoint"]["sha256"] = sha256_file(run / "final.pt")
        (run / "record.json").write_text(json.dumps(record))
    code = main([str(run)])
    err = capsys.readouterr().err
    assert not marker.exists()
    assert code in (1, 2) and err.startswith("error:") and err.count("\n") == 1 and "weights_only=False" not in err
