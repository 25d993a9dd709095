"""The integration tests' shared real run: the demo lots through snakemake, once per session.

A test that only reads what the demo run wrote uses ``demo_run``; a test that changes inputs makes its
own folder with :func:`support.workflow.site_folder` (and may reuse the demo run's index).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.workflow import run_snakemake, site_folder


@pytest.fixture(scope="session")
def demo_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site's folder in which `snakemake --cores 2` decided the demo lots (not to be changed)."""
    workdir = site_folder(project_root, tmp_path_factory.mktemp("demo_site"))
    done = run_snakemake(project_root, workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


@pytest.fixture(scope="session")
def demo_index(demo_run: Path) -> Path:
    """The k-mer index the demo run built from the default panel, for runs that need the same one."""
    return demo_run / "resources" / "refdb"
