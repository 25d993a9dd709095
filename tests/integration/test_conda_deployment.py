"""The demo under `snakemake --sdm conda`, with a stand-in for conda.

No conda channel is reachable where the tests run, so the stand-in's `conda env create` builds each
environment file as a venv with pip, from PyPI, at the file's pinned versions. What this checks:
Snakemake copies each rule's envs/*.yaml into .snakemake/conda/ and builds it there; each rule group's
file holds every package its jobs import; the jobs run rapidrelease from the workflow's own checkout
(the shell prefix in workflow/rules/common.smk), not from the venv snakemake runs in; the decisions
are the demo's. What it cannot check: that conda-forge and bioconda hold these names at these
versions and that conda's solver agrees (README.md, "Deploying with conda").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from support.workflow import release_of, run_snakemake, site_folder

pytestmark = pytest.mark.slow

STAND_IN = '''\
#!{python}
"""conda, as far as Snakemake asks it: --version, info, config, clean, env create (a venv with pip)."""
import subprocess, sys, yaml
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
args = sys.argv[1:]
if args == ["--version"]:
    print("conda 24.11.3")
elif args[:1] == ["info"]:
    print('{{"conda_prefix": "%s", "platform": "linux-64"}}' % ROOT)
elif args[:1] == ["config"]:
    print('{{"get": {{"channel_priority": "strict"}}}}')
elif args[:1] == ["clean"]:
    pass
elif args[:2] == ["env", "create"]:
    value = lambda flag: args[args.index(flag) + 1].strip('"')
    spec = yaml.safe_load(Path(value("--file")).read_text())
    requirements = []
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            requirements += dep["pip"]
        elif dep.split("=")[0] not in ("python", "pip"):
            requirements.append(dep.replace("=", "=="))
    prefix = value("--prefix")
    subprocess.run([{base!r}, "-m", "venv", prefix], check=True)
    # no bytecode compiled at install (most of pip's time here): a job compiles what it imports
    subprocess.run([prefix + "/bin/pip", "install", "-q", "--no-compile", *requirements], check=True)
else:
    sys.exit("conda stand-in: %s is not supported" % " ".join(args))
'''


@pytest.fixture(scope="module")
def conda_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    stand_in = tmp_path_factory.mktemp("conda")
    (stand_in / "bin").mkdir()
    conda = stand_in / "bin" / "conda"
    conda.write_text(STAND_IN.format(python=sys.executable, base=sys._base_executable), encoding="utf-8")
    conda.chmod(0o755)
    # Snakemake activates an environment with `source <conda>/bin/activate <env>`
    (stand_in / "bin" / "activate").write_text('. "$1/bin/activate"\n', encoding="utf-8")
    workdir = site_folder(project_root, tmp_path_factory.mktemp("conda-site"), parts=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{stand_in / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        done = run_snakemake(project_root, workdir, "--sdm", "conda", timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (workdir / "run.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    return workdir


def test_each_environment_file_is_built_where_snakemake_copies_it(project_root: Path, conda_run: Path):
    copies = sorted((conda_run / ".snakemake" / "conda").glob("*.yaml"))
    built = sorted(p.read_text(encoding="utf-8") for p in copies)
    assert built == sorted(p.read_text(encoding="utf-8") for p in (project_root / "envs").glob("*.yaml"))
    assert all((p.parent / p.stem / "bin" / "python").is_file() for p in copies)


def test_every_job_runs_in_its_rules_environment_and_the_decisions_are_the_demos(conda_run: Path):
    log = (conda_run / "run.log").read_text(encoding="utf-8")
    jobs = log.count("\nrule ") + log.count("\nlocalrule ") - log.count("\nlocalrule all:")
    assert jobs > 20 and log.count("Activating conda environment") == jobs
    first, second = release_of(conda_run, "DEMO-001"), release_of(conda_run, "DEMO-002")
    assert first["status"] == "RELEASE_CANDIDATE"
    assert [a["result"] for a in first["attributes"]] == ["PASS"] * 10
    assert second["status"] == "NOT_RELEASABLE"
    assert [a["name"] for a in second["attributes"] if a["result"] != "PASS"] == ["car_of_cd3"]
    # the release environment holds every package the audit names (snakemake aside: it runs outside)
    packages = first["audit"]["packages"]
    assert all(version for name, version in packages.items() if name != "snakemake"), packages
