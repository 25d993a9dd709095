"""call_contaminants on gathered units against the default panel's index: every path to an invalid run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from rapidrelease.config.run import DetectionSettings, Unit
from rapidrelease.reads.index import KmerIndex, load_index
from rapidrelease.reads.kraken_outputs import TAXA_COLUMNS, write_taxa
from rapidrelease.records import (
    FileRef,
    Metric,
    UnitRecord,
    file_ref,
    read_unit_record,
    to_json,
    write_record,
)
from rapidrelease.release.call_figures import call_figures
from rapidrelease.stats import lower_bound, mean_detected, organisms_detected
from rapidrelease.sterility.calls import ReferenceFacts, call_contaminants

DEFAULTS = DetectionSettings()


def _call(
    unit: Unit,
    units: list[Unit],
    root: Path,
    index: KmerIndex,
    settings: DetectionSettings = DEFAULTS,
) -> dict[str, Any]:
    """Call ``unit`` against the other units (its controls), each gathered in ``root/<unit id>``; the
    record as a reviewer reads it, its evidence beside its metrics."""
    controls = [u for u in units if u != unit]
    folders = {u.unit_id: root / u.unit_id for u in units}
    record = call_contaminants(unit, controls, folders, index.folder, settings)
    assert read_unit_record(root / unit.unit_id / "metrics.json") == record
    data = to_json(record)
    assert isinstance(data, dict)
    return {**data, **record.evidence}


def _write_unit(
    folder: Path,
    unit: Unit,
    fragments: int,
    reads: dict[int, int],
    facts: ReferenceFacts,
    reads_sha256: str | None = None,
) -> None:
    """A gathered unit (reads.json and taxa) holding ``reads`` pairs per species taxid, spread over
    the genome, and the rest human."""
    reads = {9606: fragments - sum(reads.values()), **reads}
    nodes = [facts.node_of(taxid) for taxid in reads]
    table: dict[str, Any] = {name: [] for name in TAXA_COLUMNS}
    for node, count in zip(nodes, reads.values(), strict=True):
        held = int(facts.held_clade[node])
        distinct = min(40 * count, held)
        values = {
            "taxid": int(facts.taxonomy.taxid[node]),
            "name": facts.taxonomy.name[node],
            "rank": facts.taxonomy.rank[node],
            "category": facts.taxonomy.category[node],
            "reads_direct": count,
            "reads_clade": count,
            "kmer_hits": 120 * count,
            "kmer_hits_clade": 120 * count,
            "distinct_minimizers": distinct,
            "distinct_minimizers_clade": distinct,
            "index_minimizers_clade": held,
            "breadth": distinct / held,
        }
        for name, value in values.items():
            table[name].append(value)
    write_taxa(
        folder / "taxa.tsv", {k: np.array(v, dtype=TAXA_COLUMNS[k]) for k, v in table.items()}, fragments
    )
    # each unit's own read file unless told otherwise (a copy of another unit's)
    sha256 = reads_sha256 or unit.unit_id.ljust(64, "0")
    record = UnitRecord(
        "gather", unit.lot_id, unit.unit_id, unit.assay, unit.role,
        inputs=(FileRef("reads", f"{unit.unit_id}_R1.fq.gz", sha256, 1),),
        outputs=(file_ref(folder / "taxa.parquet", "taxa"),),
        metrics={"fragments_total": Metric(fragments, "fragments", "count")},
    )  # fmt: skip
    write_record(folder / "reads.json", record)


SPIKE = {"spike_organism": "Staphylococcus aureus", "spike_concentration": 100.0, "spike_unit": "CFU/mL"}


def _lot(
    tmp_path: Path,
    index: KmerIndex,
    case: str,
    settings: DetectionSettings = DEFAULTS,
    test_fragments: int = 200_000,
    volume_ul: float | None = None,
) -> dict[str, Any]:
    """A lot's test unit (with K. pneumoniae when ``case`` says so) and controls; call the test unit."""
    facts = ReferenceFacts.from_index(index)
    units = {
        "T": Unit("L", "T", "sterility_reads", "test", Path("t.fq"), volume_ul=volume_ul),
        "NC1": Unit("L", "NC1", "sterility_reads", "negative_control", Path("nc1.fq")),
        "NC2": Unit("L", "NC2", "sterility_reads", "negative_control", Path("nc2.fq")),
        "PC": Unit("L", "PC", "sterility_reads", "positive_control", Path("pc.fq"), **SPIKE),
    }
    contents = {
        "T": (
            100 if case == "shallow" else test_fragments,
            {573: 20} if case in ("contaminated", "contaminated_failed_positive") else {},
        ),
        "NC1": (50_000, {562: 750} if case == "dirty_control" else {562: 5}),
        "NC2": (5_000 if case == "shallow_negative" else 50_000, {}),
        "PC": (50_000, {1280: 2} if case.endswith("failed_positive") else {1280: 500}),
    }
    if case == "no_negative":
        del units["NC1"], units["NC2"]
    for unit_id, unit in units.items():
        folder = tmp_path / unit_id
        folder.mkdir()
        if case == "broken_negative" and unit_id == "NC2":
            continue  # its classification never wrote reads.json
        _write_unit(folder, unit, *contents[unit_id], facts)
    return _call(units["T"], list(units.values()), tmp_path, index, settings)


