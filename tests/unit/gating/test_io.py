"""Gating I/O (:mod:`rapidrelease.gating.io`) through `rapidrelease gate`, run as a command the way an
analyst debugs a template: populations.tsv, per-event Parquet, and a bad file reported in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.config.specs import round_half_up

DEMO = Path("resources/demo")


def _gate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rapidrelease", "gate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_gate_writes_the_population_table_and_per_event_membership(project_root: Path, tmp_path: Path):
    fcs = DEMO / "DEMO-001" / "DEMO-001_phenotype.fcs"
    done = _gate(
        "--template",
        str(DEMO / "car_t_phenotype.gatingml.xml"),
        "--out",
        str(tmp_path / "out"),
        "--events-out",
        str(tmp_path / "events"),
        "--chunk-size",
        "7000",
        str(fcs),
        cwd=project_root,
    )
    assert done.returncode == 0, done.stderr
    table = pl.read_csv(tmp_path / "out" / "populations.tsv", separator="\t")
    assert table.columns == [
        "sample",
        "population",
        "gate",
        "parent",
        "count",
        "parent_count",
        "percent_parent",
        "percent_total",
    ]
    car = table.filter(pl.col("population") == "Cells/Singlets/Live/CD3pos/CARpos").row(0, named=True)
    assert car["sample"] == "DEMO-001_phenotype.fcs" and car["gate"] == "CARpos"
    assert car["parent"] == "Cells/Singlets/Live/CD3pos"
    # every percentage to two decimals, half-up, beside its exact counts
    assert car["percent_parent"] == float(round_half_up(100 * car["count"] / car["parent_count"], 2))
    assert car["percent_total"] == float(round_half_up(100 * car["count"] / 30000, 2))
    text = (tmp_path / "out" / "populations.tsv").read_text()
    percents = [field for line in text.splitlines()[1:] for field in line.split("\t")[-2:]]
    assert all(re.fullmatch(r"\d+(\.\d{1,2})?", field) for field in percents), percents[:4]
    quadrant = table.filter(pl.col("gate") == "CD4posCD8neg").row(0, named=True)
    assert quadrant["parent"] == "Cells/Singlets/Live/CD3pos/CARpos"

    events = pl.read_parquet(tmp_path / "events" / "DEMO-001_phenotype.fcs.parquet")
    assert events.height == 30000
    assert events.columns == table["population"].to_list()
    for row in table.iter_rows(named=True):
        assert int(events[row["population"]].sum()) == row["count"]
    child = events["Cells/Singlets/Live/CD3pos/CARpos"].to_numpy()
    parent = events["Cells/Singlets/Live/CD3pos"].to_numpy()
    assert not np.any(child & ~parent)


def test_gate_matches_each_fcs_to_its_own_sample_in_a_flowjo_workspace(shared_data: Path, tmp_path: Path):
    folder = shared_data / "fcs" / "coereba_aurora_seb"
    files = sorted(folder.glob("*NY068*.fcs"))[:3]
    done = _gate(
        "--template", str(folder / "CytoML.wsp"), "--out", str(tmp_path), *map(str, files), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    table = pl.read_csv(tmp_path / "populations.tsv", separator="\t")
    assert sorted(table["sample"].unique().to_list()) == sorted(f.name for f in files)
    assert table.filter(pl.col("gate") == "Vd2")["count"].to_list() == [311, 335, 310]  # FlowJo's counts


def test_an_unreadable_file_is_reported_in_one_line_and_the_others_are_still_gated(
    project_root: Path, tmp_path: Path
):
    broken = tmp_path / "broken.fcs"
    broken.write_bytes(b"FCS3.1    garbage")
    fcs = project_root / DEMO / "DEMO-002" / "DEMO-002_phenotype.fcs"
    done = _gate(
        "--template",
        str(project_root / DEMO / "car_t_phenotype.gatingml.xml"),
        "--out",
        str(tmp_path / "o"),
        str(broken),
        str(fcs),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rapidrelease: broken.fcs:")
    table = pl.read_csv(tmp_path / "o" / "populations.tsv", separator="\t")
    assert table["sample"].unique().to_list() == ["DEMO-002_phenotype.fcs"]
