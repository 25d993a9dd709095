"""The reader against every real FCS file we have, flowio and independent truth.

Corpus: every file whose MANIFEST format is FCS under ../shared/data (272 files) and every file in
fcsparser's FlowCytometers test folder (14 files). Expected outcome, recorded in the report:
282 read, 4 refused with one sentence (the BROKEN list below).
"""

from __future__ import annotations

import csv
import datetime as dt
import warnings
from pathlib import Path

import flowio
import numpy as np
import pytest

from rapidrelease.errors import FCSReadError
from rapidrelease.fcs.reader import describe_fcs, read_fcs

# Files no reader can use; each reason can be checked by looking at the bytes.
BROKEN = {
    "fcsparser:corrupted/corrupted.fcs": "10 bytes of text, not FCS",
    "fcsparser:cytek-nl-2000/sample_header.fcs": "HEADER and TEXT only: 2,160,000 DATA bytes promised",
    "shared:fcs/flowkit/noncompliant/data_start_offset_discrepancy_example.fcs": (
        "DATA once saved as UTF-8 text: event bytes replaced by EF BF BD, values lost"
    ),
    "shared:fcs/flowkit/noncompliant/data_stop_offset_discrepancy_example.fcs": (
        "DATA once saved as UTF-8 text: event bytes replaced by EF BF BD, values lost"
    ),
}

# CellQuest writes empty values as doubled delimiters; flowio reads them as escaped delimiters and
# so loses $P6N ('FL1-A'). flowCore's documentation lists these channel names for 0877408774.B08.
CELLQUEST_EMPTY_VALUES = {"0877408774.B08", "0877408774.E07", "0877408774.F06"}
FLOWCORE_B08_CHANNELS = ["FSC-H", "SSC-H", "FL1-H", "FL2-H", "FL3-H", "FL1-A", "FL4-H", "Time"]

MILTENYI_31 = "MiltenyiBiotec/FCS3.1"