def test_a_valid_clean_run(tmp_path: Path, panel_index: KmerIndex) -> None:
    record = _lot(tmp_path, panel_index, "clean")
    metrics = record["metrics"]
    assert record["validity"] == {"valid": True, "problems": []}
    assert metrics["contaminant_call"]["value"] == "NOT_DETECTED"
    # the test needs 14 reads against the controls' 0 in 100,000 fragments (p ≤ 0.01 with the
    # libraries' gamma spread of CV 0.3); the PC's 500 reads of 50,000 per 100 CFU/mL count at their
    # lower 95 % bound (463.8): 92.8 RPM per CFU/mL, 18.6 reads per organism in 0.2 M fragments of
    # 1 mL tested
    assert record["detection_threshold"] == {"reads": 14, "rpm": 70.0, "taxa_tested": 1, "alpha": 0.01}
    sensitivity = 1e6 * lower_bound(500) / 50_000 / 100
    assert sensitivity * 0.2 == pytest.approx(18.55, abs=0.01)
    # reads alone (Poisson about 20.7 reads' mean) would claim 1.11 CFU/mL, but 1 mL holds no organism
    # at all at that level in 33 % of samples; sampling then sequencing: 3.32 CFU/mL, above 3.0 / V
    assert 1e6 * mean_detected(14) / 200_000 / sensitivity == pytest.approx(1.114, abs=1e-3)
    predicted = organisms_detected(14, sensitivity * 0.2)
    assert record["lod"]["predicted"] == pytest.approx(predicted) == pytest.approx(3.323, abs=1e-3)
    assert (record["lod"]["basis"], record["sampling"]["tested_volume_ml"]) == ("predicted", 1.0)
    assert record["sampling"]["floor"] == pytest.approx(-math.log(0.05))
    assert metrics["lod"]["value"] == pytest.approx(3.323, abs=1e-3)
    assert metrics["lod"]["unit"] == "CFU/mL" and metrics["lod"]["status"] == "ok"
    assert metrics["lod"]["detail"].startswith("predicted LOD95 3.32 CFU/mL")
    # NC1's E. coli (100 RPM) is not in the test: no call at all
    assert record["calls"] == []
    saved = read_unit_record(tmp_path / "T" / "metrics.json")
    assert saved.metrics["contaminant_call"].value == "NOT_DETECTED"
    assert (tmp_path / "T" / "calls.tsv").read_text().startswith("taxid\tname\t")


