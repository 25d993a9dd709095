"""The inbox watcher: when a delivery is complete, how it enters the site's sheets, what is refused.

These tests never reach a Snakemake run (no delivery in them becomes runnable, or the registering
step is called alone); tests/integration/test_watch_workflow.py runs the watcher end to end.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rapidrelease.errors import ConfigError
from rapidrelease.watch import (
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_ROWS,
    READY,
    REFUSED,
    STATE_DIR_NAME,
    WAITING,
    WatchLockedError,
    WatchStateError,
    examine_delivery,
    register_delivery,
    scan_inbox,
    watch,
)

PROJECT = Path(__file__).resolve().parents[2]
# the watcher's own folder by default: beside the site's configuration, outside the inbox
STATE = Path("config") / STATE_DIR_NAME
DEMO = PROJECT / "resources" / "demo"
LOT_HEADER = "lot_id\tproduct\tspec\tcollected_at\tsite\n"
UNIT_HEADER = "lot_id\tunit_id\tassay\trole\tpath\tpath2\ttemplate\n"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site folder with the project's config and sheets that list no lot yet; the cwd of the test."""
    root = tmp_path / "site"
    shutil.copytree(PROJECT / "config", root / "config")
    (root / "resources").mkdir()
    (root / "resources" / "demo").symlink_to(DEMO)
    (root / "resources" / "reference").symlink_to(PROJECT / "resources" / "reference")
    (root / "config" / "lots.tsv").write_text(LOT_HEADER)
    (root / "config" / "units.tsv").write_text(UNIT_HEADER)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def _deliver(inbox: Path, lot: str = "DEMO-001", units: str | None = None, fcs: bool = True) -> Path:
    """A LIMS delivery of a flow-only lot: manifest and (unless ``fcs`` is False) its FCS file."""
    folder = inbox / lot
    folder.mkdir()
    (folder / "lot.tsv").write_text(
        LOT_HEADER + f"{lot}\tCAR-T\tCART-DEMO-release\t2026-11-24T08:30:00+01:00\tSITE-A\n"
    )
    if units is None:
        units = f"{lot}\tPHENO\tphenotype\ttest\t{lot}_phenotype.fcs\t\tconfig/panels/car_t_phenotype.yaml\n"
    (folder / "units.tsv").write_text(UNIT_HEADER + units)
    if fcs:
        shutil.copyfile(DEMO / "DEMO-001" / "DEMO-001_phenotype.fcs", folder / f"{lot}_phenotype.fcs")
    return folder


