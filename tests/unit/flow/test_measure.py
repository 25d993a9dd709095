"""Measuring a unit: the demo tube against its truth, and every bad input recorded, never raised."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import flowio
import numpy as np
import polars as pl
import pytest

from rapidrelease.flow.measure import measure_tube
from rapidrelease.records import UnitRecord, read_unit_record

PANEL = Path("config/panels/car_t_phenotype.yaml")
DEMO_FCS = Path("resources/demo/DEMO-001/DEMO-001_phenotype.fcs")


@pytest.fixture(autouse=True)
def _in_project(project_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project_root)


def _measure(
    tmp_path: Path, fcs: Path | None, panel: Path | None = PANEL, assay: str = "phenotype"
) -> UnitRecord:
    out = tmp_path / "out"
    record = measure_tube(
        lot_id="LOT-1",
        unit_id="PHENO",
        assay=assay,
        role="test",
        fcs_path=fcs,
        panel_path=panel,
        out_dir=out,
    )
    for name in ("metrics.json", "populations.tsv", "gate_plots.json"):
        assert (out / name).is_file(), f"{name} is always written"
    assert read_unit_record(out / "metrics.json", "measure", "LOT-1", "PHENO") == record
    return record


def _assert_one_sentence_error(record: UnitRecord, *fragments: str) -> None:
    assert record.status == "error"
    assert record.metrics == {}
    message = record.error
    assert "\n" not in message and "Traceback" not in message and message.endswith(".")
    for fragment in fragments:
        assert fragment in message, message


def test_demo_tube_metrics_agree_with_the_simulation_truth(tmp_path: Path, project_root: Path):
    record = _measure(tmp_path, DEMO_FCS)
    assert record.status == "ok", record.error
    truth = pl.read_csv(project_root / "resources/demo/DEMO-001/truth.tsv", separator="\t")
    for row in truth.iter_rows(named=True):
        measured = record.metrics[row["metric"]]
        assert measured.status == "ok"
        tolerance = 0.1 * row["value"] if row["metric"].endswith("ratio") else 1.0  # 1 point, 10 % of a ratio
        assert abs(measured.value - row["value"]) <= tolerance, row["metric"]
    fcs_input = record.inputs[0]
    assert fcs_input.role == "fcs"
    assert fcs_input.sha256 and fcs_input.size_bytes == DEMO_FCS.stat().st_size
    assert record.acquisition is not None and record.acquisition.cytometer == "LSRFortessa"
    populations = pl.read_csv(tmp_path / "out" / "populations.tsv", separator="\t")
    assert populations.filter(pl.col("population") == "Cells/Singlets/Live/CD3pos/CARpos")["count"][0] == (
        record.metrics["car_pct_cd3"].numerator.count
    )
    plots = json.loads((tmp_path / "out" / "gate_plots.json").read_text())["plots"]
    assert [p["gate"] for p in plots][:3] == ["Cells", "Cells/Singlets", "Cells/Singlets/Live"]


def test_missing_fcs_file(tmp_path: Path):
    record = _measure(tmp_path, tmp_path / "absent.fcs")
    _assert_one_sentence_error(record, "absent.fcs: file not found")


def test_truncated_fcs_file(tmp_path: Path):
    truncated = tmp_path / "DEMO-001_phenotype.fcs"
    truncated.write_bytes(DEMO_FCS.read_bytes()[: DEMO_FCS.stat().st_size // 2])
    record = _measure(tmp_path, truncated)
    _assert_one_sentence_error(record, "DEMO-001_phenotype.fcs")
    assert record.inputs[0].sha256, "even an unreadable input is hashed for the audit trail"


def test_a_file_that_is_not_fcs(tmp_path: Path):
    not_fcs = tmp_path / "notes.fcs"
    not_fcs.write_text("sample notes, not list-mode data\n")
    _assert_one_sentence_error(_measure(tmp_path, not_fcs), "notes.fcs")


def test_a_tube_without_a_channel_the_template_needs(tmp_path: Path):
    other = tmp_path / "other_panel.fcs"
    events = np.random.default_rng(0).uniform(0, 1000, size=(500, 3))
    with open(other, "wb") as fh:
        flowio.create_fcs(fh, events.flatten().tolist(), ["FSC-A", "FSC-H", "SSC-A"])
    _assert_one_sentence_error(_measure(tmp_path, other), "other_panel.fcs", "needs channel")


def test_a_tube_with_too_few_events_makes_metrics_insufficient(tmp_path: Path, project_root: Path):
    # keep the first 60 events of the real tube: readable, but no percentage can rest on so few
    from rapidrelease.fcs.reader import read_fcs

    fcs = read_fcs(DEMO_FCS)
    small = tmp_path / "small.fcs"
    with open(small, "wb") as fh:
        flowio.create_fcs(
            fh,
            fcs.events(0, 60).astype(np.float32).flatten().tolist(),
            fcs.pnn_labels,
            opt_channel_names=fcs.pns_labels,
            metadata_dict={"spillover": fcs.keywords["$SPILLOVER"]},
        )
    record = _measure(tmp_path, small)
    assert record.status == "ok"
    assert record.metrics["viability_pct"].status == "insufficient_events"
    assert record.metrics["viability_pct"].value is None


def test_missing_panel_and_wrong_assay(tmp_path: Path):
    _assert_one_sentence_error(_measure(tmp_path, DEMO_FCS, panel=None), "gives no panel")
    _assert_one_sentence_error(
        _measure(tmp_path, DEMO_FCS, panel=tmp_path / "none.yaml"), "none.yaml: file not found"
    )
    _assert_one_sentence_error(
        _measure(tmp_path, DEMO_FCS, assay="potency"),
        "car_t_phenotype.yaml: the panel measures 'phenotype', but unit PHENO of lot LOT-1 "
        "is a 'potency' unit",
    )
    _assert_one_sentence_error(
        _measure(tmp_path, DEMO_FCS, assay="sterility_reads"),
        "'sterility_reads' is not a flow cytometry assay",
    )
    no_path = _measure(tmp_path, None)
    _assert_one_sentence_error(no_path, "gives no FCS file")


def test_a_unit_measured_again_replaces_its_outputs_whole(tmp_path: Path):
    first = _measure(tmp_path, DEMO_FCS)
    broken = tmp_path / "gone.fcs"
    second = _measure(tmp_path, broken)
    assert first.status == "ok" and second.status == "error"
    assert pl.read_csv(tmp_path / "out" / "populations.tsv", separator="\t").height == 0
    assert not list((tmp_path / "out").glob(".*.tmp")), "no temporary file is left behind"
    shutil.rmtree(tmp_path / "out")


def _panel_with_matrix(tmp_path: Path, matrix_csv: Path) -> Path:
    panel = tmp_path / "panel.yaml"
    panel.write_text(PANEL.read_text() + f"compensation: {matrix_csv}\n", encoding="utf-8")
    return panel


def test_a_matrix_file_named_by_the_panel_replaces_the_tubes_spillover(tmp_path: Path):
    from rapidrelease.fcs.reader import read_fcs

    spill = read_fcs(DEMO_FCS).spillover()
    assert spill is not None
    same = tmp_path / "same.csv"
    same.write_text(
        ",".join(spill.detectors)
        + "\n"
        + "\n".join(",".join(format(float(v), ".17g") for v in row) for row in spill.matrix)
        + "\n"
    )
    identity = tmp_path / "identity.csv"
    identity.write_text(
        ",".join(spill.detectors)
        + "\n"
        + "\n".join(",".join(row) for row in np.eye(7).astype(int).astype(str))
    )
    own = _measure(tmp_path / "own", DEMO_FCS)
    from_file = _measure(tmp_path / "file", DEMO_FCS, panel=_panel_with_matrix(tmp_path, same))
    uncorrected = _measure(tmp_path / "none", DEMO_FCS, panel=_panel_with_matrix(tmp_path, identity))

    assert own.evidence["compensation"] == "the tube's own $SPILLOVER"
    assert from_file.evidence["compensation"] == str(same)
    assert {i.role for i in own.inputs} == {"fcs", "panel", "gating template"}
    assert {i.role for i in from_file.inputs} == {"fcs", "panel", "gating template", "compensation"}
    assert from_file.metrics == own.metrics  # the same matrix from a file: the same numbers
    # without compensation FITC (CAR) spills 20 % into PE (CCR7): CAR+ cells look CCR7-brighter
    ccr7_pos = ("cd45ra_pos_ccr7_pos_pct_car", "cd45ra_neg_ccr7_pos_pct_car")
    shift = sum(uncorrected.metrics[m].value - own.metrics[m].value for m in ccr7_pos)
    assert shift > 5.0


def _demo_with(
    tmp_path: Path, name: str, keywords: dict[str, str] | None = None, data=None, tail=b""
) -> Path:
    """The demo tube rewritten as FCS 3.1 with some TEXT keywords or DATA replaced (offsets recomputed)."""
    raw = DEMO_FCS.read_bytes()
    text_start, text_end, data_start, data_end = (int(raw[10 + 8 * i : 18 + 8 * i]) for i in range(4))
    text = raw[text_start : text_end + 1]
    fields = [f.replace(b"\0", b"/").decode() for f in text[1:-1].replace(b"//", b"\0").split(b"/")]
    kw = dict(zip(fields[0::2], fields[1::2], strict=True)) | (keywords or {})
    data = raw[data_start : data_end + 1] if data is None else data
    for _ in range(3):  # the offsets are written in TEXT, so its length settles after a few passes
        body = ("/" + "".join(f"{k}/{v.replace('/', '//')}/" for k, v in kw.items())).encode()
        first = 256 + len(body)
        kw |= {"$BEGINDATA": str(first), "$ENDDATA": str(first + len(data) - 1)}
    header = b"FCS3.1    " + b"".join(
        f"{n:>8}".encode() for n in (256, first - 1, first, first + len(data) - 1)
    )
    path = tmp_path / name
    path.write_bytes(header.ljust(256) + body + data + tail)
    return path


@pytest.mark.parametrize(
    ("keywords", "problem"),
    [
        # a $PAR one short would shift every value into the next channel and still gate plausibly
        (
            {"$PAR": "10"},
            "room for more than $TOT=30000 events of 10 parameters ($PAR), so $TOT or $PAR is wrong",
        ),
        ({"$TOT": "29999"}, "room for more than $TOT=29999 events of 11 parameters"),
        ({"$P11N": "FSC-H"}, "parameters 2 and 11 are both named 'FSC-H' ($PnN)"),
        ({"$BEGINANALYSIS": "1400000", "$ENDANALYSIS": "1400099"}, "is truncated: its ANALYSIS segment ends"),
    ],
    ids=["par-too-few", "tot-too-few", "duplicate-pnn", "analysis-cut-off"],
)
def test_a_tube_the_reader_tolerates_but_a_release_cannot_rest_on(tmp_path: Path, keywords, problem):
    record = _measure(tmp_path, _demo_with(tmp_path, "odd.fcs", keywords))
    _assert_one_sentence_error(record, "odd.fcs: ", problem)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_event_value_makes_the_tube_unmeasurable(tmp_path: Path, value: float):
    # gates compare with NaN as False: without the check such events vanish from every population
    data = bytearray(DEMO_FCS.read_bytes()[2601:1322601])
    data[44 * 7 + 8 : 44 * 7 + 12] = np.float32(value).tobytes()  # event 8, channel 3 (SSC-A)
    record = _measure(tmp_path, _demo_with(tmp_path, "corrupt.fcs", data=bytes(data)))
    _assert_one_sentence_error(record, f"corrupt.fcs: event 8 has the value {value} in channel SSC-A")


def test_a_tube_without_events_names_the_file(tmp_path: Path):
    record = _measure(tmp_path, _demo_with(tmp_path, "empty.fcs", {"$TOT": "0"}, data=b""))
    _assert_one_sentence_error(record, "empty.fcs: holds no events ($TOT is 0)")


def test_the_rewritten_demo_tube_is_measured_as_the_original(tmp_path: Path):
    # the rewriting above changes nothing by itself: each refusal is the edited keyword's doing
    record = _measure(tmp_path, _demo_with(tmp_path, "same.fcs"))
    original = _measure(tmp_path, DEMO_FCS)
    assert record.status == "ok"
    assert record.metrics == original.metrics