def test_a_contaminated_sample_names_the_organism(tmp_path: Path, panel_index: KmerIndex) -> None:
    record = _lot(tmp_path, panel_index, "contaminated")
    call = record["metrics"]["contaminant_call"]
    assert (call["value"], call["status"]) == ("DETECTED", "ok")
    assert call["detail"].startswith(
        "Klebsiella pneumoniae: 20 reads, 100.0 RPM, ∞× the 2 negative controls' RPM (0 reads in 100,000"
    )
    (klebsiella,) = [c for c in record["calls"] if c["call"] == "DETECTED"]
    assert klebsiella["taxid"] == 573 and klebsiella["p_adjusted"] < 0.01
    table = pl.read_csv(tmp_path / "T" / "calls.tsv", separator="\t")
    detected = table.filter(pl.col("call") == "DETECTED").row(0, named=True)
    assert (detected["taxid"], detected["reads"], detected["control_rpm"]) == (573, 20, "0.000,0.000")
    assert (detected["control_reads"], detected["taxa_tested"]) == (0, 1)


def test_a_detection_stays_a_detection_when_the_run_is_invalid(tmp_path: Path, panel_index) -> None:
    # a positive control that missed its spike can explain a miss, never a find (USP <71>, FDA OOS)
    record = _lot(tmp_path, panel_index, "contaminated_failed_positive")
    call = record["metrics"]["contaminant_call"]
    assert (call["value"], call["status"], call["reason"]) == ("DETECTED", "ok", None)
    assert (
        "the run also has validity problems (positive control PC did not detect its spike" in call["detail"]
    )
    assert record["metrics"]["contaminants_detected"]["status"] == "ok"
    assert record["validity"]["valid"] is False
    assert record["metrics"]["lod"]["status"] == "inconclusive"


def test_a_kitome_control_does_not_invalidate_the_run_but_raises_what_it_masks(
    tmp_path: Path, panel_index: KmerIndex
) -> None:
    # NC1's reads are 1.5 % E. coli, 15,000 RPM (kit reagent DNA, Salter 2014): before, over the
    # 1,000 RPM rule, every such run was invalid; now the control is judged by the burden it puts
    # on E. coli alone
    record = _lot(tmp_path, panel_index, "dirty_control")
    assert record["validity"] == {"valid": True, "problems": []}
    (masked,) = record["control_background"]
    # 750 reads in the pooled 100,000 fragments are 1,500 reads at the test's 200,000: E. coli needs
    # 10x that (15,000 reads, 75,000 RPM) before it is a call; every other organism still needs 14
    assert (masked["name"], masked["control_reads"], masked["control_rpm"]) == (
        "Escherichia coli",
        750,
        7500.0,
    )
    assert (masked["expected_test_reads"], masked["threshold_reads"]) == (1500.0, 15000)
    assert masked["threshold_rpm"] == 75_000.0
    assert record["detection_threshold"]["reads"] == 14


def test_a_test_ten_times_deeper_cannot_promise_a_limit_below_the_sampling_floor(
    tmp_path: Path, panel_index: KmerIndex
) -> None:
    # issue 17: a 10 M-read test reported 0.009 CFU/mL; now the controls' depth and the tested volume
    # bound what it can claim
    record = _lot(tmp_path, panel_index, "clean", test_fragments=10_000_000)
    lod = record["metrics"]["lod"]
    # 1 M reads per organism: the sample alone limits it, at 3.0 / V
    assert lod["value"] == pytest.approx(2.996, abs=1e-3) and record["lod"]["basis"] == "predicted"
    # 100,000 control fragments cannot show the absence of 10 M fragments' 3 reads: 564 are needed
    assert record["detection_threshold"]["reads"] == 564
    # 10 mL tested: the floor is 0.3 CFU/mL and the predicted LOD95 shows
    (tmp_path / "10mL").mkdir()
    deep = _lot(tmp_path / "10mL", panel_index, "clean", test_fragments=10_000_000, volume_ul=10_000)
    assert deep["sampling"] == {"tested_volume_ml": 10.0, "floor": pytest.approx(0.2996, abs=1e-4),
                                "unit": "CFU/mL"}  # fmt: skip
    assert deep["lod"]["basis"] == "predicted" and deep["metrics"]["lod"]["value"] > 0.2996
    assert deep["metrics"]["lod"]["detail"].startswith("predicted LOD95")