def _shared_corpus(shared_data: Path) -> dict[str, Path]:
    corpus = {}
    with open(shared_data / "MANIFEST.tsv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["format"].startswith("FCS"):
                corpus[f"shared:{row['path']}"] = shared_data / row["path"]
    return corpus


def _fcsparser_corpus(fcsparser_cytometers: Path) -> dict[str, Path]:
    return {
        f"fcsparser:{p.relative_to(fcsparser_cytometers).as_posix()}": p
        for p in sorted(fcsparser_cytometers.rglob("*"))
        if p.is_file()
    }


def _flowio_array(path: Path, **options) -> tuple[flowio.FlowData, np.ndarray] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data = flowio.FlowData(path, **options)
            return data, data.as_array(preprocess=True)
        except Exception:
            return None


@pytest.fixture(scope="module")
def corpus(shared_data: Path, fcsparser_cytometers: Path) -> dict[str, Path]:
    return {**_shared_corpus(shared_data), **_fcsparser_corpus(fcsparser_cytometers)}


def test_every_corpus_file_is_read_or_refused_as_documented(corpus):
    read, refused = [], {}
    for label, path in corpus.items():
        try:
            fcs = read_fcs(path)
            events = fcs.events()
        except FCSReadError as exc:
            refused[label] = str(exc)
            continue
        read.append(label)
        assert len(fcs.channels) == int(fcs.keywords["$PAR"]), label
        assert events.shape == (fcs.n_events, len(fcs.channels)), label
        assert events.dtype == np.float64
        assert np.isfinite(events).all(), label
    assert set(refused) == set(BROKEN)
    for label, message in refused.items():
        assert message.startswith(f"{corpus[label].name}: "), message
        assert "\n" not in message and message.endswith(".")
        assert "Error:" not in message, f"the safety net, not a rule, refused {label}: {message}"
    assert (len(corpus), len(read), len(refused)) == (286, 282, 4)


def test_refusals_say_why_in_one_sentence(fcsparser_cytometers):
    with pytest.raises(FCSReadError, match=r"^corrupted\.fcs: is not an FCS file"):
        read_fcs(fcsparser_cytometers / "corrupted" / "corrupted.fcs")
    # The TEXT promises $TOT=20000 events of 27 floats from byte 5912; the file stops at 3931 bytes.
    missing = 5912 + 20000 * 27 * 4 - 3931
    with pytest.raises(
        FCSReadError, match=rf"^sample_header\.fcs: is truncated: .* {missing} bytes short\.$"
    ):
        read_fcs(fcsparser_cytometers / "cytek-nl-2000" / "sample_header.fcs")


def test_events_are_bit_identical_to_flowio_for_every_file_flowio_reads(corpus):
    compared = 0
    for label, path in corpus.items():
        reference = _flowio_array(path)
        if reference is None:
            continue
        data, expected = reference
        fcs = read_fcs(path)
        assert fcs.n_events == data.event_count == expected.shape[0], label
        assert np.array_equal(fcs.events(), expected, equal_nan=True), label
        if path.name in CELLQUEST_EMPTY_VALUES:
            continue
        assert fcs.pnn_labels == data.pnn_labels, label
        assert fcs.pns_labels == data.pns_labels, label
        assert fcs.fluoro_indices == data.fluoro_indices, label
        assert fcs.time_index == data.time_index, label
        compared += 1
    assert compared == 105


def test_cellquest_empty_values_give_the_channel_names_flowcore_reports(shared_data):
    path = shared_data / "fcs" / "flowcore_extdata" / "0877408774.B08"
    fcs = read_fcs(path)
    data, expected = _flowio_array(path)
    assert fcs.pnn_labels == FLOWCORE_B08_CHANNELS
    assert data.pnn_labels == [name for name in FLOWCORE_B08_CHANNELS if name != "FL1-A"]
    assert fcs.keywords["$P3S"] == "" and fcs.keywords["$P6N"] == "FL1-A"
    assert np.array_equal(fcs.events(), expected)
    assert any("empty values as doubled delimiters" in w for w in fcs.warnings)


@pytest.mark.parametrize(
    "relative",
    [
        f"{MILTENYI_31}/EY_2013-07-19_PBS_FCS_3.1_Custom_Add_Well_A1.001.fcs",
        f"{MILTENYI_31}/EY_2013-07-19_PBS_FCS_3.1_Custom_Without_Add_Well_A1.001.fcs",
        f"{MILTENYI_31}/EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs",
        f"{MILTENYI_31}/SG_2014-09-26_Duplicate_Names.fcs",
    ],
)
def test_exclusive_data_end_offset_matches_flowio_ignoring_the_offset_error(fcsparser_cytometers, relative):
    path = fcsparser_cytometers / relative
    assert _flowio_array(path) is None
    data, expected = _flowio_array(path, ignore_offset_error=True)
    fcs = read_fcs(path)
    assert np.array_equal(fcs.events(), expected)
    assert fcs.pnn_labels == data.pnn_labels
    assert fcs.n_events == int(fcs.keywords["$TOT"])
    assert any("one past the last byte" in w for w in fcs.warnings)


def test_test_comp_example_with_off_by_one_matches_flowio(shared_data):
    path = shared_data / "fcs" / "flowkit" / "test_comp_example.fcs"
    _, expected = _flowio_array(path, ignore_offset_error=True)
    fcs = read_fcs(path)
    assert fcs.n_events == 10703
    assert np.array_equal(fcs.events(), expected)


def test_blank_header_offsets_of_a_large_file_read_the_same_events_as_the_original(fcsparser_cytometers):
    # fake_large_fcs is the Fortessa file with its HEADER DATA offsets blanked, the convention for
    # files beyond 99,999,999 bytes; the offsets are then only in $BEGINDATA/$ENDDATA.
    original = fcsparser_cytometers / "Fortessa" / "FCS_3.0_Fortessa_PBS_Specimen_001_A1_A01.fcs"
    large = read_fcs(fcsparser_cytometers / "fake_large_fcs" / "fake_large_fcs.fcs")
    _, expected = _flowio_array(original)
    assert large.warnings == ("$FIL is 'Specimen_001_A1_A01.fcs', not the file name 'fake_large_fcs.fcs'.",)
    assert np.array_equal(large.events(), expected)


def test_coulter_lmd_reads_the_full_resolution_fcs3_data_set_by_default(shared_data):
    path = shared_data / "fcs" / "flowkit" / "multi_dataset_fcs" / "coulter.lmd"
    fcs = read_fcs(path)
    assert (fcs.dataset_index, fcs.n_datasets, fcs.version) == (1, 2, "3.0")
    assert "data set 2 of 2 (FCS 3.0) was read, the highest FCS version" in fcs.warnings[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flowio_sets = flowio.read_multiple_data_sets(path, ignore_offset_error=True)
    binned = read_fcs(path, dataset=0)
    for ours, theirs in ((binned, flowio_sets[0]), (fcs, flowio_sets[1])):
        assert np.array_equal(ours.events(), theirs.as_array())
        assert ours.pnn_labels == theirs.pnn_labels
    # Both data sets hold the same 18,110 events: the FCS 2.0 one is the 20-bit FCS 3.0 values
    # binned to 10 bits (divided by 1024, rounded down) for the scatter and FL1/FL2 channels.
    full = fcs.events(preprocess=False)
    ten_bit = binned.events(preprocess=False)
    for lin, full_name in (("FS Lin", "FS"), ("SS Lin", "SS"), ("FL1 Lin", "FL1"), ("FL2 Lin", "FL2")):
        column = full[:, fcs.pnn_labels.index(full_name)]
        assert np.array_equal(np.floor(column / 1024), ten_bit[:, binned.pnn_labels.index(lin)])


def test_accuri_files_with_stale_channel_keywords_match_flowcore(shared_data):
    """162 BD Accuri C6 files rewritten by flowCore keep $P7N…$P14N of dropped channels.

    flowCore counted each file's events (``events_truth``) and recorded each kept channel's
    range in ``flowCore_$PnRmin``/``flowCore_$PnRmax``; every value must lie within it (the
    maximum as stored, in float32).
    """
    folder = shared_data / "fcs" / "realtime_cont_drinkingwater_sgpi" / "fcs"
    with open(shared_data / "fcs" / "_truth" / "cmp_realtime.tsv", encoding="utf-8") as fh:
        truth = {row["file"]: int(row["events_truth"]) for row in csv.DictReader(fh, delimiter="\t")}
    assert len(truth) == 162
    for name, events_truth in truth.items():
        fcs = read_fcs(folder / name)
        assert fcs.n_events == events_truth, name
        assert fcs.pnn_labels == ["FL1-H", "FL3-H", "SSC-H", "FSC-H", "Time"], name
        assert any("beyond $PAR=5" in w for w in fcs.warnings), name
        events = fcs.events()
        for i in range(5):
            low = float(fcs.keywords[f"FLOWCORE_$P{i + 1}RMIN"])
            high = np.float32(fcs.keywords[f"FLOWCORE_$P{i + 1}RMAX"])
            assert low <= events[:, i].min() and events[:, i].max() <= high, (name, i)


def test_24_bit_cytek_file_matches_flowcal_truth(shared_data):
    """FlowCal's tests (test_io.py) give Data003.fcs (Cytek xP3, 24-bit integers): 25,000 × 8,
    these channels, 10-bit scatter (0…1023), acquisition 19:57:40–20:00:16 on 27 Jul 2015, and
    134.8 s between the first and last event's time ($TIMESTEP 0.1 s)."""
    fcs = read_fcs(shared_data / "fcs" / "flowcal_test" / "Data003.fcs")
    assert [c.bits for c in fcs.channels] == [24] * 8
    assert fcs.pnn_labels == ["TIME", "FSC", "SSC", "FL1", "FL2", "FL3", "FSCW", "FSCA"]
    events = fcs.events()
    assert events.shape == (25000, 8)
    assert events[-1, 0] - events[0, 0] == pytest.approx(134.8)
    raw = fcs.events(preprocess=False)
    assert raw[:, 1:3].min() >= 0 and raw[:, 1:3].max() <= 1023
    acquisition = describe_fcs(fcs)["acquisition"]
    assert (acquisition["start"], acquisition["end"]) == ("2015-07-27T19:57:40", "2015-07-27T20:00:16")


@pytest.mark.parametrize(
    "relative",
    [
        "flowcal_ecoli_beads/FCFiles/min/sample001.fcs",
        "flowcal_ecoli_beads/FCFiles/sample001.fcs",
        "flowcal_ecoli_beads/FCFiles/sample006.fcs",
        "flowcal_test/Data003.fcs",
    ],
)
def test_24_bit_cytek_files_hold_10_bit_values_within_their_acquisition_time(shared_data, relative):
    """FlowCal's readme: these Cytek xP3 files hold 10-bit integer data (in 24-bit words). The time
    channel (× $TIMESTEP 0.1 s) must never decrease and span no longer than $BTIM to $ETIM
    (whole seconds, so + 1 s)."""
    fcs = read_fcs(shared_data / "fcs" / relative)
    raw = fcs.events(preprocess=False)
    assert raw[:, 1:].min() >= 0 and raw[:, 1:].max() <= 1023
    time = fcs.events()[:, fcs.time_index]
    assert np.all(np.diff(time) >= 0)
    acquisition = describe_fcs(fcs)["acquisition"]
    seconds = dt.datetime.fromisoformat(acquisition["end"]) - dt.datetime.fromisoformat(acquisition["start"])
    assert 0 < time[-1] - time[0] <= seconds.total_seconds() + 1


def test_24_bit_cytek_xp5_time_span_agrees_with_btim_etim(fcsparser_cytometers):
    fcs = read_fcs(fcsparser_cytometers / "Cytek_xP5" / "Cytek_xP5.fcs")
    events = fcs.events()
    assert events.shape == (23126, 8)
    # $BTIM 13:22:33 to $ETIM 13:22:52 is 19 s at one-second resolution; the time channel
    # (24-bit counts × $TIMESTEP 0.001 s) must span just under that.
    span = events[-1, 0] - events[0, 0]
    assert 18.0 < span <= 19.0
    assert np.all(np.diff(events[:, 0]) >= 0)
    assert events[:, 1:3].max() <= 1023


def test_flowcal_acquisition_times_of_fcs2_and_float_files(shared_data):
    folder = shared_data / "fcs" / "flowcal_test"
    expected = {
        "Data001.fcs": ("2015-05-19T16:50:29", "2015-05-19T16:51:46"),
        "Data004.fcs": ("2015-05-29T17:10:23", "2015-05-29T17:10:27"),
    }
    for name, (start, end) in expected.items():
        acquisition = describe_fcs(read_fcs(folder / name))["acquisition"]
        assert (acquisition["start"], acquisition["end"]) == (start, end)
