"""The integration tests' shared real run: the demo lots through snakemake, once per session.

A test that only reads what the demo run wrote uses ``demo_run``; a test that changes inputs makes its
own folder with :func:`support.workflow.site_folder` (and may reuse the demo run's index).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from filelock import FileLock

from support.workflow import run_snakemake, site_folder


@pytest.fixture(scope="session")
def demo_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site's folder in which `snakemake --cores 2` decided the demo lots (not to be changed).

    Under pytest-xdist the workers share one run: the first worker to ask makes it in the session's
    common folder while the others wait on its lock, and a failed run fails each of them the same way.
    """
    common = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        common = common.parent  # each worker's folder lies in the session's
    workdir, failure = common / "demo_site", common / "demo_site.failed"
    with FileLock(common / "demo_site.lock"):
        if not workdir.exists():
            workdir.mkdir()
            done = run_snakemake(project_root, site_folder(project_root, workdir))
            if done.returncode != 0:
                failure.write_text(done.stderr[-3000:], encoding="utf-8")
    assert not failure.exists(), failure.read_text(encoding="utf-8")
    return workdir


@pytest.fixture(scope="session")
def demo_index(demo_run: Path) -> Path:
    """The k-mer index the demo run built from the default panel, for runs that need the same one."""
    return demo_run / "resources" / "refdb"