def test_a_validated_lod_table_replaces_the_prediction(tmp_path: Path, panel_index: KmerIndex) -> None:
    table = tmp_path / "lod95.tsv"
    table.write_text("organism\tlod95_cfu_per_ml\treplicates\nStaphylococcus aureus\t4.5\t20\n1280\t9\t20\n")
    settings = DetectionSettings(lod_table=str(table))
    (tmp_path / "lot").mkdir()
    record = _lot(tmp_path / "lot", panel_index, "clean", settings)
    assert (record["lod"]["value"], record["lod"]["basis"]) == (4.5, "empirical")
    assert record["lod"]["predicted"] == pytest.approx(3.323, abs=1e-3)
    aureus = next(e for e in record["checklist"] if e["organism"] == "Staphylococcus aureus")
    assert (aureus["lod"], aureus["lod_basis"]) == (4.5, "empirical")
    assert any(i["path"] == str(table) for i in record["inputs"])


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("no_negative", "lot L has no negative control for sterility_reads (shotgun)"),
        ("shallow_negative", "negative control NC2 has 5,000 fragments, too few to protect anything: a "
                             "contaminant at the test's detection threshold (24 reads in 200,000 fragments, "
                             "120 RPM) would leave 0.6 reads in it on average, so none there shows nothing; "
                             "this test needs controls of at least 24,965 fragments"),
        ("failed_positive", "positive control PC did not detect its spike Staphylococcus aureus (2 reads; "
                            "2 reads, fewer than the 3 a call needs)"),
        ("shallow", "unit T has 100 fragments, fewer than the 2,000 a valid test needs"),
        ("broken_negative", "negative control NC2 could not be measured ("),
    ],
)  # fmt: skip
def test_an_invalid_run_is_never_a_clean_call(
    tmp_path: Path, panel_index: KmerIndex, case: str, problem: str
):
    record = _lot(tmp_path, panel_index, case)
    call = record["metrics"]["contaminant_call"]
    assert call["status"] == "inconclusive" and problem in call["reason"], call["reason"]
    assert record["validity"]["valid"] is False
    assert any(p.startswith(problem) for p in record["validity"]["problems"])


def test_a_test_unit_that_was_not_classified_is_an_error(tmp_path: Path, panel_index: KmerIndex) -> None:
    unit = Unit("L", "T", "sterility_reads", "test", Path("t.fq"))
    (tmp_path / "T").mkdir()
    failed = UnitRecord(
        "gather", "L", "T", "sterility_reads", "test", status="error", error="t.fq: truncated gzip stream."
    )
    write_record(tmp_path / "T" / "reads.json", failed)
    record = _call(unit, [unit], tmp_path, panel_index)
    assert (record["status"], record["error"], record["metrics"]) == (
        "error",
        "t.fq: truncated gzip stream.",
        {},
    )


def test_a_unit_that_reports_no_fragments_is_an_error_not_an_infinite_rate(
    tmp_path: Path, panel_index
) -> None:
    unit = Unit("L", "T", "sterility_reads", "test", Path("t.fq"))
    (tmp_path / "T").mkdir()
    _write_unit(tmp_path / "T", unit, 0, {}, ReferenceFacts.from_index(panel_index))
    record = _call(unit, [unit], tmp_path, panel_index)
    assert record["status"] == "error"
    assert record["error"].endswith("reads.json: reports 0 fragments, so nothing was read.")


def test_checklist_lists_every_compendial_organism_with_its_own_lod(tmp_path: Path, panel_index) -> None:
    record = _lot(tmp_path, panel_index, "clean")
    checklist = {e["organism"]: e for e in record["checklist"]}
    assert list(checklist) == [
        "Staphylococcus aureus", "Pseudomonas aeruginosa", "Bacillus subtilis", "Clostridium sporogenes",
        "Candida albicans", "Aspergillus brasiliensis",
    ]  # fmt: skip
    assert {e["status"] for e in checklist.values()} == {"NOT_DETECTED"}
    # the spiked organism's LOD is the run's; an organism the panel holds only as rRNA is far less visible
    assert checklist["Staphylococcus aureus"]["lod"] == pytest.approx(
        record["metrics"]["lod"]["value"], rel=0.05
    )
    assert checklist["Pseudomonas aeruginosa"]["predicted_lod"] > 50 * record["lod"]["predicted"]
    assert checklist["Pseudomonas aeruginosa"]["lod_basis"] == "predicted"
    assert checklist["Aspergillus brasiliensis"]["taxid"] == 5061  # known as A. niger in this taxonomy
    assert record["metrics"]["lod_checklist_max"]["value"] == max(e["lod"] for e in checklist.values())


