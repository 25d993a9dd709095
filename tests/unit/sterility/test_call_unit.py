"""call_contaminants on gathered units against the default panel's index: every path to an invalid run."""

from __future__ import annotations

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
from rapidrelease.sterility.calls import ReferenceFacts, call_contaminants


def _call(unit: Unit, units: list[Unit], root: Path, index: KmerIndex) -> dict[str, Any]:
    """Call ``unit`` against the other units (its controls), each gathered in ``root/<unit id>``; the
    record as a reviewer reads it, its evidence beside its metrics."""
    controls = [u for u in units if u != unit]
    folders = {u.unit_id: root / u.unit_id for u in units}
    record = call_contaminants(unit, controls, folders, index.folder, DetectionSettings())
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


def _lot(tmp_path: Path, index: KmerIndex, case: str) -> dict[str, Any]:
    """A lot's test unit (with K. pneumoniae when ``case`` says so) and controls; call the test unit."""
    facts = ReferenceFacts.from_index(index)
    units = {
        "T": Unit("L", "T", "sterility_reads", "test", Path("t.fq")),
        "NC1": Unit("L", "NC1", "sterility_reads", "negative_control", Path("nc1.fq")),
        "NC2": Unit("L", "NC2", "sterility_reads", "negative_control", Path("nc2.fq")),
        "PC": Unit("L", "PC", "sterility_reads", "positive_control", Path("pc.fq"), **SPIKE),
    }
    contents = {
        "T": (100 if case == "shallow" else 200_000, {573: 12} if case == "contaminated" else {}),
        "NC1": (50_000, {562: 100} if case == "dirty_control" else {562: 5}),
        "NC2": (50_000, {}),
        "PC": (50_000, {1280: 2} if case == "failed_positive" else {1280: 500}),
    }
    if case == "no_negative":
        del units["NC1"], units["NC2"]
    for unit_id, unit in units.items():
        folder = tmp_path / unit_id
        folder.mkdir()
        if case == "broken_negative" and unit_id == "NC2":
            continue  # its classification never wrote reads.json
        _write_unit(folder, unit, *contents[unit_id], facts)
    return _call(units["T"], list(units.values()), tmp_path, index)


def test_a_valid_clean_run(tmp_path: Path, panel_index: KmerIndex) -> None:
    record = _lot(tmp_path, panel_index, "clean")
    metrics = record["metrics"]
    assert record["validity"] == {"valid": True, "problems": []}
    assert metrics["contaminant_call"]["value"] == "NOT_DETECTED"
    # PC: 500 pairs of 50,000 = 10,000 RPM per 100 CFU/mL; threshold 3 reads -> 6.2958 / 0.2 M / 100
    assert metrics["lod"]["value"] == pytest.approx(6.2958 / 200_000 * 1e6 / 100, rel=1e-4)
    assert metrics["lod"]["unit"] == "CFU/mL" and metrics["lod"]["status"] == "ok"
    # NC1's E. coli (100 RPM) is not in the test: no call at all
    assert record["calls"] == []
    saved = read_unit_record(tmp_path / "T" / "metrics.json")
    assert saved.metrics["contaminant_call"].value == "NOT_DETECTED"
    assert (tmp_path / "T" / "calls.tsv").read_text().startswith("taxid\tname\t")


def test_a_contaminated_sample_names_the_organism(tmp_path: Path, panel_index: KmerIndex) -> None:
    record = _lot(tmp_path, panel_index, "contaminated")
    call = record["metrics"]["contaminant_call"]
    assert (call["value"], call["status"]) == ("DETECTED", "ok")
    assert call["detail"].startswith("Klebsiella pneumoniae: 12 reads, 60.0 RPM, z 60.0 against 2 negative")
    (klebsiella,) = [c for c in record["calls"] if c["call"] == "DETECTED"]
    assert klebsiella["taxid"] == 573
    table = pl.read_csv(tmp_path / "T" / "calls.tsv", separator="\t")
    detected = table.filter(pl.col("call") == "DETECTED").row(0, named=True)
    assert (detected["taxid"], detected["reads"], detected["control_rpm"]) == (573, 12, "0.000,0.000")


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("no_negative", "lot L has no negative control for sterility_reads (shotgun)"),
        ("dirty_control", "negative control NC1 holds Escherichia coli at 2,000 RPM, above the 1,000 RPM "
                          "a valid control allows"),
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
    assert checklist["Pseudomonas aeruginosa"]["lod"] > 100 * record["metrics"]["lod"]["value"]
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
    # the mycoplasma assay does not judge; one shallow clean control: 0 reads in 50,000 fragments
    # bounds its rate at 6 reads in the test's 100,000, so 13 reads are needed (Poisson p < 0.01)
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
    assert record["detection_threshold"]["reads"] == 13  # P(X >= 13 | 6.0) = 0.0087 < 0.01; 12: 0.020
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
    assert call["status"] == "inconclusive"
    assert (
        "negative control NC1 could not be measured (NC1_R1.fq.gz: holds the same reads as unit T"
        in (call["reason"])
    )
    # the copy is no background: K. pneumoniae is still called against the real negative control
    assert [c["name"] for c in record["calls"] if c["call"] == "DETECTED"] == ["Klebsiella pneumoniae"]
