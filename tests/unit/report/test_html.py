"""The lot report: decision first, evidence drawn, self-contained, and rendered by a real browser offline."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from markupsafe import escape

from rapidrelease.config.run import RunConfig, load_run_config
from rapidrelease.config.vocabulary import CATEGORIES
from rapidrelease.flow.measure import ControlTube, measure_tube
from rapidrelease.reads.kraken_outputs import write_taxa
from rapidrelease.records import (
    AttributeResult,
    Metric,
    Release,
    ResultCounts,
    StartingMaterial,
    UnitRecord,
    UnitSummary,
    write_record,
)
from rapidrelease.release.decision import evaluate_lot_files
from rapidrelease.report.html import render_lot_report, write_lot_report
from rapidrelease.report.page import plotly_js


def _demo_run(out: Path) -> RunConfig:
    """The demo configuration (read in the project root) with its results in ``out``."""
    return dataclasses.replace(load_run_config(Path("config/config.yaml")), results_dir=out)


def _unit_dirs(run: RunConfig, lot: str) -> dict[str, Path]:
    return {u.unit_id: run.unit_dir(u) for u in run.units_of(lot)}


def _measure(run: RunConfig, lot: str, unit_id: str, fcs: Path, controls: list[ControlTube] = ()) -> None:
    """Measure the demo configuration's unit from ``fcs`` into its results folder."""
    unit = run.unit(lot, unit_id)
    assert unit.template is not None
    measure_tube(
        lot, unit_id, unit.assay, unit.role, fcs, unit.template, run.unit_dir(unit), controls=list(controls)
    )


EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I
)


