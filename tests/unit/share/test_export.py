"""What an export shares: platforms from closed vocabularies, reasons as categories, organisms from
the taxonomy only, groups below K suppressed, lot ids as keyed hashes."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from rapidrelease.errors import ShareError
from rapidrelease.records import AttributeEvidence
from rapidrelease.share.export import (
    UNSPECIFIED,
    ExportSettings,
    build_tables,
    detected_organisms,
    iso_week,
    keyed_id,
    measured_value,
    platform_of,
    read_key_file,
    reason_category,
)

from support.releases import DEMO_001_VIABILITY

KEY = b"site secret key, never shared"


def test_platform_takes_only_the_lot_schemas_vocabulary():
    cells = {
        "cell_type": "T cell",
        "vector": "lentiviral",
        "costim_domain": "4-1BB",
        "process_days": "6.6",
        "manufacturing_mode": "central",
    }
    assert platform_of(cells) == ("T cell", "lentiviral", "4-1BB", "7", "central")
    # free text (here a product's construct name) never becomes a platform value
    leaky = {**cells, "vector": "pLV-ACME-CD19 lot 42", "process_days": "90"}
    assert platform_of(leaky) == ("T cell", UNSPECIFIED, "4-1BB", UNSPECIFIED, "central")
    assert platform_of({}) == (UNSPECIFIED,) * 5


def test_reasons_are_categories_from_the_structured_fields(archive_lots):
    _, releases = archive_lots
    by_lot = {r.lot.lot_id: {a.name: a for a in r.attributes} for r in releases}
    assert reason_category(by_lot["HIST-001"]["viability"]) == "pass"
    # HIST-014: viability 66.0 % against ≥ 70 %
    assert reason_category(by_lot["HIST-014"]["viability"]) == "below_limit"
    # HIST-017: dose 1.02×10⁷ cells/kg outside 1.0×10⁶–1.0×10⁷
    assert reason_category(by_lot["HIST-017"]["dose_per_kg"]) == "outside_range"
    assert reason_category(by_lot["HIST-019"]["sterility"]) == "detected"
    # HIST-011: the LOD of 12.4 CFU/mL made the sterility assay invalid: judged, then overruled
    assert reason_category(by_lot["HIST-011"]["sterility"]) == "assay_invalid"
    unmeasured = dataclasses.replace(
        DEMO_001_VIABILITY,
        result="INCONCLUSIVE",
        value=None,
        evidence=AttributeEvidence("PHENO", "insufficient_events", None, None, None, None),
    )
    assert reason_category(unmeasured) == "insufficient_events"
    assert measured_value(unmeasured) is None


def test_organisms_are_shared_by_taxonomy_name_only(archive_lots):
    _, releases = archive_lots
    sterility = next(a for a in releases[18].attributes if a.name == "sterility")
    assert releases[18].lot.lot_id == "HIST-019"
    allowed = frozenset({"Staphylococcus", "Staphylococcus epidermidis", "Escherichia coli"})
    assert detected_organisms(sterility, allowed) == ("Staphylococcus epidermidis",)
    # a name the taxonomy does not hold is never copied out of the reason's text
    assert detected_organisms(sterility, frozenset({"Escherichia coli"})) == ()
    passed = next(a for a in releases[0].attributes if a.name == "sterility")
    assert detected_organisms(passed, allowed) == ()


def test_groups_below_k_lots_are_suppressed(archive_lots):
    lots, _ = archive_lots
    # the 24 archived lots share one (unspecified) platform: 10 shared attributes and the time to result
    tables, stated = build_tables(lots, ExportSettings(min_lots=25))
    assert tables["summaries"].height == 0 and tables["reasons"].height == 0
    assert stated["suppressed_groups"] == 11
    tables, stated = build_tables(lots, ExportSettings(min_lots=24))
    assert stated["suppressed_groups"] == 0
    viability = tables["summaries"].filter(attribute="viability").row(0, named=True)
    values = [measured_value(a) for lot in lots for a, _ in lot.attributes if a.name == "viability"]
    assert (viability["n_lots"], viability["n_pass"], viability["n_fail"]) == (24, 23, 1)
    assert viability["mean"] == pytest.approx(statistics.fmean(values))
    assert viability["sd"] == pytest.approx(statistics.stdev(values))
    assert viability["q50"] == pytest.approx(statistics.median(values))
    reasons = tables["reasons"].filter(attribute="viability").select("result", "category", "lots").rows()
    assert sorted(reasons) == [("FAIL", "below_limit", 1), ("PASS", "pass", 23)]


def test_lot_rows_carry_keyed_ids_and_iso_weeks_only(archive_lots):
    lots, _ = archive_lots
    tables, _ = build_tables(lots, ExportSettings(min_lots=5, lot_rows=True, key=KEY))
    rows = tables["lots"]
    assert set(rows["lot_key"]) == {keyed_id(KEY, lot.lot_id) for lot in lots}
    assert not any(key.startswith("HIST") for key in rows["lot_key"])
    assert keyed_id(KEY, "HIST-001") != keyed_id(b"another site's key.....", "HIST-001")
    # HIST-001 was collected on Monday 4 May 2026, ISO week 19
    assert iso_week("2026-05-04T08:44:00+02:00") == "2026-W19"
    assert set(rows["collected_week"]) <= {f"2026-W{w:02d}" for w in range(1, 54)}
    assert set(rows["hours_to_result"].drop_nulls()) <= {float(h) for h in range(0, 73)}


def test_lot_rows_need_a_key_and_no_budget(archive_lots):
    lots, _ = archive_lots
    with pytest.raises(ShareError, match="secret key"):
        build_tables(lots, ExportSettings(lot_rows=True))
    with pytest.raises(ShareError, match="privacy budget"):
        build_tables(lots, ExportSettings(lot_rows=True, key=KEY, epsilon=1.0))


def test_a_key_file_too_short_or_missing_is_refused_naming_it(tmp_path):
    key = tmp_path / "share.key"
    # 15 bytes with a newline an editor added: too short for a 128-bit keyed hash
    key.write_bytes(b"0123456789abcde\n")
    with pytest.raises(ShareError, match=rf"^{key}: holds fewer than 16 bytes, too short a secret key\.$"):
        read_key_file(key)
    with pytest.raises(ShareError, match=rf"^{tmp_path / 'none.key'}: the key file cannot be read \("):
        read_key_file(tmp_path / "none.key")
    key.write_bytes(b"  0123456789abcdef\n")
    assert read_key_file(key) == b"0123456789abcdef"
