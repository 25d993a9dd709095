"""The conda environment files (envs/*.yaml, for `snakemake --sdm conda`) against pyproject.toml and
envs/constraints.txt, so that the two ways of installing rapidrelease's dependencies cannot drift.

Conda itself cannot run where these tests run (no conda channel is reachable): this checks names and
versions, not that conda-forge and bioconda hold them (README.md, "Deploying with conda").
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from rapidrelease.release.audit import KEY_PACKAGES

ROOT = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
# Dependencies of the snakemake process itself, which runs outside the rules' environments: the
# workflow manager and what its --report needs.
SNAKEMAKE_PROCESS_ONLY = {"snakemake", "pygments"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "envs" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _env_pins(path: Path) -> dict[str, str]:
    """Every package the file pins, conda's `name=version` and pip's `name==version`, by PyPI name.

    The conda-forge and bioconda names of rapidrelease's dependencies are their PyPI names.
    """
    pins = {}
    for dep in yaml.safe_load(path.read_text(encoding="utf-8"))["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                name, _, version = line.partition("==")
                assert version, f"{path.name}: pip entry {line!r} is not pinned with =="
                pins[canonicalize_name(name)] = version
        elif dep != "pip":
            name, _, version = dep.partition("=")
            assert version and "=" not in version, f"{path.name}: {dep!r} is not pinned as name=version"
            pins[canonicalize_name(name)] = version
    return pins


def test_there_are_the_three_rule_group_environments():
    assert [p.name for p in ENV_FILES] == ["flow.yaml", "reads.yaml", "release.yaml"]


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_each_environment_pins_the_python_pyproject_requires(path: Path):
    python = _env_pins(path).pop("python")
    assert python == "3.11"  # the version CI tests with
    assert SpecifierSet(_pyproject()["project"]["requires-python"]).contains(f"{python}.0")


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_each_environment_pins_every_package_at_the_constraints_version(path: Path):
    constraints = _constraints()
    pins = _env_pins(path)
    pins.pop("python")
    assert pins, path.name
    for name, version in pins.items():
        assert name in constraints, f"{path.name}: {name} is not in envs/constraints.txt"
        assert version == constraints[name], (
            f"{path.name}: {name}={version}, constraints.txt {constraints[name]}"
        )


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_no_environment_installs_from_a_path(path: Path):
    # Snakemake builds the file where it copies it (.snakemake/conda/), where no path into the project
    # holds; the rules run rapidrelease from the workflow's own checkout instead (common.smk).
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    pip = [line for dep in spec["dependencies"] if isinstance(dep, dict) for line in dep["pip"]]
    assert not [line for line in pip if line.startswith(("-e", ".", "/", "file:")) or "rapidrelease" in line]
    assert "conda-forge" in spec["channels"] and "defaults" not in spec["channels"]


def test_the_environments_hold_every_runtime_dependency_at_a_version_pyproject_allows():
    pins: dict[str, str] = {}
    for path in ENV_FILES:
        pins.update(_env_pins(path))
    for requirement in map(Requirement, _pyproject()["project"]["dependencies"]):
        name = canonicalize_name(requirement.name)
        if name in SNAKEMAKE_PROCESS_ONLY:
            continue
        assert name in pins, f"{name} (pyproject.toml) is in no envs/*.yaml"
        assert requirement.specifier.contains(pins[name]), f"{name}={pins[name]} but pyproject: {requirement}"


def test_the_release_environment_holds_every_package_the_audit_block_names():
    # release.json's audit records the versions installed where evaluate_lot runs; at the pins every
    # environment shares they are those the evidence was produced with
    pins = _env_pins(ROOT / "envs" / "release.yaml")
    assert [name for name in KEY_PACKAGES if name not in SNAKEMAKE_PROCESS_ONLY and name not in pins] == []


def test_each_rules_conda_path_is_an_environment_file_relative_to_the_rule_file():
    used = set()
    for rules in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for path in re.findall(r"^\s*conda:\s*\n\s*\"([^\"]+)\"", rules.read_text(encoding="utf-8"), re.M):
            env = (rules.parent / path).resolve()
            assert env in ENV_FILES, f"{rules.name}: conda: {path!r} is not a file of envs/"
            used.add(env)
    assert sorted(used) == ENV_FILES
