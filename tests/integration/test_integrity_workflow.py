"""Decision integrity in real snakemake runs: reruns follow the bytes of every input, not their clocks.

Each hostile change is made the way a lab or a copy tool makes it (``cp -p`` and ``rsync -t`` keep
the source's older modification time; ``touch -d`` sets any time) and is paired with what the same
lot looked like before, so no case passes vacuously.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.records import seal_of
from rapidrelease.synthetic.demo.fcs_writer import write_fcs
from rapidrelease.synthetic.demo.microbial import (
    MICROBIAL_CHANNELS,
    microbial_keywords,
    simulate_microbial_tube,
)

from support.workflow import append_rows, copy_of_site, release_of, run_snakemake

pytestmark = pytest.mark.slow


def _planned(plan: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans."""
    jobs = []
    for block in re.split(r"\n(?=\[)", plan):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        wildcards = re.search(r"^\s+wildcards: (.+)$", block, flags=re.M)
        if rule:
            jobs.append((rule.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


# --------------------------------------------------------------- hostile lots, each beside its twin

MICROBIAL_PANEL = "config/panels/microbial_flow.yaml"
RUN = "resources/demo/SEQ-RUN-01/SEQ-RUN-01"
LOT_ROW = "\tCAR-T (hostile)\tCART-DEMO-release\t2026-11-25T08:00:00+01:00\tSITE-A\t1.2e9\t78"


def _reads(lot: str, unit: str, role: str, r1: str, r2: str, spike: str = "\t\t") -> str:
    return f"{lot}\t{unit}\tsterility_reads\t{role}\t{r1}\t{r2}\t\t\tshotgun\t{spike}"


def _run_controls(lot: str, nc1: tuple[str, str] | None = None) -> list[str]:
    """The sequencing run's controls as a lot lists them (NC1 may be replaced)."""
    nc1 = nc1 or (f"{RUN}_NC1_R1.fastq.gz", f"{RUN}_NC1_R2.fastq.gz")
    return [
        _reads(lot, "STER-NC1", "negative_control", *nc1),
        _reads(lot, "STER-NC2", "negative_control", f"{RUN}_NC2_R1.fastq.gz", f"{RUN}_NC2_R2.fastq.gz"),
        _reads(lot, "STER-PC", "positive_control", f"{RUN}_PC_R1.fastq.gz", f"{RUN}_PC_R2.fastq.gz",
               "Staphylococcus aureus\t100\tCFU/mL"),
    ]  # fmt: skip


def _microbial_tube(path: Path, per_ml: float, seed: int) -> None:
    tube = simulate_microbial_tube(np.random.default_rng(seed), microbes_per_ml=per_ml)
    keywords = microbial_keywords(
        tube,
        seed=seed,
        start=datetime(2026, 11, 25, 11, 0),
        file_name=path.name,
        source="hostile",
        sample="hostile",
        operator="test",
        tube_name=path.stem,
    )
    write_fcs(path, tube.events, MICROBIAL_CHANNELS, keywords)  # fmt: skip


@pytest.fixture(scope="module")
def hostile(project_root: Path, demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of hostile lots, each with a twin that shows the same data can be decided, added to a
    copy of the site where the demo lots were decided (with Snakemake's records: they are not
    measured again).

    - CONTAM: a product sample holding S. aureus (the run's positive control material), against the
      run's controls: DETECTED, not releasable (the twin of SELF-NC);
    - SELF-NC: the same sample with a byte-identical copy of it as its first negative control (an
      invalid run, whose detection against the real second control still stands);
    - HOST-SPIKE: DEMO-001's own reads as the positive control with the spike "Homo sapiens"
      (twin: DEMO-001 with the run's real positive control, a release candidate);
    - MICRO-CONTAM: a microbial tube at 2×10⁴ microbes/mL against the run's sterile medium:
      DETECTED (the twin of MICRO-SELF and MICRO-VOL);
    - MICRO-SELF: the same tube with a copy of itself as its sterile medium;
    - MICRO-VOL: the same tube with a volume_ul 200× its $VOL.
    """
    workdir = copy_of_site(demo_run, tmp_path_factory.mktemp("hostile") / "site")
    data = workdir / "hostile"
    data.mkdir()
    demo = workdir / "resources" / "demo"
    # a lot's test file may serve only that lot, so each lot gets its own copy of the bytes it reuses
    # a contaminated product sample: a lot's product reads followed by the positive control's
    # (gzip members concatenate; both mates in the same order keep the pairs), ~22,000 RPM S. aureus
    product, spiked = demo / "DEMO-002" / "DEMO-002_sterility", workdir / f"{RUN}_PC"
    copies = {
        "contam": (product, spiked),
        "self": (product, spiked),
        "self-nc": (product, spiked),  # the same bytes as "self", under another name
        "host-test": (demo / "DEMO-001" / "DEMO-001_sterility",),
        "host-spike": (product,),  # another lot's product: human reads, not a contaminant
    }
    for name, sources in copies.items():
        for mate in ("R1", "R2"):
            data.joinpath(f"{name}_{mate}.fastq.gz").write_bytes(
                b"".join(Path(f"{source}_{mate}.fastq.gz").read_bytes() for source in sources)
            )
    _microbial_tube(data / "contaminated.fcs", 2.0e4, seed=7)
    for name in ("self.fcs", "medium-copy.fcs", "volume.fcs"):
        shutil.copyfile(data / "contaminated.fcs", data / name)
    medium = "resources/demo/FLOW-RUN-01/FLOW-RUN-01_medium.fcs"
    lots = ["CONTAM", "SELF-NC", "HOST-SPIKE", "MICRO-CONTAM", "MICRO-SELF", "MICRO-VOL"]
    append_rows(workdir / "config" / "lots.tsv", [f"{lot}{LOT_ROW}" for lot in lots])

    def pair(name: str) -> tuple[str, str]:
        return f"hostile/{name}_R1.fastq.gz", f"hostile/{name}_R2.fastq.gz"

    units = [
        _reads("CONTAM", "STER", "test", *pair("contam")),
        *_run_controls("CONTAM"),
        _reads("SELF-NC", "STER", "test", *pair("self")),
        *_run_controls("SELF-NC", nc1=pair("self-nc")),
        _reads("HOST-SPIKE", "STER", "test", *pair("host-test")),
        *_run_controls("HOST-SPIKE")[:2],
        _reads("HOST-SPIKE", "STER-PC", "positive_control", *pair("host-spike"), "Homo sapiens\t100\tCFU/mL"),
        f"MICRO-CONTAM\tMICRO\tmicrobial_flow\ttest\thostile/contaminated.fcs\t\t{MICROBIAL_PANEL}\t",
        f"MICRO-CONTAM\tMICRO-NC\tmicrobial_flow\tnegative_control\t{medium}\t\t{MICROBIAL_PANEL}\t",
        f"MICRO-SELF\tMICRO\tmicrobial_flow\ttest\thostile/self.fcs\t\t{MICROBIAL_PANEL}\t",
        f"MICRO-SELF\tMICRO-NC\tmicrobial_flow\tnegative_control\thostile/medium-copy.fcs\t\t{MICROBIAL_PANEL}\t",
        f"MICRO-VOL\tMICRO\tmicrobial_flow\ttest\thostile/volume.fcs\t\t{MICROBIAL_PANEL}\t5000",
        f"MICRO-VOL\tMICRO-NC\tmicrobial_flow\tnegative_control\t{medium}\t\t{MICROBIAL_PANEL}\t",
    ]  # fmt: skip
    append_rows(workdir / "config" / "units.tsv", units)
    done = run_snakemake(project_root, workdir, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def _attribute(release: dict, name: str) -> dict:
    return next(a for a in release["attributes"] if a["name"] == name)


def test_a_sample_listed_as_its_own_negative_control_is_no_control(hostile: Path):
    twin = _attribute(release_of(hostile, "CONTAM"), "sterility")
    assert twin["result"] == "FAIL" and "Staphylococcus aureus" in twin["reason"]
    assert release_of(hostile, "CONTAM")["status"] == "NOT_RELEASABLE"
    # the copy is no control, so the run is invalid; but S. aureus is still far above the real
    # control, and an invalid run cannot explain a detection away (issue 17): a FAIL that says both
    sterility = _attribute(release_of(hostile, "SELF-NC"), "sterility")
    assert sterility["result"] == "FAIL" and "Staphylococcus aureus" in sterility["reason"]
    assert (
        "negative control STER-NC1 could not be measured (hostile/self-nc_R1.fastq.gz: holds the same "
        "reads as unit STER under test" in sterility["reason"]
    ), sterility["reason"]
    assert release_of(hostile, "SELF-NC")["status"] != "RELEASE_CANDIDATE"


def test_a_host_spike_does_not_make_a_run_valid(hostile: Path):
    assert release_of(hostile, "DEMO-001")["status"] == "RELEASE_CANDIDATE"
    lod = _attribute(release_of(hostile, "HOST-SPIKE"), "sterility_lod")
    assert lod["result"] == "INCONCLUSIVE"
    assert "its spike Homo sapiens is host in the reference taxonomy" in lod["reason"]


def test_a_tube_listed_as_its_own_sterile_medium_or_diluted_by_the_sheet_is_never_sterile(hostile: Path):
    twin = _attribute(release_of(hostile, "MICRO-CONTAM"), "microbial_flow")
    assert (twin["result"], twin["value"]) == ("FAIL", "DETECTED")
    own = _attribute(release_of(hostile, "MICRO-SELF"), "microbial_flow")
    assert own["result"] == "INCONCLUSIVE" and "holds the same bytes as the tube under test" in own["reason"]
    diluted = _attribute(release_of(hostile, "MICRO-VOL"), "microbial_flow")
    assert diluted["result"] == "INCONCLUSIVE"
    assert "the unit sheet's volume_ul (5000 µL) disagrees with the file's $VOL (25 µL)" in diluted["reason"]


def test_a_record_edited_by_hand_is_never_a_value(project_root: Path, hostile: Path):
    # DEMO-002 fails on CAR+ of CD3+ (8.9 %); its record edited to 20.0 %, counts and interval untouched
    path = hostile / "results/DEMO-002/flow/PHENO/metrics.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["metrics"]["car_pct_cd3"]["value"] = 20.0
    edited = dict(data)
    path.write_text(json.dumps(edited, indent=2), encoding="utf-8")
    rerun = run_snakemake(project_root, hostile)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    release = release_of(hostile, "DEMO-002")
    assert release["status"] == "INCONCLUSIVE"
    car = _attribute(release, "car_of_cd3")
    assert car["result"] == "INCONCLUSIVE"
    assert f"{path.relative_to(hostile)}: its content does not match its seal" in car["reason"]
    # and with the seal computed again, the counts behind the value still give it away
    data["seal"]["sha256"] = seal_of(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    rerun = run_snakemake(project_root, hostile)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    car = _attribute(release_of(hostile, "DEMO-002"), "car_of_cd3")
    assert "metric car_pct_cd3 is 20.0, but 1807 of 20262 events make" in car["reason"]
    assert release_of(hostile, "DEMO-001")["status"] == "RELEASE_CANDIDATE"


# -------------------------------------- reruns follow bytes, not clocks (on the same site, last)


def test_a_lots_own_reads_replaced_re_classify_that_lot_alone_not_the_runs_shared_controls(
    project_root: Path, hostile: Path, tmp_path: Path
):
    # DEMO-002's test reads replaced by DEMO-001's (other bytes, older time); the run's NC1, NC2 and
    # PC, listed by every lot of the site, were classified once and stay so
    own = hostile / "resources/demo/DEMO-002/DEMO-002_sterility_R1.fastq.gz"
    kept = tmp_path / own.name
    subprocess.run(["cp", "-p", str(own), str(kept)], check=True)
    subprocess.run(
        ["cp", "-p", str(hostile / "resources/demo/DEMO-001/DEMO-001_sterility_R1.fastq.gz"), str(own)],
        check=True,
    )
    try:
        plan = run_snakemake(project_root, hostile, "--dry-run")
    finally:
        subprocess.run(["cp", "-p", str(kept), str(own)], check=True)  # the later tests' site as it was
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = _planned(plan.stdout)
    classified = [w for rule, w in jobs if rule == "classify_reads_part"]
    gathered = [w for rule, w in jobs if rule == "gather_reads_unit"]
    assert len(classified) == 1 and len(gathered) == 1, plan.stdout[-3000:]
    assert classified[0].startswith(gathered[0] + ", part=")
    # only DEMO-002's test is called again (its controls' calls read no test) and only it is decided
    assert [w for rule, w in jobs if rule == "call_reads_unit"] == ["lot=DEMO-002, unit=STER"]
    assert [w for rule, w in jobs if rule == "evaluate_lot"] == ["lot=DEMO-002"]
    assert not [w for rule, w in jobs if rule == "measure_flow_unit"]


def test_a_tube_replaced_by_an_older_file_re_measures_and_re_decides_its_lot(
    project_root: Path, hostile: Path
):
    passing = hostile / "resources/demo/DEMO-001/DEMO-001_phenotype.fcs"
    failing = hostile / "resources/demo/DEMO-002/DEMO-002_phenotype.fcs"
    before = release_of(hostile, "DEMO-001")
    # the failing lot's tube copied over the passing lot's, keeping its older time: Snakemake's clock
    # alone would see nothing to do
    subprocess.run(["cp", "-p", str(failing), str(passing)], check=True)
    assert passing.stat().st_mtime < (hostile / "results/DEMO-001/release.json").stat().st_mtime
    plan = run_snakemake(project_root, hostile, "--dry-run")
    assert plan.returncode == 0, plan.stderr[-3000:]
    measured = [w for rule, w in _planned(plan.stdout) if rule == "measure_flow_unit"]
    assert measured == ["lot=DEMO-001, unit=PHENO"], plan.stdout[-3000:]
    rerun = run_snakemake(project_root, hostile)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = release_of(hostile, "DEMO-001")
    assert after["status"] == "NOT_RELEASABLE"
    car = next(a for a in after["attributes"] if a["name"] == "car_of_cd3")
    assert (car["result"], car["value"]) == ("FAIL", 8.9)
    sha = next(u for u in after["units"] if u["unit_id"] == "PHENO")["inputs"][0]["sha256"]
    old = next(u for u in before["units"] if u["unit_id"] == "PHENO")["inputs"][0]["sha256"]
    assert sha != old and sha == hashlib.sha256(failing.read_bytes()).hexdigest()


def test_a_specification_edited_and_touched_back_in_time_re_decides_every_lot(
    project_root: Path, hostile: Path
):
    specs = hostile / "config" / "specs.yaml"
    text = specs.read_text(encoding="utf-8")
    # CAR+ of CD3+ from ≥ 15 % to ≥ 5 %: the 8.9 % DEMO-001's tube now holds (the test above) passes
    edited = re.sub(r"(car_of_cd3:.*?limit: )15\b", r"\g<1>5", text, flags=re.S)
    assert edited != text
    specs.write_text(edited, encoding="utf-8")
    subprocess.run(["touch", "-d", "2020-01-01 00:00", str(specs)], check=True)
    plan = run_snakemake(project_root, hostile, "--dry-run")
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = _planned(plan.stdout)
    assert {("evaluate_lot", "lot=DEMO-002"), ("evaluate_lot", "lot=CONTAM")} <= set(jobs)
    # the specification judges measurements; it does not change them
    assert not [rule for rule, _ in jobs if rule in ("measure_flow_unit", "classify_reads_part")]
    rerun = run_snakemake(project_root, hostile)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    car = next(a for a in release_of(hostile, "DEMO-001")["attributes"] if a["name"] == "car_of_cd3")
    assert (car["result"], car["criterion"]) == ("PASS", "≥ 5 %")
    again = run_snakemake(project_root, hostile, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