def test_loaded_index_facts_match_the_index(panel_index: KmerIndex) -> None:
    facts = ReferenceFacts.from_index(load_index(panel_index.folder))
    assert facts.kmers_per_minimizer == 3.0  # k 35, l 31: windows of 5 l-mers
    # S. aureus NCTC 8325 (2.82 Mb) in the panel: about one minimizer per 3 bases
    assert 800_000 < facts.held(1280) < 1_000_000
    assert facts.represented(1280) == facts.held(1280)


def test_mycoplasma_assay_reports_the_ph_eur_list_and_calls_only_mycoplasmas(
    tmp_path: Path, panel_index
) -> None:
    facts = ReferenceFacts.from_index(panel_index)
    spike = {"spike_organism": "Mycoplasma orale", "spike_concentration": 10.0, "spike_unit": "CFU/mL"}
    units = [
        Unit("L", "MYCO", "mycoplasma_reads", "test", Path("t.fq")),
        Unit("L", "MYCO-NC", "mycoplasma_reads", "negative_control", Path("nc.fq")),
        Unit("L", "MYCO-PC", "mycoplasma_reads", "positive_control", Path("pc.fq"), **spike),
    ]
    # the test holds M. hyorhinis (a classic cell-culture contaminant) and K. pneumoniae, a bacterium
    # the mycoplasma assay does not judge; one clean control of 50,000 fragments against the test's
    # 100,000: the test's share of the reads under equal rates is 2/3, so the exact binomial test
    # needs 12 reads ((2/3)^12 = 0.0077 ≤ 0.01), and 15 with the libraries' gamma spread of CV 0.3
    contents = [(100_000, {2100: 30, 573: 40}), (50_000, {}), (50_000, {2121: 100})]
    for unit, (fragments, reads) in zip(units, contents, strict=True):
        (tmp_path / unit.unit_id).mkdir()
        _write_unit(tmp_path / unit.unit_id, unit, fragments, reads, facts)
    record = _call(units[0], units, tmp_path, panel_index)
    assert record["validity"] == {"valid": True, "problems": []}
    assert [(c["name"], c["call"]) for c in record["calls"]] == [("Mycoplasma hyorhinis", "DETECTED")]
    checklist = {e["organism"]: e["status"] for e in record["checklist"]}
    assert len(checklist) == 9 and checklist.pop("Mycoplasma hyorhinis") == "DETECTED"
    assert set(checklist.values()) == {"NOT_DETECTED"}
    assert record["metrics"]["contaminant_call"]["value"] == "DETECTED"
    assert record["detection_threshold"]["reads"] == 15
    assert record["lod_by_group"]["unit"] == "CFU/mL" and set(record["lod_by_group"]) == {
        "unit",
        "mycoplasma",
    }


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda folder: (folder / "reads.json").write_text("{}"), "reads.json: is not a unit record"),
        (
            lambda folder: (folder / "taxa.parquet").write_bytes(
                (folder / "taxa.parquet").read_bytes() + b"\0"
            ),
            "taxa.parquet: is not the table",
        ),
    ],
)
def test_gathered_evidence_that_changed_since_it_was_gathered_is_an_error(
    tmp_path: Path, panel_index: KmerIndex, damage: Any, problem: str
) -> None:
    unit = Unit("L", "T", "sterility_reads", "test", Path("t.fq"))
    (tmp_path / "T").mkdir()
    _write_unit(tmp_path / "T", unit, 200_000, {573: 12}, ReferenceFacts.from_index(panel_index))
    damage(tmp_path / "T")
    record = _call(unit, [unit], tmp_path, panel_index)
    assert record["status"] == "error" and problem in record["error"], record["error"]
    assert record["metrics"] == {}


