"""Where a unit's reads are measured once per run, and in how many classification jobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rapidrelease.config.run import RunConfig, load_run_config


@pytest.fixture
def demo(project_root: Path, monkeypatch: pytest.MonkeyPatch) -> RunConfig:
    monkeypatch.chdir(project_root)
    return load_run_config(Path("config/config.yaml"))


def test_the_runs_controls_are_measured_once_and_each_lots_test_apart(demo: RunConfig) -> None:
    def folder(lot: str, unit: str) -> Path:
        return demo.measured_dir(demo.unit(lot, unit))

    # both lots list SEQ-RUN-01's NC1, NC2 and PC: one folder each, under results/_measured/reads
    for control in ("STER-NC1", "STER-NC2", "STER-PC"):
        assert folder("DEMO-001", control) == folder("DEMO-002", control)
        assert folder("DEMO-001", control).parent == Path("results/_measured/reads")
    assert folder("DEMO-001", "STER") != folder("DEMO-002", "STER")
    keys = {demo.measurement_key(u) for u in demo.units if u.assay == "sterility_reads"}
    assert len(keys) == 5  # 2 tests + 3 shared controls
    # the first unit listing the files stands for them (its lot and unit name the gather job)
    nc1 = demo.measurement_key(demo.unit("DEMO-002", "STER-NC1"))
    assert (demo.measured_unit(nc1).lot_id, demo.measured_unit(nc1).unit_id) == ("DEMO-001", "STER-NC1")


def test_the_key_follows_the_file_not_its_spelling_and_changes_with_the_settings(demo: RunConfig) -> None:
    unit = demo.unit("DEMO-001", "STER-NC1")
    spelled = dataclasses.replace(
        unit, lot_id="X", path=Path("./resources/demo/../demo") / unit.path.relative_to("resources/demo")
    )
    assert demo.measurement_key(spelled) == demo.measurement_key(unit)
    stricter = dataclasses.replace(demo, classify=dataclasses.replace(demo.classify, confidence=0.1))
    assert stricter.measurement_key(unit) != demo.measurement_key(unit)
    # the same files as a positive control are another measurement record (its role is recorded)
    assert demo.measurement_key(dataclasses.replace(unit, role="positive_control")) != demo.measurement_key(
        unit
    )


def test_a_unit_is_classified_in_one_job_per_part_mb_of_its_files(tmp_path: Path, demo: RunConfig) -> None:
    r1, r2 = tmp_path / "r1.fastq.gz", tmp_path / "r2.fastq.gz"
    r1.write_bytes(b"x" * 1_500_000)
    r2.write_bytes(b"x" * 1_500_000)
    settings = dataclasses.replace(demo.classify, part_mb=1.0, parts=4)
    assert settings.parts_for([r1, r2]) == 3  # 3 MB at 1 MB a job
    assert settings.parts_for([r1, None]) == 2
    assert dataclasses.replace(settings, parts=2).parts_for([r1, r2]) == 2  # at most `parts`
    assert settings.parts_for([tmp_path / "not-yet-delivered.fastq.gz"]) == 1
    # the demo's 420-kB read files: one job each at the default 1,024 MB
    assert demo.classify.part_mb == 1024
    assert all(
        demo.classify.parts_for([u.path, u.path2]) == 1 for u in demo.units if u.assay == "sterility_reads"
    )
