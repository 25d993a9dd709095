"""Contaminant calls, background, LOD and validity on small hand-built units with known answers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rapidrelease.config.run import DetectionSettings, Unit
from rapidrelease.errors import ReadsError
from rapidrelease.reads.taxonomy import Taxonomy
from rapidrelease.records import FileRef, Metric, UnitRecord, record_json
from rapidrelease.sterility.calls import (
    DETECTED,
    NOT_DETECTED,
    ReferenceFacts,
    UnitReads,
    assess_positive_control,
    call_organisms,
    compare_with_controls,
    detection_threshold,
    load_unit_reads,
)

SETTINGS = DetectionSettings()

# a small reference: human, two bacteria of one genus, a mycoplasma, a vector
ROWS = [
    (1, 1, "no rank", "root", ""),
    (9606, 1, "species", "Homo sapiens", "host"),
    (2, 1, "superkingdom", "Bacteria", "bacteria"),
    (570, 2, "genus", "Klebsiella", ""),
    (573, 570, "species", "Klebsiella pneumoniae", ""),
    (1279, 2, "genus", "Staphylococcus", ""),
    (1280, 1279, "species", "Staphylococcus aureus", ""),
    (2093, 2, "genus", "Mycoplasma", "mycoplasma"),
    (2104, 2093, "species", "Mycoplasma pneumoniae", ""),
    (29278, 1, "no rank", "vectors", "vector"),
]
HELD = {9606: 300_000, 573: 1_700_000, 1280: 900_000, 2104: 270_000, 29278: 4_000, 570: 20_000}


@pytest.fixture(scope="module")
def facts() -> ReferenceFacts:
    taxonomy = Taxonomy.from_rows(ROWS)
    per_taxon = np.zeros(len(taxonomy), dtype=np.int64)
    for taxid, held in HELD.items():
        per_taxon[taxonomy.index_of([taxid])[0]] = held
    return ReferenceFacts(taxonomy, taxonomy.clade_sums(per_taxon), 3.0)


def _row(facts: ReferenceFacts, taxid: int, reads: int, *, spread: bool = True, direct: int = 0) -> dict:
    """A taxa.tsv row for ``reads`` read pairs: 40 minimizer occurrences each, as 2 × 150 bp reads
    give; spread over the genome (one distinct minimizer per occurrence) or piled on one region."""
    node = facts.node_of(taxid)
    held = int(facts.held_clade[node])
    occurrences = 40 * reads
    distinct = min(occurrences, held) if spread else min(120, held)
    return {
        "taxid": taxid,
        "name": facts.taxonomy.name[node],
        "rank": facts.taxonomy.rank[node],
        "category": facts.taxonomy.category[node],
        "reads_direct": direct,
        "reads_clade": reads,
        "kmer_hits": 0,
        "kmer_hits_clade": occurrences * 3,
        "distinct_minimizers": 0,
        "distinct_minimizers_clade": distinct,
        "index_minimizers_clade": held,
        "breadth": distinct / held,
    }


def _unit(unit_id: str, role: str, fragments: int, rows: list[dict], **spike: Any) -> UnitReads:
    unit = Unit("LOT-1", unit_id, "sterility_reads", role, Path(f"{unit_id}.fq"), **spike)
    return UnitReads(unit, fragments, {r["taxid"]: r for r in rows})


def test_a_contaminant_above_clean_controls_is_detected_with_its_evidence(facts: ReferenceFacts) -> None:
    test = _unit("T", "test", 200_000, [_row(facts, 9606, 180_000), _row(facts, 573, 6)])
    negatives = [_unit(f"NC{i}", "negative_control", 150_000, [_row(facts, 9606, 140_000)]) for i in (1, 2)]
    (call,) = call_organisms(test, negatives, "sterility_reads", "shotgun", SETTINGS, facts)
    assert (call.name, call.call, call.reads) == ("Klebsiella pneumoniae", DETECTED, 6)
    assert call.rpm == pytest.approx(30.0)
    assert (call.control_rpm, call.control_reads, call.fold) == ((0.0, 0.0), 0, None)
    # 6 reads of 6 in the test, whose share of the 500,000 fragments is 0.4: exact p 0.4^6 = 0.0041,
    # 0.0073 with the libraries' gamma spread (CV 0.3); one taxon tested, so Holm leaves it
    assert call.p_value == pytest.approx(0.007266, rel=1e-3)
    assert call.p_adjusted == call.p_value and call.taxa_tested == 1
    assert call.kmer_ratio == pytest.approx(1.0, abs=0.01)


def test_the_count_test_is_the_exact_conditional_binomial_without_spread(facts: ReferenceFacts) -> None:
    exact = replace(SETTINGS, background_cv=0.0)
    background = compare_with_controls(6, 200_000, [(0, 150_000), (0, 150_000)], exact)
    assert background.p_value == pytest.approx(0.4**6)
    # x | x + c ~ Bin(x + c, N_t / (N_t + N_c)): 9 of 10 reads where a third were expected
    background = compare_with_controls(9, 100_000, [(1, 200_000)], exact)
    assert background.p_value == pytest.approx(10 * (1 / 3) ** 9 * (2 / 3) + (1 / 3) ** 10)
    assert background.fold == pytest.approx(18.0) and background.fold_ok


def test_host_and_vector_reads_are_never_candidates(facts: ReferenceFacts) -> None:
    test = _unit("T", "test", 100_000, [_row(facts, 9606, 99_000), _row(facts, 29278, 900)])
    assert call_organisms(test, [], "sterility_reads", "shotgun", SETTINGS, facts) == []


def test_a_reagent_contaminant_in_one_control_is_pooled_into_the_background(facts: ReferenceFacts) -> None:
    # E. coli-like background: 60 RPM in the test, 150 RPM in NC1, none in NC2 -> pooled 75 RPM
    test = _unit("T", "test", 100_000, [_row(facts, 573, 6)])
    negatives = [
        _unit("NC1", "negative_control", 100_000, [_row(facts, 573, 15)]),
        _unit("NC2", "negative_control", 100_000, []),
    ]
    (call,) = call_organisms(test, negatives, "sterility_reads", "shotgun", SETTINGS, facts)
    assert call.call == NOT_DETECTED
    assert (call.control_reads, call.fold) == (15, pytest.approx(0.8))
    assert call.reason.startswith(
        "not above background: 0.8× the 2 negative controls' RPM (15 reads in 200,000 fragments, 75.0 RPM"
    )


def test_ntcs_at_100_and_100_rpm_do_not_make_104_rpm_a_detection(facts: ReferenceFacts) -> None:
    # issue 17: z = (104 − 100) / max(SD 0, 1) = 4.0 called this DETECTED; the fold is 1.04
    test = _unit("T", "test", 1_000_000, [_row(facts, 573, 104)])
    negatives = [_unit(f"NC{i}", "negative_control", 1_000_000, [_row(facts, 573, 100)]) for i in (1, 2)]
    (call,) = call_organisms(test, negatives, "sterility_reads", "shotgun", SETTINGS, facts)
    assert (call.call, call.fold) == (NOT_DETECTED, pytest.approx(1.04))
    assert call.p_value == pytest.approx(0.451, abs=1e-3)


def test_ntcs_at_800_and_0_rpm_are_pooled_and_the_masked_threshold_is_stated() -> None:
    # issue 17: the SD of 800 and 0 RPM (566) hid anything under ~2,100 RPM, unstated. Pooled, the
    # controls hold 400 RPM of the taxon; the test needs 10x that (4,000 reads of 1 M) and says so
    # (the run's control_background, and that organism's LOD, which a claim covering it judges)
    controls = [(800, 1_000_000), (0, 1_000_000)]
    assert detection_threshold(1_000_000, controls, SETTINGS) == 4000
    assert compare_with_controls(2100, 1_000_000, controls, SETTINGS).fold_ok is False


def test_300_background_taxa_shared_with_the_controls_give_no_detection() -> None:
    # issue 17: 300 reagent taxa at the same rates in the test and two NTCs (gamma spread CV 0.3
    # between libraries, 0.5-50 RPM each): the z rule called about 12 % of taxa per lot; Holm over
    # the 300 taxa tested and the fold floor leave none
    rows = [(1, 1, "no rank", "root", ""), (2, 1, "superkingdom", "Bacteria", "bacteria")]
    rows += [(100 + i, 2, "species", f"Reagentia sp{i}", "") for i in range(300)]
    taxonomy = Taxonomy.from_rows(rows)
    held = np.full(len(taxonomy), 900_000, dtype=np.int64)
    facts = ReferenceFacts(taxonomy, taxonomy.clade_sums(held), 3.0)
    rng = np.random.default_rng(17)
    rates = 10 ** rng.uniform(-0.3, 1.7, 300) / 1e6  # per fragment

    def library(unit_id: str, role: str, fragments: int) -> UnitReads:
        counts = rng.poisson(rates * rng.gamma(1 / 0.09, 0.09, 300) * fragments)
        return _unit(
            unit_id, role, fragments, [_row(facts, 100 + i, int(n)) for i, n in enumerate(counts) if n]
        )

    detected = 0
    for _ in range(20):
        test = library("T", "test", 2_000_000)
        negatives = [library(f"NC{i}", "negative_control", 1_000_000) for i in (1, 2)]
        calls = call_organisms(test, negatives, "sterility_reads", "shotgun", SETTINGS, facts)
        assert len(calls) > 250 and calls[0].taxa_tested == len(calls)
        detected += sum(c.call == DETECTED for c in calls)
    assert detected == 0


def test_one_control_uses_the_same_count_test_and_fold_floor(facts: ReferenceFacts) -> None:
    negative = [_unit("NC1", "negative_control", 100_000, [_row(facts, 573, 2)])]
    # 20 RPM in the control; 100 RPM (5x) is not enough, 400 RPM (20x, p tiny) is
    weak = _unit("T", "test", 100_000, [_row(facts, 573, 10)])
    strong = _unit("T", "test", 100_000, [_row(facts, 573, 40)])
    (weak_call,) = call_organisms(weak, negative, "sterility_reads", "shotgun", SETTINGS, facts)
    (strong_call,) = call_organisms(strong, negative, "sterility_reads", "shotgun", SETTINGS, facts)
    assert (weak_call.call, weak_call.fold) == (NOT_DETECTED, pytest.approx(5.0))
    assert (strong_call.call, strong_call.fold) == (DETECTED, pytest.approx(20.0))
    assert strong_call.p_value < 1e-4
    assert weak_call.reason.startswith("not above background: 5.0× the negative control's RPM")


def test_reads_piled_on_one_region_are_not_an_organism(facts: ReferenceFacts) -> None:
    # 200 pairs hitting the same 120 minimizers: a shared region, not a genome
    test = _unit("T", "test", 100_000, [_row(facts, 1280, 200, spread=False)])
    (call,) = call_organisms(test, [], "sterility_reads", "shotgun", SETTINGS, facts)
    assert call.call == NOT_DETECTED and "pile up" in call.reason
    assert call.kmer_ratio == pytest.approx(120 / 8000, rel=0.01)
    # an amplicon library reads one locus by design: the same reads are a call there
    (amplicon,) = call_organisms(test, [], "sterility_reads", "amplicon", SETTINGS, facts)
    assert amplicon.call == DETECTED and amplicon.kmer_ratio is None


def test_fewer_reads_than_the_minimum_are_not_a_call(facts: ReferenceFacts) -> None:
    test = _unit("T", "test", 100_000, [_row(facts, 573, 2)])
    (call,) = call_organisms(test, [], "sterility_reads", "shotgun", SETTINGS, facts)
    assert (call.call, call.reason) == (NOT_DETECTED, "2 reads, fewer than the 3 a call needs")


def test_unresolved_genus_reads_are_called_at_genus_level(facts: ReferenceFacts) -> None:
    genus = _row(facts, 570, 8, direct=8)
    test = _unit("T", "test", 100_000, [genus])
    (call,) = call_organisms(test, [], "sterility_reads", "shotgun", SETTINGS, facts)
    assert (call.name, call.level, call.reads, call.call) == (
        "Klebsiella",
        "genus (unresolved reads)",
        8,
        DETECTED,
    )


def test_the_mycoplasma_assay_calls_only_mycoplasmas(facts: ReferenceFacts) -> None:
    test = _unit("T", "test", 100_000, [_row(facts, 573, 50), _row(facts, 2104, 20)])
    calls = call_organisms(test, [], "mycoplasma_reads", "shotgun", SETTINGS, facts)
    assert [(c.name, c.call) for c in calls] == [("Mycoplasma pneumoniae", DETECTED)]


def test_detection_threshold_follows_the_controls_depth_and_the_taxa_tested() -> None:
    exact = replace(SETTINGS, background_cv=0.0)
    # one clean control of equal depth: 0.5^r <= 0.01 from r = 7; 9 with the gamma spread
    assert detection_threshold(100_000, [(0, 100_000)], exact) == 7
    assert detection_threshold(100_000, [(0, 100_000)], SETTINGS) == 9
    # two clean 100,000-fragment controls against 200,000: (1/2)^r again, 8 with the spread
    assert detection_threshold(200_000, [(0, 100_000), (0, 100_000)], SETTINGS) == 8
    # a 10 M-fragment test cannot be called on 3 reads against 200,000 clean control fragments:
    # the controls' zero shows nothing below 1/51 of the test's share
    assert detection_threshold(10_000_000, [(0, 100_000), (0, 100_000)], SETTINGS) == 283
    # Holm's first step over 300 taxa asks for p <= 0.01 / 300
    assert detection_threshold(200_000, [(0, 100_000), (0, 100_000)], exact, 300) == 15  # 0.5^15 = 3.1e-5
    assert compare_with_controls(8, 100_000, [(0, 100_000)], SETTINGS).p_value > 0.01


def test_positive_control_sensitivity_and_failure(facts: ReferenceFacts) -> None:
    spike = {"spike_organism": "Staphylococcus aureus", "spike_concentration": 100.0, "spike_unit": "CFU/mL"}
    good = _unit("PC", "positive_control", 100_000, [_row(facts, 1280, 500)], **spike)
    result = assess_positive_control(good, [], "shotgun", SETTINGS, facts)
    assert (result.call, result.taxid, result.problem) == (DETECTED, 1280, None)
    assert result.rpm_per_unit == pytest.approx(50.0)  # 5,000 RPM at 100 CFU/mL
    # the LOD uses the spike's count at its lower 95 % bound, 500 -> 463.8 reads: 46.4 RPM per CFU/mL
    assert result.rpm_per_unit_lower == pytest.approx(46.38, abs=0.01)
    empty = _unit("PC", "positive_control", 100_000, [_row(facts, 9606, 99_000)], **spike)
    failed = assess_positive_control(empty, [], "shotgun", SETTINGS, facts)
    assert failed.rpm_per_unit is None
    assert (
        failed.problem
        == "positive control PC did not detect its spike Staphylococcus aureus (0 reads; no reads)"
    )


def test_spike_organism_by_name_or_taxid(facts: ReferenceFacts) -> None:
    assert facts.resolve("staphylococcus AUREUS") == facts.resolve("1280") == 1280
    with pytest.raises(ReadsError, match="no taxon of that name"):
        facts.resolve("Staphylococcus auerus")
    with pytest.raises(ReadsError, match="no such taxid"):
        facts.resolve("99999999")


@pytest.mark.parametrize(
    ("spike", "fragments", "problem"),
    [
        (
            "Staphylococcus auerus",
            100_000,
            "positive control PC: spike organism 'Staphylococcus auerus': no taxon",
        ),
        ("Staphylococcus aureus", 500, "positive control PC has 500 fragments, fewer than the 2,000 a valid"),
        # the product's own reads as the "spike": every sample holds them, so they show no sensitivity
        (
            "Homo sapiens",
            100_000,
            "positive control PC: its spike Homo sapiens is host in the reference taxonomy, not one of the "
            "organisms the sterility_reads assay detects (bacteria, fungi, mycoplasma)",
        ),
        ("9606", 100_000, "positive control PC: its spike 9606 is host in the reference taxonomy"),
    ],
)
def test_a_positive_control_that_cannot_give_an_lod_says_why(facts, spike, fragments, problem) -> None:
    organism = {"spike_organism": spike, "spike_concentration": 100.0, "spike_unit": "CFU/mL"}
    control = _unit("PC", "positive_control", fragments, [_row(facts, 1280, 100)], **organism)
    result = assess_positive_control(control, [], "shotgun", SETTINGS, facts)
    assert result.rpm_per_unit is None and result.problem.startswith(problem), result.problem


def test_a_name_two_taxa_share_must_be_given_as_a_taxid() -> None:
    taxonomy = Taxonomy.from_rows([*ROWS, (999_999, 1279, "species", "Staphylococcus aureus", "")])
    facts = ReferenceFacts(taxonomy, np.zeros(len(taxonomy), dtype=np.int64), 3.0)
    with pytest.raises(ReadsError, match=r"several taxa have that name \(1280, 999999\); give the taxid"):
        facts.resolve("Staphylococcus aureus")


def _gathered(tmp_path: Path, outputs: tuple[FileRef, ...] = ()) -> str:
    record = UnitRecord(
        "gather", "LOT-1", "NC1", "sterility_reads", "negative_control",
        outputs=outputs, metrics={"fragments_total": Metric(10, "fragments", "count")},
    )  # fmt: skip
    return json.dumps(record_json(record))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "reads.json: file not found"),
        (lambda _: '{"status": "ok", ', "reads.json: is not a complete JSON record"),
        (lambda _: "[1, 2]", "reads.json: is not a JSON object"),
        (lambda _: '{"status": "ok", "metrics": {}}', "reads.json: is not a unit record of version 1"),
        (_gathered, "reads.json: names no taxa table it was written with"),
        (
            lambda folder: _gathered(folder, (FileRef("taxa", str(folder / "taxa.parquet"), "0" * 64, 1),)),
            "taxa.parquet: is not the table",
        ),
    ],
)
def test_a_unreadable_gathered_unit_is_an_error_naming_the_file(tmp_path: Path, content, problem) -> None:
    if content is not None:
        (tmp_path / "reads.json").write_text(content(tmp_path))
    unit = Unit("LOT-1", "NC1", "sterility_reads", "negative_control", Path("nc.fq"))
    loaded = load_unit_reads(unit, tmp_path)
    assert loaded.fragments == 0 and loaded.taxa == {}
    assert loaded.error is not None
    assert loaded.error.startswith(str(tmp_path / problem.split(":")[0])) and problem in loaded.error
