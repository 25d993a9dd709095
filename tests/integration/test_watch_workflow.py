"""`rapidrelease watch --once` on an inbox filled in stages, with real Snakemake runs.

The inbox holds what a lab's instruments and LIMS write: an Illumina run folder per sequencing run
(the demo's reads, the run's controls) and one delivery folder per lot (the LIMS manifest and the
lot's FCS file). The site starts with no lot. Each lot must be processed exactly once, after its
delivery became complete, and a lot delivered later alone. Beside the second lot, the hostile
deliveries of issue 14 (a panel of its own, a link out of the inbox, a link loop, a NUL byte, an
over-long name, the lot id index.html, 100,000 rows) are refused in one line each in the same scan,
while DEMO-001 (RELEASE_CANDIDATE) and DEMO-002 show that the release path and a failing decision
are both reached; renaming a processed delivery runs nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
STABLE_SECONDS = 1.0
LOT_HEADER = "lot_id\tproduct\tspec\tcollected_at\tsite\ttnc_viable\tweight_kg\n"
UNIT_HEADER = (
    "lot_id\tunit_id\tassay\trole\tpath\tpath2\ttemplate\tlibrary\tspike_organism\tspike_concentration\t"
    "spike_unit\tvolume_ul\n"
)


def _site(project_root: Path, root: Path) -> Path:
    site = root / "site"
    shutil.copytree(project_root / "config", site / "config")
    (site / "resources").mkdir()
    (site / "resources" / "reference").symlink_to(project_root / "resources" / "reference")
    # the panels' gating templates; the demo's data come through the inbox
    (site / "resources" / "demo").mkdir()
    for template in ("car_t_phenotype", "car_t_potency", "microbial_flow"):
        shutil.copy(project_root / f"resources/demo/{template}.gatingml.xml", site / "resources/demo")
    (site / "config" / "lots.tsv").write_text(LOT_HEADER)
    (site / "config" / "units.tsv").write_text(UNIT_HEADER)
    return site


def _run_folder(demo: Path, inbox: Path, name: str, files: list[Path]) -> Path:
    """An Illumina run folder still being copied: RunInfo.xml and FASTQs, no CopyComplete.txt."""
    run = inbox / name
    (run / "Fastq").mkdir(parents=True)
    (run / "RunInfo.xml").write_text(f'<?xml version="1.0"?>\n<RunInfo><Run Id="{name}"/></RunInfo>\n')
    for path in files:
        shutil.copy(demo / path, run / "Fastq" / Path(path).name)
    return run


def _delivery(demo: Path, inbox: Path, lot: str, run: str) -> Path:
    # the lot's viable nucleated cells and patient weight, as the LIMS enters them
    tnc = {"DEMO-001": "1.2e9\t78", "DEMO-002": "2.5e9\t64"}[lot]
    folder = inbox / lot
    folder.mkdir()
    for tube in ("phenotype", "potency_stimulated", "potency_unstimulated", "microbial"):
        shutil.copy(demo / lot / f"{lot}_{tube}.fcs", folder)
    fastq, controls = f"../{run}/Fastq", "../SEQ-RUN-01/Fastq/SEQ-RUN-01"
    potency, microbial = "config/panels/car_t_potency.yaml", "config/panels/microbial_flow.yaml"
    units = [
        f"{lot}\tPHENO\tphenotype\ttest\t{lot}_phenotype.fcs\t\tconfig/panels/car_t_phenotype.yaml\t\t\t\t",
        f"{lot}\tPOT-STIM\tpotency\tstimulated\t{lot}_potency_stimulated.fcs\t\t{potency}\t\t\t\t",
        f"{lot}\tPOT-UNSTIM\tpotency\tunstimulated\t{lot}_potency_unstimulated.fcs\t\t{potency}\t\t\t\t",
        f"{lot}\tMICRO\tmicrobial_flow\ttest\t{lot}_microbial.fcs\t\t{microbial}\t\t\t\t",
        f"{lot}\tMICRO-NC\tmicrobial_flow\tnegative_control\t../FLOW-RUN-01/FLOW-RUN-01_medium.fcs\t\t"
        f"{microbial}\t\t\t\t",
        f"{lot}\tSTER\tsterility_reads\ttest\t{fastq}/{lot}_sterility_R1.fastq.gz\t"
        f"{fastq}/{lot}_sterility_R2.fastq.gz\t\tshotgun\t\t\t",
        f"{lot}\tSTER-NC1\tsterility_reads\tnegative_control\t{controls}_NC1_R1.fastq.gz\t"
        f"{controls}_NC1_R2.fastq.gz\t\tshotgun\t\t\t",
        f"{lot}\tSTER-NC2\tsterility_reads\tnegative_control\t{controls}_NC2_R1.fastq.gz\t"
        f"{controls}_NC2_R2.fastq.gz\t\tshotgun\t\t\t",
        f"{lot}\tSTER-PC\tsterility_reads\tpositive_control\t{controls}_PC_R1.fastq.gz\t"
        f"{controls}_PC_R2.fastq.gz\t\tshotgun\tStaphylococcus aureus\t100\tCFU/mL",
    ]
    # the sterility test's 10 mL extracted volume, which the demo's 10 CFU/mL LOD claim needs
    units = [row + ("\t10000" if "\tSTER\t" in row else "\t") for row in units]
    (folder / "units.tsv").write_text(UNIT_HEADER + "\n".join(units) + "\n")
    # the LIMS writes the lot's row last: the delivery's manifest
    (folder / "lot.tsv").write_text(
        LOT_HEADER
        + f"{lot}\tCAR-T (demo, synthetic)\tCART-DEMO-release\t2026-11-25T08:30:00+01:00\tSITE-A\t{tnc}\n"
    )
    return folder


def _own_panel_delivery(demo: Path, project_root: Path, inbox: Path, like: Path) -> Path:
    """DEMO-002 (CAR+ 9 % of CD3+, below the specification's 15 %) delivered again as lot EVIL-PANEL
    with a phenotype panel of its own that counts CAR+ as its own denominator, and a cell count that
    keeps the dose in range: as the issue found, decided RELEASE_CANDIDATE when it was registered."""
    folder = inbox / "EVIL-PANEL"
    shutil.copytree(like, folder)
    for read in ("R1", "R2"):
        shutil.copy(demo / "DEMO-002" / f"DEMO-002_sterility_{read}.fastq.gz", folder)
    site_panel = (project_root / "config" / "panels" / "car_t_phenotype.yaml").read_text()
    (folder / "panel.yaml").write_text(
        site_panel.replace(
            "numerator: Cells/Singlets/Live/CD3pos/CARpos\n    denominator: Cells/Singlets/Live/CD3pos\n",
            "numerator: Cells/Singlets/Live/CD3pos\n    denominator: Cells/Singlets/Live/CD3pos\n",
        )
    )
    units = (folder / "units.tsv").read_text().replace("DEMO-002\t", "EVIL-PANEL\t")
    units = units.replace("config/panels/car_t_phenotype.yaml", str(folder / "panel.yaml"))
    units = units.replace("../SEQ-RUN-02/Fastq/", "")
    (folder / "units.tsv").write_text(units)
    lot = (folder / "lot.tsv").read_text().replace("DEMO-002\t", "EVIL-PANEL\t").replace("2.5e9", "3e8")
    (folder / "lot.tsv").write_text(lot)
    return folder


def _hostile_deliveries(inbox: Path, outside: Path) -> dict[str, str]:
    """Deliveries that crashed, fooled or stalled the watcher (issue 14), each with what refuses it."""
    header = "lot_id\tunit_id\tassay\trole\tpath\ttemplate\n"
    panel = "config/panels/car_t_phenotype.yaml"

    def delivery(lot: str, path: str, folder: str | None = None) -> Path:
        where = inbox / (folder or lot)
        where.mkdir()
        (where / "lot.tsv").write_text(
            LOT_HEADER + f"{lot}\tCAR-T\tCART-DEMO-release\t{_COLLECTED}\tSITE-A\t\t\n"
        )
        (where / "units.tsv").write_text(header + f"{lot}\tPHENO\tphenotype\ttest\t{path}\t{panel}\n")
        return where

    outside.mkdir()
    (outside / "lot.tsv").write_text("root:x:0:0:SECRET:/root:/bin/bash\n")
    (outside / "units.tsv").write_text("root:x:0:0:SECRET:/root:/bin/bash\n")
    (inbox / "LINKED").symlink_to(outside)
    (delivery("LOOP", "loop.fcs") / "loop.fcs").symlink_to("loop.fcs")
    (delivery("NUL", "tube.fcs") / "units.tsv").write_bytes(b"lot_id\tunit_id\nNUL\tPH\0ENO\n")
    delivery("LONG", "a" * 256 + ".fcs")
    delivery("index.html", "tube.fcs", folder="RESULTS-NAME")
    big = delivery("BIG", "tube.fcs")
    with open(big / "units.tsv", "a") as fh:
        fh.writelines(f"BIG\tU{i}\tphenotype\ttest\ttube.fcs\t{panel}\n" for i in range(100_000))
    return {
        "EVIL-PANEL": "is not one of the site's panels (car_t_phenotype.yaml, car_t_potency.yaml, "
        "microbial_flow.yaml); a delivery names a panel of config/panels/ and cannot bring its own.",
        "LINKED": "LINKED is a symbolic link; a delivery must be a folder in the inbox itself",
        "LOOP": "column 'path': 'loop.fcs' is a loop of symbolic links.",
        "NUL": "units.tsv holds a NUL byte; a manifest is text.",
        "LONG": "is longer than the file system allows",
        "RESULTS-NAME": "column 'lot_id': 'index.html' is the name of a file in the results folder",
        "BIG": "units.tsv has 100,001 rows; a delivery's manifest holds at most 1,000",
    }


_COLLECTED = "2026-11-25T08:30:00+01:00"


def _watch_once(site: Path, inbox: Path) -> subprocess.CompletedProcess:
    # what a timer runs: the command, in the site's folder, after the files have settled
    time.sleep(STABLE_SECONDS + 0.2)
    command = [
        str(BIN / "rapidrelease"), "watch", "--inbox", str(inbox), "--once",
        "--stable-seconds", str(STABLE_SECONDS), "--cores", "2",
    ]  # fmt: skip
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    done = subprocess.run(
        command, cwd=site, env=dict(os.environ, PATH=path), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _runs(site: Path) -> list[Path]:
    # the watcher's own folder is beside the configuration, outside the inbox
    return sorted((site / "config" / ".rapidrelease-watch" / "runs").glob("*.log"))


def test_each_lot_is_processed_once_after_its_delivery_is_complete(project_root: Path, tmp_path: Path):
    demo = project_root / "resources" / "demo"
    site, inbox = _site(project_root, tmp_path), tmp_path / "inbox"
    inbox.mkdir()
    # the flow run's sterile medium, shared by its lots as the sequencing run's controls are
    shutil.copytree(demo / "FLOW-RUN-01", inbox / "FLOW-RUN-01")
    reads = [f"SEQ-RUN-01/SEQ-RUN-01_{c}_{r}.fastq.gz" for c in ("NC1", "NC2", "PC") for r in ("R1", "R2")]
    reads += [f"DEMO-001/DEMO-001_sterility_{r}.fastq.gz" for r in ("R1", "R2")]
    controls = _run_folder(demo, inbox, "SEQ-RUN-01", [Path(p) for p in reads])
    _delivery(demo, inbox, "DEMO-001", run="SEQ-RUN-01")
    release = site / "results" / "DEMO-001" / "release.json"
    # links planted where the watcher once kept its state, in the inbox (issue 14): never written
    planted, victim = inbox / ".rapidrelease-watch", tmp_path / "victim.txt"
    planted.mkdir()
    victim.write_text("not the watcher's\n")
    for name in ("lock", "watch.log", "state.json"):
        (planted / name).symlink_to(victim)

    # 1. the lot's manifest is there, its sequencing run is still being copied: nothing runs
    first = _watch_once(site, inbox)
    assert "waiting: Illumina run" in first.stderr and "has no CopyComplete.txt" in first.stderr
    assert not release.exists() and _runs(site) == []
    assert (site / "config" / "lots.tsv").read_text() == LOT_HEADER

    # 2. the sequencer marks the run copied: the lot is registered and run, once
    (controls / "CopyComplete.txt").write_text("")
    second = _watch_once(site, inbox)
    assert (
        "lot DEMO-001 registered (9 units, written to config/lots.tsv and config/units.tsv)" in second.stderr
    )
    assert "snakemake finished DEMO-001." in second.stderr
    decision = json.loads(release.read_text())
    assert decision["status"] == "RELEASE_CANDIDATE"
    assert [a["result"] for a in decision["attributes"]] == ["PASS"] * 10
    assert (site / "results" / "DEMO-001" / "report.html").is_file()
    assert len(_runs(site)) == 1
    decided_at = release.stat().st_mtime_ns

    # 3. nothing new: nothing is run, written or logged
    third = _watch_once(site, inbox)
    assert third.stderr == ""
    assert len(_runs(site)) == 1 and release.stat().st_mtime_ns == decided_at

    # 4. a second lot, sequenced in a later run with the same controls, is run alone; hostile
    # deliveries beside it are refused, each in one line, and stop nothing
    later = _run_folder(
        demo,
        inbox,
        "SEQ-RUN-02",
        [Path("DEMO-002") / f"DEMO-002_sterility_{r}.fastq.gz" for r in ("R1", "R2")],
    )
    (later / "CopyComplete.txt").write_text("")
    second_lot = _delivery(demo, inbox, "DEMO-002", run="SEQ-RUN-02")
    hostile = _hostile_deliveries(inbox, tmp_path / "outside")
    _own_panel_delivery(demo, project_root, inbox, like=second_lot)
    fourth = _watch_once(site, inbox)
    assert "lot DEMO-002 registered" in fourth.stderr and "DEMO-001" not in fourth.stderr
    refusals = [line for line in fourth.stderr.splitlines() if ": refused: " in line]
    assert len(refusals) == len(hostile), fourth.stderr
    for folder, problem in hostile.items():
        [line] = [line for line in refusals if f"/inbox/{folder}: refused: " in line]
        assert problem in line, line
    assert "SECRET" not in fourth.stderr
    runs = _runs(site)
    assert len(runs) == 2
    second_run = runs[1].read_text()
    assert "results/DEMO-002/release.json" in second_run and "results/DEMO-001" not in second_run
    assert release.stat().st_mtime_ns == decided_at
    assert (
        json.loads((site / "results" / "DEMO-002" / "release.json").read_text())["status"] == "NOT_RELEASABLE"
    )
    assert not (site / "results" / "EVIL-PANEL").exists() and not (site / "results" / "index.html").exists()
    assert "EVIL-PANEL" not in (site / "config" / "units.tsv").read_text()
    state = json.loads((site / "config" / ".rapidrelease-watch" / "state.json").read_text())
    assert {k: v["status"] for k, v in state["deliveries"].items()} == {
        "DEMO-001": "processed",
        "DEMO-002": "processed",
        **dict.fromkeys(hostile, "refused"),
    }
    assert _watch_once(site, inbox).stderr == ""

    # 5. a processed delivery renamed is the same content: not registered or run again
    (inbox / "DEMO-001").rename(inbox / "DEMO-001-renamed")
    fifth = _watch_once(site, inbox)
    assert fifth.stderr.count("\n") == 1 and "DEMO-001-renamed: not run again:" in fifth.stderr
    assert len(_runs(site)) == 2 and release.stat().st_mtime_ns == decided_at
    assert victim.read_text() == "not the watcher's\n"