def test_a_sample_listed_as_its_own_negative_control_under_another_name_is_no_control(
    tmp_path: Path, panel_index: KmerIndex
) -> None:
    # K. pneumoniae at 400 RPM, and one "negative control" that is a copy of the sample's own reads
    facts = ReferenceFacts.from_index(panel_index)
    units = [
        Unit("L", "T", "sterility_reads", "test", Path("t.fq")),
        Unit("L", "NC1", "sterility_reads", "negative_control", Path("copy-of-t.fq")),
        Unit("L", "NC2", "sterility_reads", "negative_control", Path("nc2.fq")),
        Unit("L", "PC", "sterility_reads", "positive_control", Path("pc.fq"), **SPIKE),
    ]
    contents = {"T": (200_000, {573: 80}), "NC1": (200_000, {573: 80}), "NC2": (50_000, {}),
                "PC": (50_000, {1280: 500})}  # fmt: skip
    for unit in units:
        (tmp_path / unit.unit_id).mkdir()
        copy = "T".ljust(64, "0") if unit.unit_id == "NC1" else None
        _write_unit(tmp_path / unit.unit_id, unit, *contents[unit.unit_id], facts, reads_sha256=copy)
    record = _call(units[0], units, tmp_path, panel_index)
    call = record["metrics"]["contaminant_call"]
    # the run is invalid, but a detection against the real control stands
    assert (call["value"], call["status"]) == ("DETECTED", "ok")
    assert any(
        p.startswith(
            "negative control NC1 could not be measured (NC1_R1.fq.gz: holds the same reads as unit T"
        )
        for p in record["validity"]["problems"]
    )
    # the copy is no background: K. pneumoniae is still called against the real negative control
    assert [c["name"] for c in record["calls"] if c["call"] == "DETECTED"] == ["Klebsiella pneumoniae"]


# ----------------------------------------------------------------- a test's internal control (spike-in)

SUIS = {"spike_organism": "Streptococcus suis", "spike_concentration": 100.0, "spike_unit": "CFU/mL"}


def _spiked_lot(
    tmp_path: Path,
    index: KmerIndex,
    spike_reads: int,
    contaminant: dict[int, int] | None = None,
    spike: dict[str, Any] = SUIS,
) -> dict[str, Any]:
    """The clean lot of :func:`_lot` whose 200,000-fragment test also holds ``spike_reads`` of its
    internal control (S. suis, a pig pathogen absent from every human cell product, at 100 CFU/mL)."""
    facts = ReferenceFacts.from_index(index)
    units = {
        "T": Unit("L", "T", "sterility_reads", "test", Path("t.fq"), **spike),
        "NC1": Unit("L", "NC1", "sterility_reads", "negative_control", Path("nc1.fq")),
        "NC2": Unit("L", "NC2", "sterility_reads", "negative_control", Path("nc2.fq")),
        "PC": Unit("L", "PC", "sterility_reads", "positive_control", Path("pc.fq"), **SPIKE),
    }
    contents = {
        "T": (
            200_000,
            {1307: spike_reads, **(contaminant or {})} if spike_reads else dict(contaminant or {}),
        ),
        "NC1": (50_000, {562: 5}),
        "NC2": (50_000, {}),
        "PC": (50_000, {1280: 500}),
    }
    for unit_id, unit in units.items():
        (tmp_path / unit_id).mkdir()
        _write_unit(tmp_path / unit_id, unit, *contents[unit_id], facts)
    return _call(units["T"], list(units.values()), tmp_path, index)


def _per_minimizer_recovery(facts: ReferenceFacts, spike_reads: int) -> float:
    """S. suis's RPM per CFU/mL in the 200,000-fragment test over S. aureus's in the positive control
    (500 reads of 50,000 at 100 CFU/mL), each per minimizer the reference holds of one genome."""
    suis = 1e6 * spike_reads / 200_000 / 100 / facts.represented(1307)
    aureus = 1e6 * 500 / 50_000 / 100 / facts.represented(1280)
    return suis / aureus