def _fake_snakemake(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Stand in for the Snakemake run (tests/integration runs the real one); the lots of each run."""
    ran: list[list[str]] = []

    def run(lot_ids, *args, **kwargs):
        ran.append(list(lot_ids))
        return 0

    monkeypatch.setattr("rapidrelease.watch.scan._run_snakemake", run)
    return ran


def test_a_delivery_is_waiting_until_its_manifest_and_every_named_file_are_there(inbox: Path):
    folder = inbox / "DEMO-001"
    folder.mkdir()
    (folder / "DEMO-001_phenotype.fcs").write_bytes(b"FCS3.1")
    # a folder with data and no manifest is not a delivery yet
    assert scan_inbox(inbox, stable_seconds=0) == []
    shutil.rmtree(folder)
    folder = _deliver(inbox, fcs=False)
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert (delivery.state, delivery.lot_id) == (WAITING, "DEMO-001")
    assert delivery.reason == f"{folder.resolve() / 'DEMO-001_phenotype.fcs'} (unit PHENO) has not arrived"
    shutil.copyfile(DEMO / "DEMO-001" / "DEMO-001_phenotype.fcs", folder / "DEMO-001_phenotype.fcs")
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == READY and delivery.reason == ""
    assert [row.cells["unit_id"] for row in delivery.units.rows] == ["PHENO"]


def test_a_file_still_being_written_is_not_read(inbox: Path):
    folder = _deliver(inbox)
    fcs = folder / "DEMO-001_phenotype.fcs"
    now = time.time()
    delivery = examine_delivery(folder, inbox, stable_seconds=60, now=now)
    assert delivery.state == WAITING
    manifest = folder.resolve() / "lot.tsv"
    assert delivery.reason == f"{manifest} changed less than 60 s ago (it may still be being written)"
    # a copy that keeps the source's old modification time still changed the file's ctime just now
    os.utime(fcs, (now - 86_400, now - 86_400))
    for name in ("lot.tsv", "units.tsv"):
        os.utime(folder / name, (now - 86_400, now - 86_400))
    assert examine_delivery(folder, inbox, stable_seconds=60, now=now).reason == delivery.reason
    # the same files a minute later are complete, and their fingerprint has not moved
    later = examine_delivery(folder, inbox, stable_seconds=60, now=now + 61)
    assert later.state == READY
    assert later.fingerprint == examine_delivery(folder, inbox, stable_seconds=60, now=now + 120).fingerprint
    # data still arriving after the manifest has settled keep the delivery waiting
    time.sleep(1.2)
    with open(fcs, "ab") as fh:
        fh.write(b"\0")
    waiting = examine_delivery(folder, inbox, stable_seconds=1)
    assert waiting.reason == f"{fcs.resolve()} changed less than 1 s ago (it may still be being written)"
    assert examine_delivery(folder, inbox, stable_seconds=0).fingerprint != later.fingerprint


def test_a_sequencing_run_folder_is_read_only_after_its_completion_marker(inbox: Path):
    run = inbox / "241124_M00123_0412_000000000-ABCDE"
    (run / "Data" / "Fastq").mkdir(parents=True)
    (run / "RunInfo.xml").write_text("<RunInfo/>")
    for read in ("R1", "R2"):
        (run / "Data" / "Fastq" / f"S1_{read}.fastq.gz").write_bytes(b"\x1f\x8b")
    fastq = "../241124_M00123_0412_000000000-ABCDE/Data/Fastq"
    _deliver(
        inbox,
        units=f"DEMO-001\tSTER\tsterility_reads\ttest\t{fastq}/S1_R1.fastq.gz\t{fastq}/S1_R2.fastq.gz\t\n",
        fcs=False,
    )
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == WAITING
    assert delivery.reason == f"Illumina run {run.resolve()} has no CopyComplete.txt or RTAComplete.txt yet"
    (run / "CopyComplete.txt").write_text("")
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == READY


def test_a_nanopore_run_is_read_only_after_its_final_summary(inbox: Path):
    run = inbox / "20261124_1030_MN12345_FAX00000_abcdef12"
    (run / "fastq_pass" / "barcode01").mkdir(parents=True)
    (run / "fastq_pass" / "barcode01" / "reads.fastq.gz").write_bytes(b"\x1f\x8b")
    path = f"../{run.name}/fastq_pass/barcode01/reads.fastq.gz"
    _deliver(inbox, units=f"DEMO-001\tSTER\tsterility_reads\ttest\t{path}\t\t\n", fcs=False)
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.reason == f"Oxford Nanopore run {run.resolve()} has no final_summary_*.txt yet"
    (run / "final_summary_FAX00000_abcdef12.txt").write_text("instrument=MN12345\n")
    assert scan_inbox(inbox, stable_seconds=0)[0].state == READY


@pytest.mark.parametrize(
    ("units", "reason"),
    [
        (
            "DEMO-001\tPHENO\tphenotype\ttest\t../../../etc/passwd\t\tconfig/panels/car_t_phenotype.yaml\n",
            "row 2, column 'path': '../../../etc/passwd' is not inside the inbox",
        ),
        (
            "DEMO-001\tPHENO\tphenotype\ttest\t/etc/passwd\t\tconfig/panels/car_t_phenotype.yaml\n",
            "row 2, column 'path': '/etc/passwd' is not inside the inbox",
        ),
        (
            "DEMO-009\tPHENO\tphenotype\ttest\tDEMO-001_phenotype.fcs\t\tconfig/panels/car_t_phenotype.yaml\n",
            "row 2 names lot 'DEMO-009', not 'DEMO-001'.",
        ),
        ("", "lists no units."),
    ],
)
def test_a_delivery_that_names_files_outside_the_inbox_or_another_lot_is_refused(
    inbox: Path, units: str, reason: str
):
    folder = _deliver(inbox, units=units)
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == REFUSED
    assert delivery.reason.startswith(str(folder.resolve() / "units.tsv"))
    assert reason in delivery.reason


def test_a_lot_manifest_must_hold_one_lot(inbox: Path):
    folder = _deliver(inbox)
    with open(folder / "lot.tsv", "a") as fh:
        fh.write("DEMO-002\tCAR-T\tCART-DEMO-release\t2026-11-24T08:30:00+01:00\tSITE-A\n")
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == REFUSED
    assert delivery.reason == f"{folder.resolve() / 'lot.tsv'} must hold exactly one lot row with a lot_id."


def test_registering_replaces_only_the_lots_rows_and_keeps_every_other_line(site: Path, inbox: Path):
    units_sheet = site / "config" / "units.tsv"
    (site / "config" / "lots.tsv").write_text(
        "# lots of the site\n" + LOT_HEADER
        + "OLD-7\tCAR-T\tCART-DEMO-release\t2026-11-20T08:30:00+01:00\tSITE-A\n"
        + "DEMO-001\tCAR-T\tCART-DEMO-release\t2026-11-01T08:30:00+01:00\tSITE-B\n"
    )  # fmt: skip
    units_sheet.write_text(
        "lot_id\tunit_id\tassay\trole\tpath\ttemplate\n"
        + "OLD-7\tPHENO\tphenotype\ttest\tresources/demo/DEMO-002/DEMO-002_phenotype.fcs\t"
        + "config/panels/car_t_phenotype.yaml\n"
        + "# DEMO-001 was entered by hand first\n"
        + "DEMO-001\tOLD\tphenotype\ttest\tgone.fcs\tconfig/panels/car_t_phenotype.yaml\n"
    )  # fmt: skip
    folder = _deliver(inbox)
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    registered, message = register_delivery(delivery, Path("config/config.yaml"))
    assert registered, message
    assert message == ("lot DEMO-001 registered (1 units, written to config/lots.tsv and config/units.tsv)")
    fcs = folder.resolve() / "DEMO-001_phenotype.fcs"
    assert units_sheet.read_text() == (
        # path2 is added to the header only if the delivery fills it; it does not
        "lot_id\tunit_id\tassay\trole\tpath\ttemplate\n"
        "OLD-7\tPHENO\tphenotype\ttest\tresources/demo/DEMO-002/DEMO-002_phenotype.fcs\t"
        "config/panels/car_t_phenotype.yaml\n"
        "# DEMO-001 was entered by hand first\n"
        f"DEMO-001\tPHENO\tphenotype\ttest\t{fcs}\tconfig/panels/car_t_phenotype.yaml\n"
    )
    assert (site / "config" / "lots.tsv").read_text().splitlines() == [
        "# lots of the site",
        LOT_HEADER.strip(),
        "OLD-7\tCAR-T\tCART-DEMO-release\t2026-11-20T08:30:00+01:00\tSITE-A",
        "DEMO-001\tCAR-T\tCART-DEMO-release\t2026-11-24T08:30:00+01:00\tSITE-A",
    ]
    before = units_sheet.stat().st_mtime_ns
    assert register_delivery(delivery, Path("config/config.yaml")) == (
        True,
        "lot DEMO-001 registered (1 units, already in the site's sheets)",
    )
    # an unchanged sheet is not rewritten, so Snakemake sees no other lot's inputs change
    assert units_sheet.stat().st_mtime_ns == before


def test_a_delivery_the_configuration_refuses_is_logged_once_and_the_sheets_are_untouched(
    site: Path, inbox: Path
):
    folder = _deliver(
        inbox,
        units="DEMO-001\tPHENO\tphenotyp\ttest\tDEMO-001_phenotype.fcs\t\tconfig/panels/car_t_phenotype.yaml\n",
    )
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    log = echo.getvalue()
    assert f"{folder.resolve()}: refused: the configuration would be refused with it:" in log
    # the problem names the delivery's own file and row, not the site's sheet or a scratch copy
    assert (
        f"{folder.resolve() / 'units.tsv'} row 2, column 'assay': 'phenotyp' is not one of phenotype," in log
    )
    assert (site / "config" / "units.tsv").read_text() == UNIT_HEADER
    assert (site / "config" / "lots.tsv").read_text() == LOT_HEADER
    state = json.loads((site / STATE / "state.json").read_text())
    assert state["deliveries"]["DEMO-001"]["status"] == REFUSED
    # nothing changed: the second scan does nothing and says nothing
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    assert echo.getvalue() == ""
    assert (site / STATE / "watch.log").read_text().count(": refused: ") == 1
    # a change to the site's specifications is a reason to try the delivery again
    with open(site / "config" / "specs.yaml", "a") as fh:
        fh.write("# reviewed\n")
    echo = io.StringIO()
    watch(inbox, once=True, stable_seconds=0, echo=echo)
    assert "refused" in echo.getvalue()


def test_a_second_delivery_of_the_same_lot_is_refused_while_the_first_is_in_the_inbox(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
):
    ran = _fake_snakemake(monkeypatch)
    first = _deliver(inbox, lot="DEMO-001")
    assert watch(inbox, once=True, stable_seconds=0, echo=io.StringIO()) == ["DEMO-001"]
    # a resend with other content (here a corrected sampling time) beside the first
    again = inbox / "DEMO-001-resent"
    shutil.copytree(first, again)
    lot = again / "lot.tsv"
    lot.write_text(lot.read_text().replace("08:30:00", "09:30:00"))
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    assert (
        f"{again.resolve()}: refused: lot DEMO-001 was already delivered in {inbox / 'DEMO-001'}; "
        "remove one of the two folders"
    ) in echo.getvalue()
    assert ran == [["DEMO-001"]]


def test_a_second_watcher_on_the_same_inbox_exits_with_one_sentence(site: Path, inbox: Path):
    state_dir = site / STATE
    state_dir.mkdir(mode=0o700)
    with open(state_dir / "lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 since 2026-12-02T10:00:00+00:00\n")
        held.flush()
        with pytest.raises(WatchLockedError, match="another rapidrelease watch is running on this inbox"):
            watch(inbox, once=True, stable_seconds=0, echo=io.StringIO())
        done = subprocess.run(
            [str(Path(sys.executable).parent / "rapidrelease"), "watch", "--inbox", str(inbox), "--once"],
            capture_output=True,
            text=True,
        )
    assert done.returncode == 1
    assert done.stderr == (
        f"rapidrelease: {state_dir / 'lock'}: another rapidrelease watch is running on this inbox "
        "(pid 4242 since 2026-12-02T10:00:00+00:00); this one exits.\n"
    )
    # once the first has gone, the inbox is free again
    assert watch(inbox, once=True, stable_seconds=0, echo=io.StringIO()) == []


def test_an_inbox_that_is_not_a_folder_is_refused(site: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="the inbox is not a folder"):
        watch(tmp_path / "nowhere", once=True)


def test_what_a_delivery_waits_for_is_logged_once(site: Path, inbox: Path):
    folder = _deliver(inbox, fcs=False)
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    fcs = folder.resolve() / "DEMO-001_phenotype.fcs"
    assert echo.getvalue().endswith(f"{folder.resolve()}: waiting: {fcs} (unit PHENO) has not arrived.\n")
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    assert echo.getvalue() == ""
    assert (site / "config" / "units.tsv").read_text() == UNIT_HEADER


def test_a_data_file_that_links_out_of_the_inbox_is_refused(inbox: Path, tmp_path: Path):
    outside = tmp_path / "elsewhere.fcs"
    shutil.copyfile(DEMO / "DEMO-001" / "DEMO-001_phenotype.fcs", outside)
    folder = _deliver(inbox, fcs=False)
    (folder / "DEMO-001_phenotype.fcs").symlink_to(outside)
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == REFUSED
    assert "column 'path': 'DEMO-001_phenotype.fcs' is not inside the inbox" in delivery.reason


# --- the watcher's own folder ---------------------------------------------------------------------


def test_links_planted_in_the_inbox_are_never_written_through(site: Path, inbox: Path, tmp_path: Path):
    # issue 14: a `lock` link in <inbox>/.rapidrelease-watch/ truncated a file outside the inbox and a
    # `watch.log` link appended to another; whoever writes the inbox could plant them
    planted = inbox / STATE_DIR_NAME
    planted.mkdir()
    victims = {name: tmp_path / f"victim-{name}" for name in ("lock", "watch.log", "state.json")}
    for name, victim in victims.items():
        victim.write_text("not the watcher's\n")
        (planted / name).symlink_to(victim)
    folder = _deliver(inbox, fcs=False)
    assert watch(inbox, once=True, stable_seconds=0, echo=io.StringIO()) == []
    assert {victim.read_text() for victim in victims.values()} == {"not the watcher's\n"}
    # the watcher kept its state beside the configuration, a folder only its user may write
    state = site / STATE
    assert f"{folder.resolve()}: waiting:" in (state / "watch.log").read_text()
    assert os.stat(state).st_mode & 0o777 == 0o700
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        ("folder link", "is a symbolic link or not a folder"),
        ("lock", "lock: is a symbolic link; the watcher never reads or writes through a link"),
        ("watch.log", "watch.log: is a symbolic link; the watcher never reads or writes through a link"),
        ("state.json", "state.json: is a symbolic link; the watcher never reads or writes through a link"),
        ("hard link", "lock: is not a plain file of the watcher's own"),
        ("open to others", "can be written by other users (mode 777); run chmod go-w on it"),
        ("inside the inbox", "is inside the inbox"),
    ],
)
def test_a_state_folder_the_watcher_cannot_trust_is_refused_with_one_sentence(
    site: Path, inbox: Path, tmp_path: Path, plant: str, problem: str
):
    victim = tmp_path / "victim"
    victim.write_text("not the watcher's\n")
    state = tmp_path / "state"
    if plant == "folder link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        state.symlink_to(tmp_path / "elsewhere")
    elif plant == "inside the inbox":
        state = inbox / "state"
    else:
        state.mkdir(mode=0o700)
        if plant == "open to others":
            state.chmod(0o777)
        elif plant == "hard link":
            os.link(victim, state / "lock")
        else:
            (state / plant).symlink_to(victim)
    _deliver(inbox, fcs=False)
    with pytest.raises(WatchStateError, match="^[^\n]*" + re.escape(problem) + "[^\n]*$"):
        watch(inbox, once=True, stable_seconds=0, echo=io.StringIO(), state_dir=state)
    assert victim.read_text() == "not the watcher's\n"
    assert not (tmp_path / "elsewhere" / "lock").exists()
    assert (site / "config" / "units.tsv").read_text() == UNIT_HEADER
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rapidrelease"), "watch", "--inbox", str(inbox), "--once",
         "--state", str(state)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("rapidrelease: ") and problem in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_state_folder_serves_one_inbox(site: Path, inbox: Path, tmp_path: Path):
    assert watch(inbox, once=True, stable_seconds=0, echo=io.StringIO()) == []
    other = tmp_path / "other-inbox"
    other.mkdir()
    with pytest.raises(WatchStateError, match=r"holds the state of inbox .*; give each inbox a state folder"):
        watch(other, once=True, stable_seconds=0, echo=io.StringIO())
    assert watch(other, once=True, stable_seconds=0, echo=io.StringIO(), state_dir=tmp_path / "other") == []


# --- hostile deliveries: each beside a good twin that proves the scan still reaches it -------------

SECRET = "root:x:0:0:SECRET-FIRST-LINE:/root:/bin/bash\n"


def _scan_beside_a_twin(inbox: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One scan with a good delivery, TWIN-1, beside the others: it must be registered and run."""
    ran = _fake_snakemake(monkeypatch)
    _deliver(inbox, lot="TWIN-1")
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == ["TWIN-1"]
    assert ran == [["TWIN-1"]]
    log = echo.getvalue()
    assert "TWIN-1: lot TWIN-1 registered (1 units" in log
    assert "SECRET" not in log
    return log


def _refusal(log: str, folder: Path) -> str:
    """The one line that refuses ``folder``; there must be exactly one, and it must name it."""
    lines = [line for line in log.splitlines() if ": refused: " in line]
    assert len(lines) == 1, log
    assert f" {folder}: refused: " in lines[0]
    return lines[0]


def _outside(tmp_path: Path) -> Path:
    """A folder outside the inbox holding what looks like a delivery, with a line nobody may see."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "lot.tsv").write_text(SECRET)
    (outside / "units.tsv").write_text(SECRET)
    return outside


def test_a_delivery_folder_that_is_a_link_is_refused_unread(
    site: Path, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (inbox / "LINKED").symlink_to(_outside(tmp_path))
    # a link to a folder with no manifest (an instrument's run folder, say) is no delivery
    (tmp_path / "run").mkdir()
    (inbox / "RUN-LINK").symlink_to(tmp_path / "run")
    log = _scan_beside_a_twin(inbox, monkeypatch)
    line = _refusal(log, inbox.resolve() / "LINKED")
    assert line.endswith("LINKED is a symbolic link; a delivery must be a folder in the inbox itself, "
                         "and a link is not followed.")  # fmt: skip


@pytest.mark.parametrize("manifest", ["lot.tsv", "units.tsv"])
def test_a_manifest_that_is_a_link_is_refused_unread(
    site: Path, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: str
):
    outside = _outside(tmp_path)
    folder = _deliver(inbox, lot="DEMO-001")
    (folder / manifest).unlink()
    (folder / manifest).symlink_to(outside / manifest)
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert f"{folder.resolve() / manifest} is a symbolic link; a manifest must be a file" in line


def test_a_data_path_through_a_linked_run_folder_is_refused(
    site: Path, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    run = tmp_path / "seq-run"
    run.mkdir()
    shutil.copyfile(DEMO / "DEMO-001" / "DEMO-001_phenotype.fcs", run / "tube.fcs")
    (inbox / "RUN-0412").symlink_to(run)
    folder = _deliver(
        inbox,
        units="DEMO-001\tPHENO\tphenotype\ttest\t../RUN-0412/tube.fcs\t\tconfig/panels/car_t_phenotype.yaml\n",
    )
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert "row 2, column 'path': '../RUN-0412/tube.fcs' is not inside the inbox" in line


def test_no_line_of_a_manifest_is_quoted_in_the_log(site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch):
    # a header the watcher does not know may be any file's first line: it is named by position only
    folder = _deliver(inbox)
    (folder / "units.tsv").write_text(SECRET + "a\tb\n")
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert line.endswith(
        "units.tsv row 1: column 1 of the header is not a known column (the columns are lot_id, unit_id, "
        "assay, role, path, path2, template, volume_ul, stain, library, spike_organism, "
        "spike_concentration, spike_unit)."
    )


def test_a_cell_with_a_control_character_is_refused(site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch):
    # an escape sequence would rewrite a terminal showing the log; a quoted tab would shift the cells
    # of the site's sheet
    folder = _deliver(
        inbox,
        units='DEMO-001\t"PH\x1b[2J\tENO"\tphenotype\ttest\tDEMO-001_phenotype.fcs\t\t'
        "config/panels/car_t_phenotype.yaml\n",
    )
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert line.endswith("units.tsv row 2 holds a control character (U+001B); a manifest holds text cells "
                         "separated by tabs.")  # fmt: skip
    assert "\x1b" not in line


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("link loop", "row 2, column 'path': 'loop.fcs' is a loop of symbolic links."),
        ("two-link loop", "row 2, column 'path': 'a.fcs' is a loop of symbolic links."),
        ("NUL in a path", "units.tsv holds a NUL byte; a manifest is text."),
        ("NUL in a lot cell", "lot.tsv holds a NUL byte; a manifest is text."),
        ("256-byte name", "is longer than the file system allows (a name of at most 255 bytes"),
        ("5,000-byte path", "is longer than the file system allows (a name of at most 255 bytes"),
    ],
)
def test_a_delivery_that_crashed_the_scan_is_refused_alone(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch, case: str, problem: str
):
    # issue 14: each of these stopped the scan for every lot of the inbox with a traceback
    paths = {
        "link loop": "loop.fcs",
        "two-link loop": "a.fcs",
        "NUL in a path": "DEMO-001_pheno\0type.fcs",
        "256-byte name": "a" * 252 + ".fcs",
        "5,000-byte path": "/".join(["d" * 200] * 25) + "/tube.fcs",
    }
    path = paths.get(case, "DEMO-001_phenotype.fcs")
    folder = _deliver(
        inbox, units=f"DEMO-001\tPHENO\tphenotype\ttest\t{path}\t\tconfig/panels/car_t_phenotype.yaml\n"
    )
    if case == "link loop":
        (folder / "loop.fcs").symlink_to("loop.fcs")
    elif case == "two-link loop":
        (folder / "a.fcs").symlink_to("b.fcs")
        (folder / "b.fcs").symlink_to("a.fcs")
    elif case == "NUL in a lot cell":
        lot = folder / "lot.tsv"
        lot.write_text(lot.read_text().replace("SITE-A", "SITE\0A"))
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert problem in line


def _own_panel(folder: Path) -> Path:
    """A panel a delivery brings: the site's phenotype panel with CAR+ counted as its own denominator."""
    site_panel = (PROJECT / "config" / "panels" / "car_t_phenotype.yaml").read_text()
    rigged = site_panel.replace(
        "    numerator: Cells/Singlets/Live/CD3pos/CARpos\n    denominator: Cells/Singlets/Live/CD3pos\n",
        "    numerator: Cells/Singlets/Live/CD3pos\n    denominator: Cells/Singlets/Live/CD3pos\n",
    )
    assert rigged != site_panel
    (folder / "panel.yaml").write_text(rigged)
    return folder / "panel.yaml"


@pytest.mark.parametrize(
    "named",
    [
        "{panel}",  # the delivery's panel by its absolute path
        "../inbox/DEMO-001/panel.yaml",  # relative to the site's folder, where Snakemake runs
        "config/panels/../../../inbox/DEMO-001/panel.yaml",  # through the site's panels folder
        "panel.yaml",  # a file name that is no site panel
    ],
)
def test_a_delivery_cannot_bring_its_own_panel(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch, named: str
):
    # issue 14: a units row naming a panel inside the delivery (CAR+ numerator = denominator) was
    # registered and decided RELEASE_CANDIDATE
    folder = _deliver(inbox, fcs=True, units="")
    panel = _own_panel(folder)
    named = named.format(panel=panel)
    (folder / "units.tsv").write_text(
        UNIT_HEADER + f"DEMO-001\tPHENO\tphenotype\ttest\tDEMO-001_phenotype.fcs\t\t{named}\n"
    )
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    shown = repr(named if len(named) <= 80 else named[:60] + "…")
    assert line.endswith(
        f"units.tsv row 2, column 'template': {shown} is not one of the site's panels "
        "(car_t_phenotype.yaml, car_t_potency.yaml, microbial_flow.yaml); a delivery names a panel of "
        "config/panels/ and cannot bring its own."
    )
    assert "DEMO-001" not in (site / "config" / "units.tsv").read_text()


def test_a_site_panel_that_links_into_the_inbox_is_not_one(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _deliver(inbox, units="")
    (site / "config" / "panels" / "rigged.yaml").symlink_to(_own_panel(folder))
    (folder / "units.tsv").write_text(
        UNIT_HEADER
        + "DEMO-001\tPHENO\tphenotype\ttest\tDEMO-001_phenotype.fcs\t\tconfig/panels/rigged.yaml\n"
    )
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert "column 'template': 'config/panels/rigged.yaml' is not one of the site's panels" in line


def test_a_delivery_names_a_site_panel_by_its_file_name_or_as_the_site_sheet_does(site: Path, inbox: Path):
    # a panel kept elsewhere by the site, named in its unit sheet for another lot
    shutil.copy(site / "config" / "panels" / "car_t_phenotype.yaml", site / "phenotype_v2.yaml")
    with open(site / "config" / "units.tsv", "a") as fh:
        fh.write(
            "OLD-7\tPHENO\tphenotype\ttest\tresources/demo/DEMO-002/DEMO-002_phenotype.fcs\t\tphenotype_v2.yaml\n"
        )
    with open(site / "config" / "lots.tsv", "a") as fh:
        fh.write("OLD-7\tCAR-T\tCART-DEMO-release\t2026-11-20T08:30:00+01:00\tSITE-A\n")
    _deliver(
        inbox,
        units="DEMO-001\tPHENO\tphenotype\ttest\tDEMO-001_phenotype.fcs\t\tcar_t_phenotype.yaml\n"
        "DEMO-001\tPHENO-2\tphenotype\ttest\tDEMO-001_phenotype.fcs\t\tphenotype_v2.yaml\n",
    )
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    registered, message = register_delivery(delivery, Path("config/config.yaml"))
    assert registered, message
    rows = [line.split("\t") for line in (site / "config" / "units.tsv").read_text().splitlines()]
    assert [row[6] for row in rows if row[0] == "DEMO-001"] == [
        "config/panels/car_t_phenotype.yaml",
        "phenotype_v2.yaml",
    ]


@pytest.mark.parametrize("lot", ["index.html", "Index.HTML"])
def test_a_lot_id_that_is_a_results_file_is_refused(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch, lot: str
):
    # issue 14: the lot id index.html was accepted, and its folder stopped every later run
    folder = _deliver(inbox, lot=lot)
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert line.endswith(
        f"lot.tsv row 2, column 'lot_id': {lot!r} is the name of a file in the results folder, not a lot id."
    )


def _units_rows(lot: str, count: int, assay: str = "phenotype") -> str:
    return "".join(
        f"{lot}\tU{i}\t{assay}\ttest\t{lot}_phenotype.fcs\t\tconfig/panels/car_t_phenotype.yaml\n"
        for i in range(count)
    )


def test_a_manifest_holds_at_most_a_thousand_rows(inbox: Path):
    _deliver(inbox, units=_units_rows("DEMO-001", MAX_MANIFEST_ROWS))
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == READY and len(delivery.units.rows) == 1_000
    with open(inbox / "DEMO-001" / "units.tsv", "a") as fh:
        fh.write("# a comment is no row\n\n" + _units_rows("DEMO-001", 1).replace("U0", "U1000"))
    [delivery] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.state == REFUSED
    assert delivery.reason.endswith(
        "units.tsv has 1,001 rows; a delivery's manifest holds at most 1,000 (one lot's units)."
    )


def test_a_hundred_thousand_row_manifest_is_refused_before_any_row_is_checked(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
):
    # issue 14: spent minutes (the configuration check grows with the square of the rows)
    folder = _deliver(inbox, units=_units_rows("DEMO-001", 100_000, assay="phenotyp"))
    checked = []
    monkeypatch.setattr("rapidrelease.watch.site.run_config_from_dict", lambda *a: checked.append(a))
    line = _refusal(_scan_beside_a_twin(inbox, monkeypatch), folder.resolve())
    assert line.endswith(
        "units.tsv has 100,000 rows; a delivery's manifest holds at most 1,000 (one lot's units)."
    )
    assert len(checked) == 1  # the twin's
    # larger still, it is refused unread
    with open(folder / "units.tsv", "r+") as fh:
        fh.truncate(MAX_MANIFEST_BYTES + 1)
    [delivery, _] = scan_inbox(inbox, stable_seconds=0)
    assert delivery.reason.endswith(
        "units.tsv holds 16,777,217 bytes; a delivery's manifest holds at most 16,777,216 (1,000 rows of "
        "one lot)."
    )


def test_a_refusal_shows_twenty_problems_of_a_manifest_at_most(site: Path, inbox: Path):
    folder = _deliver(inbox, units=_units_rows("DEMO-001", 30, assay="phenotyp"))
    echo = io.StringIO()
    watch(inbox, once=True, stable_seconds=0, echo=echo)
    log = echo.getvalue()
    assert log.count("is not one of phenotype") == 20
    assert log.endswith("\n… and 10 more problems.\n")
    assert f"{folder.resolve()}: refused: the configuration would be refused with it:\n30 problems" in log


# --- a delivery is run once for its content --------------------------------------------------------


def test_a_delivery_renamed_after_it_was_processed_is_not_run_again(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
):
    # issue 14: renaming a processed delivery's folder registered and ran its lot again
    ran = _fake_snakemake(monkeypatch)
    folder = _deliver(inbox)
    assert watch(inbox, once=True, stable_seconds=0, echo=io.StringIO()) == ["DEMO-001"]
    sheets = [(site / "config" / name).read_text() for name in ("lots.tsv", "units.tsv")]
    processed_at = _state(site)["processed"][_content(site)]["at"]
    renamed = folder.rename(inbox / "DEMO-001-renamed")
    log = _scan_beside_a_twin(inbox, monkeypatch)
    assert ran == [["DEMO-001"]]  # the twin's run is counted by _scan_beside_a_twin
    assert log.count("\n") == 2  # the renamed delivery, the twin registered (the stand-in logs no run)
    assert (
        f"{renamed.resolve()}: not run again: it holds the same manifests and data as the delivery of lot "
        f"DEMO-001 processed at {processed_at} in {inbox / 'DEMO-001'}; the site's sheets still name its "
        "files there.\n"
    ) in log
    # the lot's rows are as they were when it was processed
    assert (site / "config" / "lots.tsv").read_text().startswith(sheets[0])
    assert f"{folder.resolve()}/DEMO-001_phenotype.fcs" in (site / "config" / "units.tsv").read_text()
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    assert echo.getvalue() == ""


def test_a_second_copy_or_a_touched_delivery_is_not_run_again_and_a_corrected_one_is(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
):
    ran = _fake_snakemake(monkeypatch)
    folder = _deliver(inbox)
    assert watch(inbox, once=True, stable_seconds=0, echo=io.StringIO()) == ["DEMO-001"]
    processed_at = _state(site)["processed"][_content(site)]["at"]
    copy = shutil.copytree(folder, inbox / "DEMO-001-copy")
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    assert echo.getvalue().endswith(
        f"{copy.resolve()}: not run again: it holds the same manifests and data as the delivery of lot "
        f"DEMO-001 processed at {processed_at} in {inbox / 'DEMO-001'}; the site's sheets still name its "
        "files there.\n"
    )
    shutil.rmtree(copy)
    # new times, the same bytes (a copy without -t, a backup restored)
    for path in folder.iterdir():
        os.utime(path, (time.time() - 10, time.time() - 10))
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    assert echo.getvalue().endswith(
        f"{folder.resolve()}: not run again: it holds the same manifests and data as the delivery of lot "
        f"DEMO-001 processed at {processed_at}.\n"
    )
    # a corrected delivery replaces its folder's files: other bytes, run again
    shutil.copyfile(DEMO / "DEMO-002" / "DEMO-002_phenotype.fcs", folder / "DEMO-001_phenotype.fcs")
    assert watch(inbox, once=True, stable_seconds=0, echo=io.StringIO()) == ["DEMO-001"]
    assert ran == [["DEMO-001"], ["DEMO-001"]]
    assert len(_state(site)["processed"]) == 2


def _state(site: Path) -> dict:
    return json.loads((site / STATE / "state.json").read_text())


def _content(site: Path) -> str:
    [content] = _state(site)["processed"]
    return content


def test_a_refusal_is_logged_once_though_the_scan_registers_other_lots(
    site: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
):
    # refused before TWIN-1 in the scan's order: TWIN-1's rows change the site's sheets after them
    typo = _deliver(inbox, lot="AAA-1", units=_units_rows("AAA-1", 1, assay="phenotyp"))
    nul = _deliver(inbox, lot="AAB-1")
    (nul / "units.tsv").write_bytes(b"lot_id\tunit_id\nAAB-1\tPH\0ENO\n")
    log = _scan_beside_a_twin(inbox, monkeypatch).splitlines()
    assert [line.split(": ")[0].split(" ")[1] for line in log if ": refused: " in line] == [
        str(typo.resolve()),
        str(nul.resolve()),
    ]
    echo = io.StringIO()
    assert watch(inbox, once=True, stable_seconds=0, echo=echo) == []
    assert echo.getvalue() == ""
    # a person's change to the site tries the one refused by the configuration again, not the other
    with open(site / "config" / "specs.yaml", "a") as fh:
        fh.write("# reviewed\n")
    echo = io.StringIO()
    watch(inbox, once=True, stable_seconds=0, echo=echo)
    assert echo.getvalue().count(": refused: ") == 1 and f"{typo.resolve()}: refused: " in echo.getvalue()
