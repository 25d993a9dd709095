"""Real Snakemake runs in a site's folder: the folder, the command as README runs it, its results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rapidrelease.records import read_release, read_unit_record, to_json

BIN = Path(sys.executable).parent
"""The bin folder of the environment the tests run in, which holds snakemake and rapidrelease."""

WALL_CLOCK = ("started_at", "finished_at", "timeline")
"""The parts of release.json's audit block that are clock readings of a run: everything else must be
byte-identical across reruns of the same inputs."""


def site_folder(project_root: Path, tmp: Path, index: Path | None = None, parts: int | None = None) -> Path:
    """A site's folder: config/ and the demo data copied, the workflow used from the project.

    The default panel is linked (only read); with ``index``, config.yaml points at that prebuilt
    index instead, so the test does not build the same one again. ``parts`` replaces the demo's
    classify parts per sequencing unit (4): a test that is not about splitting the classification
    saves three job starts per unit with 1.
    """
    shutil.copytree(project_root / "config", tmp / "config")
    shutil.copytree(project_root / "resources" / "demo", tmp / "resources" / "demo")
    (tmp / "resources" / "reference").symlink_to(project_root / "resources" / "reference")
    config = tmp / "config" / "config.yaml"
    if index is not None:
        text = config.read_text(encoding="utf-8")
        start, end = text.index("reference:\n"), text.index("# Read classification")
        config.write_text(text[:start] + f"reference:\n  index: {index}\n" + text[end:], encoding="utf-8")
    if parts is not None:
        text = config.read_text(encoding="utf-8")
        assert "  parts: 4\n" in text
        config.write_text(text.replace("  parts: 4\n", f"  parts: {parts}\n"), encoding="utf-8")
    return tmp


def copy_of_site(site: Path, to: Path, *without: str) -> Path:
    """A copy of a site's folder at ``to``, with its results and Snakemake's records of them, so a run
    there does only what is missing or out of date (the linked reference stays a link). ``without``
    are paths in the site (files or folders) left out of the copy, so a run there makes them again."""
    shutil.copytree(site, to, symlinks=True)
    for relative in without:
        path = to / relative
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return to


def run_snakemake(
    project_root: Path, workdir: Path, *args: str, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """``snakemake --cores 2 ARGS`` in ``workdir`` with the project's workflow, as README runs it:
    the environment's snakemake with the environment not activated (not on PATH)."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    env = dict(os.environ, PATH=path)
    command = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(project_root / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def release_of(workdir: Path, lot: str) -> dict[str, Any]:
    """The lot's release.json as the report reads it (seal, schema and consistency checked), as JSON."""
    release = to_json(read_release(workdir / "results" / lot / "release.json"))
    assert isinstance(release, dict)
    return release


def record_of(workdir: Path, lot: str, unit: str) -> dict[str, Any]:
    """A unit's record (``metrics.json`` of its flow or reads folder), checked, as JSON, with its
    evidence beside its metrics as a reviewer reads it."""
    (path,) = (workdir / "results" / lot).glob(f"*/{unit}/metrics.json")
    record = read_unit_record(path, lot_id=lot, unit_id=unit)
    data = to_json(record)
    assert isinstance(data, dict)
    return {**data, **record.evidence}


def without_wall_clock(release: dict[str, Any], *also: str) -> str:
    """release.json as text without the audit's clock readings (and the audit keys in ``also``)."""
    audit = {k: v for k, v in release["audit"].items() if k not in WALL_CLOCK + also}
    return json.dumps({**release, "audit": audit}, ensure_ascii=False)


def append_rows(path: Path, rows: list[str]) -> None:
    """Add rows to a sheet, as a lab adds lots and units."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(row + "\n" for row in rows)


def own_copy(workdir: Path, path: str, lot: str) -> str:
    """A copy of the site's data file ``path`` for ``lot`` alone, under ``lots/<lot>/`` (a lot's test
    files may serve only that lot); its path as a unit sheet writes it."""
    copy = Path("lots") / lot / Path(path).name
    (workdir / copy).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(workdir / path, workdir / copy)
    return str(copy)


def lot_like(workdir: Path, lot: str, like: str = "DEMO-001", **replaced: str) -> list[str]:
    """The unit rows of lot ``like`` for another ``lot``: the sequencing run's shared controls as they
    are, every other data file a copy of its own, and the units named in ``replaced`` (unit id → the
    row after the lot id) instead."""
    rows = []
    header, *lines = (workdir / "config" / "units.tsv").read_text(encoding="utf-8").splitlines()
    columns = header.split("\t")
    for line in lines:
        cells = dict(zip(columns, line.split("\t"), strict=False))
        if cells["lot_id"] != like:
            continue
        if cells["unit_id"] in replaced:
            rows.append(f"{lot}\t{replaced[cells['unit_id']]}")
            continue
        if cells["role"] not in ("negative_control", "positive_control"):
            for column in ("path", "path2"):
                if cells.get(column):
                    cells[column] = own_copy(workdir, cells[column], lot)
        cells["lot_id"] = lot
        rows.append("\t".join(cells.get(column, "") for column in columns))
    return rows