def test_an_internal_control_sets_the_samples_lod_and_is_never_a_contaminant(
    tmp_path: Path, panel_index: KmerIndex
) -> None:
    facts = ReferenceFacts.from_index(panel_index)
    # S. suis is a bacterium the calls would otherwise test: 400 reads, ∞× the clean controls
    record = _spiked_lot(tmp_path, panel_index, 400)
    metrics = record["metrics"]
    assert record["calls"] == [] and record["validity"] == {"valid": True, "problems": []}
    assert (metrics["contaminant_call"]["value"], metrics["contaminant_call"]["status"]) == (
        "NOT_DETECTED",
        "ok",
    )
    internal = record["internal_control"]
    assert (internal["taxid"], internal["reads"], internal["inhibited"]) == (1307, 400, False)
    # 400 reads in 200,000 fragments at 100 CFU/mL: 20 RPM per CFU/mL, Garwood 95 % 18.1–22.1
    assert internal["rpm_per_unit"] == pytest.approx(20.0)
    assert internal["rpm_per_unit_ci95"] == pytest.approx([18.09, 22.06], abs=0.01)
    recovery = _per_minimizer_recovery(facts, 400)
    assert internal["recovery"] == pytest.approx(recovery)
    assert metrics["spike_recovery"]["value"] == pytest.approx(100 * recovery)
    assert metrics["spike_recovery"]["unit"] == "%" and metrics["spike_recovery"]["status"] == "ok"
    low, high = metrics["spike_recovery"]["ci95"]
    assert low < 100 * recovery < high
    # the LOD of the positive control's S. aureus rests on the sample's own recovery (its 95 % lower
    # bound, scaled to S. aureus's genome share), not on the positive control's in buffer
    sensitivity = 1e6 * lower_bound(400) / 200_000 / 100 * facts.represented(1280) / facts.represented(1307)
    predicted = organisms_detected(14, sensitivity * 0.2)
    assert record["lod"]["predicted"] == pytest.approx(predicted)
    assert metrics["lod"]["value"] == pytest.approx(max(predicted, -math.log(0.05)))
    assert "at the sample's own sensitivity: internal control Streptococcus suis" in metrics["lod"]["detail"]


def test_an_internal_control_below_the_recovery_floor_makes_a_miss_inconclusive(
    tmp_path: Path, panel_index: KmerIndex
) -> None:
    facts = ReferenceFacts.from_index(panel_index)
    reads = 4
    assert _per_minimizer_recovery(facts, reads) < DEFAULTS.min_spike_recovery
    record = _spiked_lot(tmp_path, panel_index, reads)
    call = record["metrics"]["contaminant_call"]
    assert (call["value"], call["status"]) == ("NOT_DETECTED", "inconclusive")
    assert call["reason"].startswith(
        "the sample is inhibited: internal control Streptococcus suis at 100 CFU/mL: 4 reads"
    )
    assert call["reason"].endswith("the sample's matrix inhibits the assay, so a miss in it shows nothing")
    assert record["metrics"]["contaminants_detected"]["status"] == "inconclusive"
    # the run itself is valid: the inhibition is this sample's
    assert record["validity"] == {"valid": True, "problems": []}
    # release.json and the report show the recovery beside the call
    saved = read_unit_record(tmp_path / "T" / "metrics.json")
    figures = call_figures(
        "sterility_reads", saved.metrics, saved.evidence, saved.metrics["contaminant_call"]
    )
    labels = {f.label: f for f in figures}
    assert labels["internal control Streptococcus suis reads"].value == 4
    shown = labels["internal control Streptococcus suis recovery of the positive control's sensitivity"]
    assert shown.unit == "%" and shown.value == pytest.approx(100 * _per_minimizer_recovery(facts, reads))


def test_an_inhibited_sample_keeps_its_detection(tmp_path: Path, panel_index: KmerIndex) -> None:
    record = _spiked_lot(tmp_path, panel_index, 4, contaminant={573: 20})
    call = record["metrics"]["contaminant_call"]
    assert (call["value"], call["status"], call["reason"]) == ("DETECTED", "ok", None)
    assert "; the sample is inhibited: internal control Streptococcus suis" in call["detail"]
    assert call["detail"].endswith("which cannot explain a detection")
    assert [c["taxid"] for c in record["calls"]] == [573]