@pytest.fixture(scope="module")
def reports(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports of DEMO-002 as measured, and of DEMO-001 with its tube missing."""
    out = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project_root)
        run = _demo_run(out)
        made = {}
        for lot, fcs in (
            ("DEMO-002", Path("resources/demo/DEMO-002/DEMO-002_phenotype.fcs")),
            ("DEMO-001", out / "lost.fcs"),
        ):
            _measure(run, lot, "PHENO", fcs)
            _sterility_unit(run.unit_dir(run.unit(lot, "STER")), lot)
            evaluate_lot_files(run, lot, out / lot / "release.json")
            write_lot_report(out / lot / "release.json", _unit_dirs(run, lot), out / lot / "report.html")
            made[lot] = out / lot / "report.html"
    return made


def _sterility_unit(
    folder: Path,
    lot: str,
    role: str = "test",
    metrics: dict[str, Metric] | None = None,
    **evidence: Any,
) -> Path:
    """A sequencing unit as the call stage writes it: 2,500 pairs of host, vector and phiX.

    ``evidence`` and ``metrics`` are what the calls add to it (rapidrelease.sterility.calls).
    """
    fragments = {"host": 2413, "vector": 57, "spike_in": 25, "other": 5}
    counts = {"fragments_total": Metric(2500, "fragments", "count")}
    for category in CATEGORIES:
        share = 100 * fragments.get(category, 0) / 2500
        counts[f"{category}_pct"] = Metric(share, "%", "percent")
    record = UnitRecord(
        "call", lot, folder.name, "sterility_reads", role, evidence=evidence, metrics=counts | (metrics or {})
    )
    write_record(folder / "metrics.json", record)
    taxa = {
        "taxid": np.array([9606, 29278, 10847, 1]),
        "name": np.array(["Homo sapiens", "vectors", "Enterobacteria phage phiX174", "root"], dtype=object),
        "rank": np.array(["species", "no rank", "species", "no rank"], dtype=object),
        "category": np.array(["host", "vector", "spike_in", "other"], dtype=object),
        "reads_direct": np.array([2413, 57, 25, 5]),
        "reads_clade": np.array([2413, 57, 25, 2500]),
        "kmer_hits": np.array([260_000, 6_100, 2_700, 2_836]),
        "kmer_hits_clade": np.array([260_000, 6_100, 2_700, 271_636]),
        "distinct_minimizers": np.array([136_633, 1_973, 1_142, 517]),
        "distinct_minimizers_clade": np.array([136_633, 1_973, 1_142, 140_273]),
        "index_minimizers_clade": np.array([335_814, 3_227, 1_771, 5_964_884]),
        "breadth": np.array([0.40687, 0.6114, 0.64483, 0.02352]),
    }
    write_taxa(folder / "taxa.tsv", taxa, 2500)
    return folder


def _metric(value: Any, unit: str | None, kind: str, reason: str | None = None) -> Metric:
    return Metric(value, unit, kind, "ok" if reason is None else "inconclusive", reason)


_UNCOVERED = (
    "the reference holds no k-mers of Aspergillus brasiliensis, which the sterility_reads checklist "
    "requires, so their absence cannot be shown"
)
_SPIKE = {
    "unit_id": "STER-PC",
    "organism": "Staphylococcus aureus",
    "taxid": 1280,
    "concentration": 100.0,
    "unit": "CFU/mL",
    "reads": 350,
    "rpm": 116666.66666666667,
    "call": "DETECTED",
    "rpm_per_unit": 1166.6666666666667,
    "problem": None,
    "reference_minimizers": 1253333.3,
}


def _call(name: str, taxid: int, reads: int, **fields: Any) -> dict[str, Any]:
    """One entry of metrics.json's calls (asdict of an OrganismCall) of the 2,500-fragment test."""
    return {
        "taxid": taxid,
        "name": name,
        "rank": "species",
        "category": "bacteria",
        "level": "species",
        "reads": reads,
        "rpm": 1e6 * reads / 2500,
        "control_rpm": [0.0],
        "z": None,
    } | fields


def _test_evidence(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What call_unit adds to a shotgun sterility test checked against one negative and one positive control:
    the calls, an invalid run (an uncovered checklist organism), the LOD and the controls."""
    lod = 4.507924732262439  # 3,200 RPM threshold (8 reads) over the spike's 1,166.7 RPM per CFU/mL
    invalid = _UNCOVERED
    detected = [c for c in calls if c["call"] == "DETECTED"]
    evidence = {
        "library": "shotgun",
        "index": None,
        "settings": {"min_reads": 3, "z_threshold": 3.0, "min_fold": 10.0, "min_kmer_ratio": 0.5},
        "lod_by_group": {"unit": "CFU/mL", "bacteria": lod, "fungi": None},
        "validity": {"valid": False, "problems": [_UNCOVERED]},
        "controls": {
            "negative": [{"unit_id": "STER-NC1", "fragments": 2700, "error": None}],
            "positive": [_SPIKE],
        },
        "detection_threshold": {"reads": 8, "rpm": 3200.0},
        "calls": calls,
        "checklist": [
            {
                "organism": "Staphylococcus aureus",
                "strain": "ATCC 6538",
                "group": "bacteria",
                "taxid": 1280,
                "reference_minimizers": 1253333,
                "reference_genome_share": 1.0,
                "reads": 0,
                "lod": lod,
                "lod_unit": "CFU/mL",
                "status": "NOT_DETECTED",
                "reason": "not detected; LOD 4.51 CFU/mL",
            },
            {
                "organism": "Aspergillus brasiliensis",
                "strain": "ATCC 16404",
                "group": "fungi",
                "taxid": 319651,
                "reference_minimizers": 0,
                "reference_genome_share": 0.0,
                "reads": 0,
                "lod": None,
                "lod_unit": "CFU/mL",
                "status": "NOT_COVERED",
                "reason": "the reference holds no k-mers of it, so its absence cannot be shown "
                "(ATCC 16404 was Aspergillus niger until 2007)",
            },
        ],
    }
    metrics = {
        "contaminant_call": _metric("DETECTED" if detected else "NOT_DETECTED", None, "category", invalid),
        "contaminants_detected": _metric(len(detected), "organisms", "count", invalid),
        "detection_threshold_reads": _metric(8, "reads", "count"),
        "lod": _metric(lod, "CFU/mL", "concentration", invalid),
        "lod_checklist_max": _metric(None, "CFU/mL", "concentration", invalid),
    }
    return {"metrics": metrics, **evidence}


_KLEBSIELLA = _call(
    "Klebsiella pneumoniae",
    573,
    40,
    distinct_minimizers=5321,
    breadth=0.00412,
    kmer_ratio=0.968,
    fold=None,
    p_value=4.337467117088868e-32,
    call="DETECTED",
    reason="∞× the negative control's RPM (needs 10×), Poisson p 4.3e-32",
)
_PILE_UP = _call(
    "Cutibacterium acnes",
    1747,
    60,
    distinct_minimizers=41,
    breadth=0.00002,
    kmer_ratio=0.0321,
    fold=None,
    p_value=1.1e-47,
    call="NOT_DETECTED",
    reason="reads pile up on 3.2 % of the distinct minimizers expected of an organism (needs 50 %): "
    "shared or low-complexity sequence",
)


def _lot_with_controls(out: Path, project_root: Path, calls: list[dict[str, Any]]) -> str:
    """DEMO-001's sequencing units with call_unit's evidence, evaluated and rendered; the page."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project_root)
        run = _demo_run(out)
    units = out / "DEMO-001" / "reads"
    folders = [
        _sterility_unit(units / "STER", "DEMO-001", **_test_evidence(calls)),
        _sterility_unit(
            units / "STER-NC1",
            "DEMO-001",
            "negative_control",
            {"max_contaminant_rpm": _metric(370.37037037037035, "RPM", "rate")},
            library="shotgun",
        ),
        _sterility_unit(
            units / "STER-PC",
            "DEMO-001",
            "positive_control",
            {
                "spike_call": _metric("DETECTED", None, "category"),
                "spike_rpm_per_unit": _metric(_SPIKE["rpm_per_unit"], "RPM per CFU/mL", "sensitivity"),
            },
            library="shotgun",
            spike=_SPIKE,
        ),
    ]
    assert [f.parent for f in folders] == [run.unit_dir(run.unit("DEMO-001", "STER")).parent] * 3
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project_root)
        evaluate_lot_files(run, "DEMO-001", out / "release.json")
    write_lot_report(out / "release.json", _unit_dirs(run, "DEMO-001"), out / "report.html")
    return (out / "report.html").read_text(encoding="utf-8")


def _section(page: str, unit_id: str) -> str:
    start = page.index(f"<h2>Unit {unit_id} ·")
    end = page.find("<h2>", start + 1)
    return page[start : end if end >= 0 else None]


def test_a_sterility_test_shows_its_call_validity_lod_calls_checklist_and_controls(
    project_root: Path, tmp_path: Path
):
    page = _lot_with_controls(tmp_path, project_root, [_PILE_UP, _KLEBSIELLA])
    section = _section(page, "STER")
    assert "<b>Contaminant call: DETECTED</b>" in section
    assert "The assay is not valid:" in section
    assert f"<li>{escape(_UNCOVERED)}</li>" in section
    assert (
        "Limit of detection (95 %): 4.51 CFU/mL for the spiked organism; least sensitive checklist "
        "organism: unknown; detection threshold 8 reads (3200 RPM)"
    ) in section
    calls = section[section.index("<h3>Contaminant calls</h3>") : section.index("<h3>Checklist")]
    # the detected organism leads, though the pile-up has more RPM
    assert calls.index("Klebsiella pneumoniae") < calls.index("Cutibacterium acnes")
    assert "<td class='num'>16000</td>" in calls and "<td class='num'>∞× · p 4.34e-32</td>" in calls
    assert "<b>DETECTED</b>" in calls and "NOT_DETECTED" in calls
    # the bars: test RPM beside the controls' mean, with the threshold line
    bars = section[section.index('id="unit-STER-calls"') : section.index("<h3>Contaminant calls</h3>")]
    assert (
        "Contaminant reads against the negative controls" in bars and "detection threshold 3200 RPM" in bars
    )
    assert escape("∞× the negative control's RPM (needs 10×), Poisson p 4.3e-32") in calls
    checklist = section[section.index("<h3>Checklist") : section.index("<h3>Controls</h3>")]
    assert checklist.index("Staphylococcus aureus") < checklist.index("Aspergillus brasiliensis")
    assert "<b>NOT_DETECTED</b>" in checklist and "<b>NOT_COVERED</b>" in checklist
    assert "<td class='num'>4.51 CFU/mL</td><td class='num'>100</td>" in checklist
    controls = section[section.index("<h3>Controls</h3>") :]
    assert "<td>STER-NC1</td><td class='num'>2,700</td><td>—</td>" in controls
    assert "<td class='num'>100 CFU/mL</td><td class='num'>350</td>" in controls
    assert "1170 RPM per CFU/mL" in controls
    # every block sits before the read classification the unit already showed
    assert section.index("Contaminant call") < section.index("Read classification")
    negative = _section(page, "STER-NC1")
    assert "in this negative control: <b>370 RPM</b>" in negative
    positive = _section(page, "STER-PC")
    assert "<h3>Spike</h3>" in positive and "<td>Staphylococcus aureus</td>" in positive


def test_an_organism_name_is_text_never_markup(project_root: Path, tmp_path: Path):
    hostile = _KLEBSIELLA | {"name": "<script>alert('x')</script> pneumoniae"}
    page = _lot_with_controls(tmp_path, project_root, [hostile])
    assert "<script>alert(" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; pneumoniae" in page


def test_a_sequencing_unit_without_call_evidence_shows_none(reports: dict[str, Path]):
    section = _section(reports["DEMO-002"].read_text(encoding="utf-8"), "STER")
    assert "Read classification" in section
    assert "Contaminant call" not in section and "Checklist organisms" not in section


def test_decision_comes_first_and_failures_lead_the_attribute_table(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    assert "<div class='status'>Not releasable</div>" in page
    assert page.index("Not releasable") < page.index("Quality attributes")
    table = page[page.index("Quality attributes") :]
    assert table.index("car_of_cd3") < table.index("<b>viability</b>") < table.index("cd4_cd8_ratio")
    assert "8.9 % &lt; 15 %" in page  # reason text is escaped, never markup
    assert page.count("class='gate-plot' id='unit-PHENO-gate-") == 7  # one plot per gate of the demo template
    # whole-file counts on the CAR+ gate plot
    assert "<tspan font-weight='700'>CARpos</tspan> 1,807 / 20,262 (8.9 %)" in page


def test_a_unit_that_could_not_be_measured_is_shown_with_its_sentence(reports: dict[str, Path]):
    page = reports["DEMO-001"].read_text(encoding="utf-8")
    assert "<div class='status'>Inconclusive</div>" in page
    assert "<b>Not measured.</b>" in page and "lost.fcs: file not found." in page
    assert "class='gate-plot' id='unit-PHENO-gate-" not in page


def test_a_sequencing_unit_shows_fragments_by_category_and_the_taxa_found(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    section = page[page.index("Unit STER") :]
    assert "2,500 fragments (a read pair counts once)" in section
    assert "<tr><td>host</td><td class='num'>2,413</td><td class='num'>96.520</td></tr>" in section
    assert "<tr><td>bacteria</td><td class='num'>0</td><td class='num'>0.000</td></tr>" in section
    taxa = section[section.index("Taxon (top 15") :]
    # ordered by fragments called to the taxon itself; breadth as a percentage of the clade's minimizers
    assert taxa.index("Homo sapiens") < taxa.index("vectors") < taxa.index("phiX174") < taxa.index("root")
    assert "<td class='num'>136,633</td><td class='num'>40.687</td>" in taxa


def test_the_report_is_one_self_contained_file(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert page.count(plotly_js()[:200]) == 1, "plotly.js is embedded exactly once"


@pytest.fixture(scope="module")
def flow_evidence(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """DEMO-001's potency pair and microbial tubes measured, evaluated and reported."""
    out = tmp_path_factory.mktemp("flow_report")
    demo = Path("resources/demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project_root)
        run = _demo_run(out)
        stimulated = demo / "DEMO-001/DEMO-001_potency_stimulated.fcs"
        unstimulated = demo / "DEMO-001/DEMO-001_potency_unstimulated.fcs"
        medium = demo / "FLOW-RUN-01/FLOW-RUN-01_medium.fcs"
        measured = {
            "POT-STIM": (stimulated, [ControlTube("POT-UNSTIM", "unstimulated", unstimulated)]),
            "POT-UNSTIM": (unstimulated, []),
            "MICRO": (demo / "DEMO-001/DEMO-001_microbial.fcs",
                      [ControlTube("MICRO-NC", "negative_control", medium)]),
            "MICRO-NC": (medium, []),
        }  # fmt: skip
        for unit, (fcs, controls) in measured.items():
            _measure(run, "DEMO-001", unit, fcs, controls)
        evaluate_lot_files(run, "DEMO-001", out / "release.json")
        write_lot_report(out / "release.json", _unit_dirs(run, "DEMO-001"), out / "report.html")
    return (out / "report.html").read_text(encoding="utf-8")


def test_potency_is_shown_against_its_unstimulated_control(flow_evidence: str):
    section = _section(flow_evidence, "POT-STIM")
    thresholds = section[section.index("Positivity thresholds derived from controls") :]
    assert thresholds.count("unstimulated POT-UNSTIM") == 4
    table = section[section.index("Potency against the unstimulated control") :]
    # gross and background with the events behind them, then the net with its interval
    row = table[table.index("<b>ifng_pct_car</b>") : table.index("</tr>", table.index("<b>ifng_pct_car</b>"))]
    assert re.search(r"25\.\d % \(2,\d{3} / 8,362\)", row) and "0.495 % (41 / 8,283) · POT-UNSTIM" in row
    assert "unit-POT-STIM-potency" in section  # the bar chart of stimulated vs unstimulated
    # the unstimulated tube is the background itself: it shows its thresholds, no net values
    own = _section(flow_evidence, "POT-UNSTIM")
    assert "Positivity thresholds derived from controls" in own
    assert "Potency against the unstimulated control" not in own


def test_microbial_detection_is_shown_against_the_sterile_medium_with_its_lod(flow_evidence: str):
    section = _section(flow_evidence, "MICRO")
    assert "<b>Microbial call: NOT_DETECTED</b>" in section
    assert "<td>negative control MICRO-NC</td><td class='num'>1</td><td class='num'>0.025</td>" in section
    # 4 test events against the medium's 1 in the same volume: P(Bin(5, ½) ≥ 4) = 6/32; against one
    # medium event, 10 test events are needed at α = 0.01 (12/2048 = 0.0059; 9 give 11/1024 = 0.0107)
    assert (
        "p = 0.188 against α = 0.01; detected from 10 events. Limit of detection (detected with 95 % "
        in section
    )
    assert "unit-MICRO-microbial" in section
    assert "Microbial call" not in _section(flow_evidence, "MICRO-NC")


def test_single_stain_spillover_and_starting_material_are_shown(
    tmp_path: Path,
    make_release: Callable[..., Release],
    make_attribute: Callable[..., AttributeResult],
):
    matrix = {
        "population": "Cells",
        "positive_fraction": 0.05,
        "applied": False,
        "controls": [{"unit_id": "UNST", "stain": "unstained", "events": 20000, "positive_events": None}],
        "detectors": ["FITC-A", "PE-A"],
        "matrix": [[1.0, 0.2], [0.04, 1.0]],
        "check_against_file": {
            "max_abs_difference": 0.1,
            "emitter": "FITC-A",
            "receiver": "PE-A",
            "detectors": 2,
        },
        "problem": None,
    }
    record = UnitRecord("measure", "L", "PHENO", "phenotype", "test", evidence={"single_stains": matrix})
    write_record(tmp_path / "PHENO" / "metrics.json", record)
    viability = make_attribute(
        "viability", 72.0, "FAIL", metric="viability_pct", criterion="≥ 80 %", reason="72.0 % < 80 %."
    )
    starting = StartingMaterial(
        "APHERESIS",
        "",
        "NOT_ACCEPTED",
        "viability of the starting material fails.",
        ResultCounts.of((viability,)),
        (viability,),
    )
    release = make_release(
        "L",
        "NOT_RELEASABLE",
        status_reason="The lot is not releasable.",
        starting_material=starting,
        units=(UnitSummary("PHENO", "phenotype", "test", None, "ok", None, (), None),),
    )
    page = render_lot_report(release, {"PHENO": tmp_path / "PHENO"})
    assert "<h2>Starting material · specification APHERESIS</h2>" in page
    assert "<span class='result FAIL'>NOT_ACCEPTED</span>" in page
    assert "72.0 % &lt; 80 %." in page
    spill = page[page.index("Spillover from the lot's single-stain controls") :]
    assert "<td class='num' style='background:rgba(46,134,171,0.12)'>0.2000</td>" in spill
    assert "is not applied to this tube" in spill and "largest difference is 0.1 (FITC-A into PE-A)" in spill


def test_the_24_hour_window_states_the_time_left_or_the_overrun(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    window = page[page.index("<h2>24-hour window</h2>") : page.index("<h2>Unit ")]
    # the demo lot was collected on 2026-11-25 and is evaluated now, long after its deadline
    assert "Collected 2026-11-25T08:10:00.000Z" in window
    assert "deadline overrun by " in window and "(2026-11-26T08:10:00.000Z)" in window
    assert 'id="timeline"' in window
    # the phenotype tube on the cytometer's clock ($BTIM 10:07:45 at the +01:00 site)
    assert "<td><code>PHENO</code></td><td>2026-11-25T09:07:45.000Z</td>" in window
    assert "FCS keywords" in window


def test_the_audit_block_lists_every_data_file_with_size_and_hash(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    audit = page[page.index("<h2>Audit</h2>") :]
    fcs = Path("resources/demo/DEMO-002/DEMO-002_phenotype.fcs")
    digest = hashlib.sha256((Path(__file__).parents[3] / fcs).read_bytes()).hexdigest()
    size = (Path(__file__).parents[3] / fcs).stat().st_size
    row = f"<td>PHENO</td><td><code>{fcs}</code></td><td class='num'>{size:,}</td>"
    assert f"{row}<td class='hash'>{digest}</td>" in audit
    assert "<th>Workflow commit</th>" in audit


def test_a_tube_changed_after_the_decision_shows_no_decision_in_the_report(
    project_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    tube = tmp_path / "DEMO-002_phenotype.fcs"
    shutil.copyfile(project_root / "resources/demo/DEMO-002/DEMO-002_phenotype.fcs", tube)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project_root)
        run = _demo_run(tmp_path)
        _measure(run, "DEMO-002", "PHENO", tube)
        evaluate_lot_files(run, "DEMO-002", tmp_path / "release.json")
        with open(tube, "ab") as fh:  # a copy step rewrote the tube after release.json was written
            fh.write(b"\0")
        write_lot_report(tmp_path / "release.json", _unit_dirs(run, "DEMO-002"), tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<div class='banner INCONCLUSIVE'><div class='status'>Inconclusive</div>" in page
    assert (
        f"An input changed after release.json was written, so this report shows no decision: {tube}: changed"
        in page
    )
    assert f"{tube}: changed after it was measured" in capsys.readouterr().err


def test_a_unit_record_edited_after_the_decision_shows_no_decision_and_why_its_evidence_is_not_shown(
    project_root: Path, tmp_path: Path
):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project_root)
        run = _demo_run(tmp_path)
        _measure(run, "DEMO-002", "PHENO", Path("resources/demo/DEMO-002/DEMO-002_phenotype.fcs"))
        evaluate_lot_files(run, "DEMO-002", tmp_path / "release.json")
        record = run.unit_dir(run.unit("DEMO-002", "PHENO")) / "metrics.json"
        record.write_text(record.read_text(encoding="utf-8").replace('"LSRFortessa"', '"Aurora"'), "utf-8")
        write_lot_report(tmp_path / "release.json", _unit_dirs(run, "DEMO-002"), tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<div class='banner INCONCLUSIVE'><div class='status'>Inconclusive</div>" in page
    assert f"{record}: changed after it was measured" in page
    section = _section(page, "PHENO")
    assert "<b>Evidence not shown.</b>" in section and "its content does not match its seal" in section
    assert "class='gate-plot' id='unit-PHENO-gate-" not in section
