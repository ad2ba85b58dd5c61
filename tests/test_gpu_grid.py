"""reports/paper_reproduction/gpu_grid.py: its chains are valid lnl-train commands that name the committed
runs, so a GPU session continues the grid (finished runs skipped, unfinished ones resumed)."""
from __future__ import annotations

import json

import pytest

from conftest import PAPER_REPRODUCTION as FOLDER
from conftest import report_script
from lnl.config import parse_args


@pytest.fixture(scope="module")
def gpu_grid():
    return report_script("gpu_grid")


def _committed_run_ids(*folders: str) -> set[str]:
    return {json.loads(p.read_text())["run_id"] for f in folders for p in (FOLDER / f / "records").glob("*/record.json")}


def test_every_chain_parses_and_the_lnl40_chains_name_the_committed_runs(gpu_grid, tmp_path):
    shared = ["--runs-dir", str(tmp_path), "--resume", "--device", "cpu"]
    committed = _committed_run_ids("lnl40", "baseline100", "official")
    kinds = ("official-fp32", "official-bf16", "lnl40", "gray", "calibration")
    names, found = [], 0
    for kind in kinds:
        for name, commands in gpu_grid.chains(kind):
            names.append(name)
            for argv in commands:
                cfg = parse_args([*argv, *shared])
                if cfg.init_from:
                    init = cfg.init_config().default_run_id()
                    assert init.startswith(f"baseline-cv{cfg.color_var:.3f}-s{cfg.seed}-")
                found += cfg.default_run_id() in committed
    assert len(names) == len(set(names)) == 3 + 3 + 15 + 20 + 18
    # the H200 session's LNL runs (13), its fp32 runs (3) and the CPU's BlindEye runs are among them
    assert found >= 16, found
    lnl = {c.default_run_id() for _, cmds in gpu_grid.chains("lnl40") for c in [parse_args([*cmds[0], *shared])]}
    assert "lnl-cv0.030-s0-4d74236931" in lnl  # committed in lnl40/records (H200, 2026-11-29)
    # the calibration chains: one baseline and one Gray per cell and level, on their own data, and the
    # resample baseline at 0.050 is the one committed in color_bounds/records
    calibration = [parse_args([*argv, *shared]) for _, cmds in gpu_grid.chains("calibration") for argv in cmds]
    assert {(c.method, c.color_bounds, c.color_noise) for c in calibration} == {
        (m, b, n) for m in ("baseline", "gray") for b, n in gpu_grid.CALIBRATION_CELLS}
    assert all(c.epochs == 100 and c.seed == 0 for c in calibration)
    assert "baseline-cv0.050-s0-08c3176529" in {c.default_run_id() for c in calibration}
    with pytest.raises(SystemExit):
        gpu_grid.chains("nope")


def test_sweep_chains_are_the_grid_and_name_the_committed_search_runs(gpu_grid, tmp_path):
    """``sweep:<yaml>`` runs every grid point once: the two LNL grids of lnl_search_gpu/ (the H200 runs of the
    fourteenth session) are exactly the committed records, the second grid's overlap with the first included."""
    shared = ["--runs-dir", str(tmp_path), "--resume", "--device", "cpu"]
    ids, names = set(), []
    for space in ("space.yaml", "space_mu.yaml"):
        chains = gpu_grid.chains(f"sweep:{FOLDER / 'lnl_search_gpu' / space}")
        assert len(chains) == 24  # 2 x 2 x 2 settings x 3 seeds, one run per chain
        for name, (argv,) in chains:
            names.append(name)
            cfg = parse_args([*argv, *shared])
            assert (cfg.method, cfg.color_var, cfg.epochs, cfg.lr_step_epochs) == ("lnl", 0.035, 20, 15)
            assert cfg.init_config().default_run_id().startswith(f"baseline-cv0.035-s{cfg.seed}-")
            ids.add(cfg.default_run_id())
        seeds = [parse_args([*argv, *shared]).seed for _, (argv,) in chains]
        assert seeds == sorted(seeds)  # seed-major: a partial grid covers every setting once
    assert len(set(names)) == 48 and names[0] == "lnl_search_gpu-000" and names[-1] == "lnl_search_gpu_mu-023"
    assert len(ids) == 42  # lambda 0.1 x mu 1 (both schedules, 3 seeds) is in both grids
    assert ids == _committed_run_ids("lnl_search_gpu")


def test_blind_eye_alpha_chains_and_the_only_filter(gpu_grid, tmp_path, monkeypatch, capsys):
    shared = ["--runs-dir", str(tmp_path), "--resume", "--device", "cpu"]
    chains = gpu_grid.chains("blind-eye-a0.3")
    assert len(chains) == 20  # 7 levels x 3 seeds, less 0.020 seed 0 (blind_eye_alpha100/ has it)
    cfgs = [parse_args([*argv, *shared]) for _, (argv,) in chains]
    assert {(c.method, c.alpha, c.epochs, c.lr_step_epochs) for c in cfgs} == {("blind_eye", 0.3, 20, 15)}
    committed = _committed_run_ids("blind_eye_alpha100")
    assert sum(c.default_run_id() in committed for c in cfgs) >= 6  # the H200 runs of the fourteenth session
    monkeypatch.setattr("sys.argv", ["gpu_grid.py", "--runs-dir", str(tmp_path), "--log-dir", str(tmp_path / "logs"),
                                     "--deadline-s", "1", "--dry-run", "--order", "lnl40", "blind-eye-a0.3",
                                     "--only", "lnl40-cv0.045-s[12]", "blind-eye-a0.3-cv0.05-*"])
    assert gpu_grid.main() == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert listed == ["lnl40-cv0.045-s1", "lnl40-cv0.045-s2", "blind-eye-a0.3-cv0.05-s0", "blind-eye-a0.3-cv0.05-s1",
                      "blind-eye-a0.3-cv0.05-s2"]


def test_palette_fig9_chains_name_the_committed_cpu_runs(gpu_grid, tmp_path):
    """Each chain trains its own Baseline on the figure-9 palette, starts LNL from it and trains Gray on the same
    data; the CPU runs of the fifteenth session (0.035, seed 0) are the ones the chain would skip."""
    shared = ["--runs-dir", str(tmp_path), "--resume", "--device", "cpu"]
    chains = gpu_grid.chains("palette-fig9")
    assert len(chains) == 21 and len({name for name, _ in chains}) == 21
    ids = set()
    for name, commands in chains:
        baseline, lnl, gray = (parse_args([*argv, *shared]) for argv in commands)
        assert (baseline.method, lnl.method, gray.method) == ("baseline", "lnl", "gray")
        assert {c.palette for c in (baseline, lnl, gray)} == {"reports/paper_reproduction/palette_fig9/palette.csv"}
        assert (lnl.epochs, lnl.lr_step_epochs, baseline.epochs, gray.epochs) == (40, 30, 100, 100)
        assert lnl.init_config().default_run_id() == baseline.default_run_id()
        level, seed = name.removeprefix("palette-fig9-cv").split("-s")
        assert (float(level), int(seed)) == (baseline.color_var, baseline.seed)
        ids |= {baseline.default_run_id(), lnl.default_run_id()}
    assert {"baseline-cv0.035-s0-0c3ee6c5d3", "lnl-cv0.035-s0-18fd517840"} <= ids
    assert {"baseline-cv0.035-s0-0c3ee6c5d3", "lnl-cv0.035-s0-18fd517840"} <= _committed_run_ids("palette_fig9")