def test_an_internal_control_with_no_reads_leaves_no_lod(tmp_path: Path, panel_index: KmerIndex) -> None:
    record = _spiked_lot(tmp_path, panel_index, 0)
    metrics = record["metrics"]
    assert record["internal_control"]["recovery"] == 0.0 and record["internal_control"]["inhibited"]
    assert metrics["contaminant_call"]["status"] == "inconclusive"
    assert (metrics["lod"]["value"], metrics["lod"]["status"]) == (None, "inconclusive")
    assert metrics["lod"]["reason"].startswith("the sample is inhibited")


@pytest.mark.parametrize(
    ("organism", "unit", "problem"),
    [
        (
            "Staphylococcus aureus",
            "CFU/mL",
            "test T's internal control Staphylococcus aureus is Staphylococcus aureus, an organism of the "
            "sterility_reads checklist the test must detect",
        ),
        ("9606", "CFU/mL", "test T's internal control 9606 is host in the reference taxonomy"),
        ("Streptococcus suis", "GC/mL", None),
    ],
)
def test_an_internal_control_that_cannot_measure_recovery_says_why(
    tmp_path: Path, panel_index: KmerIndex, organism: str, unit: str, problem: str | None
) -> None:
    spike = {"spike_organism": organism, "spike_concentration": 100.0, "spike_unit": unit}
    record = _spiked_lot(tmp_path, panel_index, 400, spike=spike)
    if problem is not None:
        assert record["status"] == "error" and record["error"].startswith(problem)
        return
    # genome copies cannot be compared with the positive control's CFU: the run says so
    assert record["validity"]["problems"] == [
        "test T's internal control is in GC/mL and its positive controls in CFU/mL, so its recovery "
        "cannot be compared with theirs"
    ]
    assert record["metrics"]["contaminant_call"]["status"] == "inconclusive"


def test_a_second_lot_reads_the_runs_controls_gathered_once_and_never_other_reads(
    tmp_path: Path, panel_index: KmerIndex
) -> None:
    facts = ReferenceFacts.from_index(panel_index)
    gathered = tmp_path / "_measured"
    controls = [
        Unit("L", "NC1", "sterility_reads", "negative_control", Path("NC1_R1.fq.gz")),
        Unit("L", "NC2", "sterility_reads", "negative_control", Path("NC2_R1.fq.gz")),
        Unit("L", "PC", "sterility_reads", "positive_control", Path("PC_R1.fq.gz"), **SPIKE),
    ]
    contents = {"NC1": (50_000, {562: 5}), "NC2": (50_000, {}), "PC": (50_000, {1280: 500})}
    for unit in controls:
        (gathered / unit.unit_id).mkdir(parents=True)
        _write_unit(gathered / unit.unit_id, unit, *contents[unit.unit_id], facts)  # records of lot L
    test = Unit("M", "T", "sterility_reads", "test", Path("T_R1.fq.gz"))
    (gathered / "M-T").mkdir()
    _write_unit(gathered / "M-T", test, 200_000, {}, facts)
    folders = {"T": gathered / "M-T", **{u.unit_id: gathered / u.unit_id for u in controls}}
    mine = [
        Unit("M", u.unit_id, u.assay, u.role, u.path, **(SPIKE if u.role == "positive_control" else {}))
        for u in controls
    ]
    out = tmp_path / "M" / "reads" / "T"
    out.mkdir(parents=True)
    record = call_contaminants(test, mine, folders, panel_index.folder, DEFAULTS, out_dir=out)
    assert read_unit_record(out / "metrics.json", "call", "M", "T") == record
    assert record.evidence["validity"] == {"valid": True, "problems": []}
    assert record.metrics["contaminant_call"].value == "NOT_DETECTED"
    # lot M naming other files for NC1: L's gathered NC1 is no evidence of them
    other = [Unit("M", "NC1", "sterility_reads", "negative_control", Path("other_R1.fq.gz")), *mine[1:]]
    record = call_contaminants(test, other, folders, panel_index.folder, DEFAULTS, out_dir=out)
    assert record.evidence["validity"]["valid"] is False
    assert "is the record of unit NC1 of lot L and other reads, not of unit NC1 of lot M" in str(
        record.evidence["validity"]["problems"]
    )
