"""Edge cases of rapidrelease.fcs.reader, mostly real events re-encoded into files written in tmp_path.

The real files come from fcsparser's test data (always installed with the test extras):
Sample_Well_A02.fcs (BD FACSCalibur HTS, FCS 2.0, 16-bit big-endian integers, 4-decade log
channels), the Fortessa file (FCS 3.0 big-endian floats, time channel with $PnG) and
cyflow_cube_8.fcs (FCS 3.0 little-endian 8/16/32-bit mix).
"""

from __future__ import annotations

import itertools
import json
import os
import warnings
from pathlib import Path

import flowio
import numpy as np
import pytest

from rapidrelease.errors import FCSReadError
from rapidrelease.fcs.reader import FCSFile, describe_fcs, read_fcs

OFFSET_KEYWORDS = ("$BEGINDATA", "$ENDDATA", "$BEGINSTEXT", "$ENDSTEXT", "$BEGINANALYSIS", "$ENDANALYSIS")


@pytest.fixture(scope="module")
def calibur(fcsparser_cytometers) -> FCSFile:
    return read_fcs(fcsparser_cytometers / "FACSCaliburHTS" / "Sample_Well_A02.fcs")


@pytest.fixture(scope="module")
def fortessa(fcsparser_cytometers) -> FCSFile:
    return read_fcs(fcsparser_cytometers / "Fortessa" / "FCS_3.0_Fortessa_PBS_Specimen_001_A1_A01.fcs")


@pytest.fixture(scope="module")
def cyflow(fcsparser_cytometers) -> FCSFile:
    return read_fcs(fcsparser_cytometers / "cyflow_cube_8" / "cyflow_cube_8.fcs")


def _keywords(fcs: FCSFile, **changes: str) -> dict[str, str]:
    """The file's keywords without segment offsets (the writer sets them), with ``changes``."""
    keywords = {k: v for k, v in fcs.keywords.items() if k not in OFFSET_KEYWORDS and k != "$NEXTDATA"}
    keywords.update(changes)
    return keywords


def _integers(values: np.ndarray, widths: list[int], big_endian: bool) -> bytes:
    """Encode non-negative integers byte by byte (independently of the reader's dtype logic)."""
    values = values.astype(np.uint64)
    out = np.zeros((values.shape[0], sum(widths)), dtype=np.uint8)
    position = 0
    for column, width in enumerate(widths):
        for k in range(width):
            byte = (values[:, column] >> np.uint64(8 * k)) & np.uint64(0xFF)
            out[:, position + (width - 1 - k if big_endian else k)] = byte
        position += width
    return out.tobytes()


def _flowio(path: Path, **options) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flowio.FlowData(path, **options).as_array(preprocess=True)


# --- integer encodings -------------------------------------------------------------------------


@pytest.mark.parametrize("byteord", ["1,2,3,4", "1,2", "2,1", "4,3,2,1"])
def test_integer_byte_orders_give_the_same_events_and_match_flowio(calibur, write_fcs, byteord):
    raw = calibur.events(preprocess=False)
    big = byteord.startswith(("2", "4"))
    path = write_fcs(
        "reordered.fcs",
        keywords=_keywords(calibur, **{"$BYTEORD": byteord}),
        data=_integers(raw, [2] * 8, big),
        version="2.0",
    )
    fcs = read_fcs(path)
    assert np.array_equal(fcs.events(preprocess=False), raw)
    # The 4-decade log channels FSC-H … FL3-H are converted: channel 1023 of 1024 is ~10^4.
    assert np.array_equal(fcs.events(), calibur.events())
    assert np.array_equal(fcs.events(), _flowio(path))


@pytest.mark.parametrize("big_endian", [True, False])
def test_24_bit_integers_decode_in_both_byte_orders(calibur, write_fcs, big_endian):
    raw = calibur.events(preprocess=False)
    keywords = _keywords(calibur, **{"$BYTEORD": "4,3,2,1" if big_endian else "1,2,3,4"})
    keywords.update({f"$P{n}B": "24" for n in range(1, 9)})
    fcs = read_fcs(write_fcs("w24.fcs", keywords=keywords, data=_integers(raw, [3] * 8, big_endian)))
    assert [c.bits for c in fcs.channels] == [24] * 8
    assert np.array_equal(fcs.events(preprocess=False), raw)
    assert np.array_equal(fcs.events(), calibur.events())


def test_mixed_odd_widths_are_masked_by_pnr(calibur, write_fcs):
    """Bits at and above $PnR (1024 here) are not part of the value (FCS 3.1 §3.2.18 $PnR): junk
    written there in 16- to 64-bit fields of every width must vanish."""
    raw = calibur.events(preprocess=False).astype(np.uint64)
    widths = [2, 3, 4, 5, 6, 7, 8, 3]
    junk = np.random.default_rng(7).integers(1, 2**12, size=raw.shape, dtype=np.uint64) << np.uint64(10)
    keywords = _keywords(calibur, **{"$BYTEORD": "1,2,3,4"})
    keywords.update({f"$P{n}B": str(8 * w) for n, w in enumerate(widths, start=1)})
    fcs = read_fcs(write_fcs("mixed.fcs", keywords=keywords, data=_integers(raw | junk, widths, False)))
    assert np.array_equal(fcs.events(preprocess=False), raw.astype(np.float64))
    assert np.array_equal(fcs.events(), calibur.events())


@pytest.mark.parametrize("widths", [[2] * 8, [1, 2, 4, 2, 2, 4, 1, 2]])
def test_masking_matches_flowio_bit_for_bit(calibur, write_fcs, widths):
    rng = np.random.default_rng(11)
    stored = np.stack([rng.integers(0, 2 ** (8 * w), size=500, dtype=np.uint64) for w in widths], axis=1)
    keywords = _keywords(calibur, **{"$TOT": "500", "$BYTEORD": "4,3,2,1"})
    keywords.update({f"$P{n}B": str(8 * w) for n, w in enumerate(widths, start=1)})
    keywords.update({"$P1R": "200", "$P8R": "64"})  # masks 255 and 63; the others 1023
    path = write_fcs("masked.fcs", keywords=keywords, data=_integers(stored, widths, True), version="2.0")
    fcs = read_fcs(path)
    raw = fcs.events(preprocess=False)
    assert raw[:, 0].max() <= 255 and raw[:, 7].max() <= 63 and raw[:, 1:7].max() <= 1023
    assert np.array_equal(raw[:, 7], (stored[:, 7] & np.uint64(63)).astype(np.float64))
    assert np.array_equal(fcs.events(), _flowio(path))


def test_mixed_8_16_32_bit_file_matches_flowio(cyflow, fcsparser_cytometers):
    assert [c.bits for c in cyflow.channels] == [16] * 8 + [32, 8]
    expected = _flowio(fcsparser_cytometers / "cyflow_cube_8" / "cyflow_cube_8.fcs")
    assert np.array_equal(cyflow.events(), expected)


def test_bit_packed_widths_are_refused(calibur, write_fcs):
    keywords = _keywords(calibur, **{"$P1B": "10"})
    path = write_fcs("packed.fcs", keywords=keywords, data=b"\0" * 16 * calibur.n_events, version="2.0")
    with pytest.raises(FCSReadError, match=r"^packed\.fcs: \$P1B is 10; only whole-byte integers"):
        read_fcs(path)


def test_fcs32_per_parameter_datatype_and_date_times(calibur, write_fcs):
    """FCS 3.2 lets $P8DATATYPE F store the time channel as float32 in integer data, and records
    acquisition in $BEGINDATETIME/$ENDDATETIME (ISO 8601), which win over $DATE/$BTIM/$ETIM."""
    raw = calibur.events(preprocess=False)
    records = np.zeros(raw.shape[0], dtype=[("ints", ">u2", (7,)), ("time", ">f4")])
    records["ints"] = raw[:, :7]
    records["time"] = raw[:, 7]
    keywords = _keywords(
        calibur,
        **{
            "$P8DATATYPE": "F",
            "$P8B": "32",
            "$BEGINDATETIME": "2013-03-04T13:22:09.5+01:00",
            "$ENDDATETIME": "2013-03-04T13:23:10+01:00",
        },
    )
    fcs = read_fcs(write_fcs("v32.fcs", keywords=keywords, data=records.tobytes(), version="3.2"))
    assert fcs.version == "3.2" and fcs.datatype == "I"
    assert np.array_equal(fcs.events(), calibur.events())
    acquisition = describe_fcs(fcs)["acquisition"]
    assert (acquisition["start"], acquisition["end"]) == (
        "2013-03-04T13:22:09.500000+01:00",
        "2013-03-04T13:23:10+01:00",
    )


def test_log_scaling_that_overflows_is_refused(calibur, write_fcs):
    path = write_fcs(
        "overflow.fcs",
        keywords=_keywords(calibur, **{"$P1E": "4000,1"}),
        data=_integers(calibur.events(preprocess=False), [2] * 8, True),
        version="2.0",
    )
    fcs = read_fcs(path)
    assert fcs.channels[0].log_decades == 4000
    with pytest.raises(
        FCSReadError, match=r"^overflow\.fcs: scaling a channel by its \$PnE, \$PnG or \$TIMESTEP"
    ):
        fcs.events()


@pytest.mark.parametrize("timestep", ["nan", "inf", "-inf"])
def test_a_timestep_that_is_not_finite_leaves_time_unscaled(fortessa, write_fcs, timestep):
    # Found by fuzzing: float() accepts 'nan' and 'inf', so every time value became NaN with only
    # a NumPy RuntimeWarning; the time channel must keep its stored values and the file say why.
    raw = fortessa.events(preprocess=False)
    keywords = _keywords(fortessa, **{"$TIMESTEP": timestep})
    path = write_fcs("timestep.fcs", keywords=keywords, data=raw.astype(">f4").tobytes(), version="3.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy RuntimeWarning either
        fcs = read_fcs(path)
        events = fcs.events()
    assert (
        f"$TIMESTEP is '{timestep}', not a finite number; the time channel was left unscaled." in fcs.warnings
    )
    assert np.array_equal(events[:, fcs.time_index], raw[:, fcs.time_index])
    assert np.array_equal(events[:, :10], fortessa.events()[:, :10])


# --- floating point and ASCII ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "byteord", "dtype"),
    [("F", "1,2,3,4", "<f4"), ("D", "1,2,3,4,5,6,7,8", "<f8"), ("D", "8,7,6,5,4,3,2,1", ">f8")],
)
def test_float_and_double_data_give_the_fortessa_events(fortessa, write_fcs, datatype, byteord, dtype):
    raw = fortessa.events(preprocess=False)
    bits = "32" if datatype == "F" else "64"
    keywords = _keywords(fortessa, **{"$DATATYPE": datatype, "$BYTEORD": byteord})
    keywords.update({f"$P{n}B": bits for n in range(1, 12)})
    fcs = read_fcs(
        write_fcs("floats.fcs", keywords=keywords, data=raw.astype(dtype).tobytes(), version="3.0")
    )
    assert fcs.datatype == datatype
    assert np.array_equal(fcs.events(preprocess=False), raw)
    # The time channel is scaled by $TIMESTEP (0.01 s) and not divided by its $PnG (0.01).
    assert np.array_equal(fcs.events()[:, 10], raw[:, 10] * 0.01)
    assert np.array_equal(fcs.events(), fortessa.events())


def test_fixed_width_ascii_data(calibur, write_fcs):
    raw = calibur.events(preprocess=False).astype(int)
    text = "".join("".join(f"{v:5d}" for v in row) for row in raw).encode("ascii")
    keywords = _keywords(calibur, **{"$DATATYPE": "A"})
    keywords.update({f"$P{n}B": "5" for n in range(1, 9)})
    fcs = read_fcs(write_fcs("ascii.fcs", keywords=keywords, data=text, version="2.0"))
    assert fcs.datatype == "A" and [c.bits for c in fcs.channels] == [5] * 8
    assert np.array_equal(fcs.events(preprocess=False), raw)
    assert np.array_equal(fcs.events(), calibur.events())


def test_delimited_ascii_data_with_every_separator(calibur, write_fcs):
    raw = calibur.events(preprocess=False).astype(int)[:300]
    separators = [" ", ",", "\t", "\r\n", " ,"]
    text = "".join(f"{v}{separators[k % 5]}" for k, v in enumerate(raw.ravel())).encode("ascii")
    keywords = _keywords(calibur, **{"$DATATYPE": "A", "$TOT": "300"})
    keywords.update({f"$P{n}B": "*" for n in range(1, 9)})
    fcs = read_fcs(write_fcs("delimited.fcs", keywords=keywords, data=text, version="3.0"))
    assert [c.bits for c in fcs.channels] == [None] * 8
    assert np.array_equal(fcs.events(preprocess=False), raw)
    assert np.array_equal(np.concatenate(list(fcs.iter_event_chunks(7))), calibur.events()[:300])


def test_ascii_value_that_is_not_a_number_is_refused(calibur, write_fcs):
    keywords = _keywords(calibur, **{"$DATATYPE": "A", "$TOT": "1"})
    keywords.update({f"$P{n}B": "3" for n in range(1, 9)})
    path = write_fcs("bad_ascii.fcs", keywords=keywords, data=b" 12 13 14 15 16 17 1x 19", version="2.0")
    with pytest.raises(
        FCSReadError, match=r"^bad_ascii\.fcs: ASCII DATA holds ' 1x', which is not a number\.$"
    ):
        read_fcs(path).events()


# --- TEXT and supplemental TEXT ------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["/", "|", "\\", "*", "\x0c", "\x1e"])
def test_any_delimiter_and_doubled_delimiters_in_values(calibur, write_fcs, delimiter):
    keywords = _keywords(calibur, **{"$FIL": f"run{delimiter}A02.fcs", "$COM": f"50{delimiter}50 mix"})
    path = write_fcs(
        "delim.fcs",
        keywords=keywords,
        data=_integers(calibur.events(preprocess=False), [2] * 8, True),
        version="2.0",
        delimiter=delimiter,
    )
    fcs = read_fcs(path)
    assert fcs.keywords["$FIL"] == f"run{delimiter}A02.fcs"
    assert fcs.keywords["$COM"] == f"50{delimiter}50 mix"
    assert np.array_equal(fcs.events(), calibur.events())


def test_keywords_keep_their_dollar_and_values_are_verbatim(calibur, write_fcs):
    keywords = _keywords(calibur, **{"Lab Software": "Acq $oftware v2", "$cyt": "FACSCalibur $N"})
    del keywords["$CYT"]
    path = write_fcs(
        "case.fcs",
        keywords=keywords,
        data=_integers(calibur.events(preprocess=False), [2] * 8, True),
        version="2.0",
    )
    fcs = read_fcs(path)
    assert fcs.keywords["LAB SOFTWARE"] == "Acq $oftware v2"
    assert fcs.keywords["$CYT"] == "FACSCalibur $N"
    assert "$PAR" in fcs.keywords and "PAR" not in fcs.keywords


def test_supplemental_text_adds_keywords_and_the_primary_wins(calibur, build_fcs, write_fcs):
    data = _integers(calibur.events(preprocess=False), [2] * 8, True)
    stext = b"/$SPILLOVER/2,FL1-H,FL2-H,1,0.2,0.05,1/$CYT/other cytometer/"
    keywords = _keywords(calibur, **{"$BEGINSTEXT": "0" * 10, "$ENDSTEXT": "0" * 10})
    start = len(build_fcs(keywords, data, version="3.0"))
    keywords.update({"$BEGINSTEXT": f"{start:010d}", "$ENDSTEXT": f"{start + len(stext) - 1:010d}"})
    fcs = read_fcs(write_fcs("stext.fcs", build_fcs(keywords, data, version="3.0", trailer=stext)))
    assert fcs.spillover().detectors == ("FL1-H", "FL2-H")
    assert fcs.spillover().matrix[0, 1] == 0.2
    assert fcs.keywords["$CYT"] == calibur.keywords["$CYT"]
    assert any("supplemental TEXT repeats $CYT" in w for w in fcs.warnings)
    assert np.array_equal(fcs.events(), calibur.events())


def test_truncated_supplemental_text_is_refused(calibur, write_fcs):
    keywords = _keywords(calibur, **{"$BEGINSTEXT": "0000900000", "$ENDSTEXT": "0000900100"})
    data = _integers(calibur.events(preprocess=False), [2] * 8, True)
    with pytest.raises(FCSReadError, match=r"truncated inside the supplemental TEXT segment"):
        read_fcs(write_fcs("stext_cut.fcs", keywords=keywords, data=data, version="3.0"))


# --- DATA offsets -------------------------------------------------------------------------------


@pytest.fixture
def calibur_data(calibur) -> bytes:
    return _integers(calibur.events(preprocess=False), [2] * 8, True)


def _data_span(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:58]
    return int(header[26:34]), int(header[34:42])


def test_exclusive_end_offset_is_read_with_a_warning(calibur, calibur_data, write_fcs, build_fcs):
    start, end = _data_span(
        write_fcs("ok.fcs", keywords=_keywords(calibur), data=calibur_data, version="3.0")
    )
    path = write_fcs(
        "exclusive.fcs",
        keywords=_keywords(calibur),
        data=calibur_data,
        version="3.0",
        header_data=(start, end + 1),
        text_data=(start, end + 1),
    )
    fcs = read_fcs(path)
    assert np.array_equal(fcs.events(), calibur.events())
    assert any(f"(TEXT {end + 1}) is one past the last byte" in w for w in fcs.warnings)


def test_header_overlapping_text_loses_to_text_offsets(calibur, calibur_data, write_fcs):
    start, end = _data_span(
        write_fcs("ok.fcs", keywords=_keywords(calibur), data=calibur_data, version="3.0")
    )
    path = write_fcs(
        "hdr_bad.fcs",
        keywords=_keywords(calibur),
        data=calibur_data,
        version="3.0",
        header_data=(start - 500, end),
    )
    fcs = read_fcs(path)
    assert np.array_equal(fcs.events(), calibur.events())
    assert any(
        "TEXT's offsets were used because their length matches $TOT=37395 events of 16 bytes" in w
        for w in fcs.warnings
    )


def test_wrong_text_offsets_lose_to_a_header_of_the_right_length(calibur, calibur_data, write_fcs):
    start, end = _data_span(
        write_fcs("ok.fcs", keywords=_keywords(calibur), data=calibur_data, version="3.0")
    )
    path = write_fcs(
        "text_bad.fcs",
        keywords=_keywords(calibur),
        data=calibur_data,
        version="3.0",
        text_data=(start, end - 1000),
    )
    fcs = read_fcs(path)
    assert np.array_equal(fcs.events(), calibur.events())
    assert any("HEADER's offsets were used" in w for w in fcs.warnings)


@pytest.mark.parametrize(("version", "used"), [("3.0", "TEXT"), ("2.0", "HEADER")])
def test_fcs2_prefers_header_offsets_and_fcs3_text_offsets(calibur, calibur_data, write_fcs, version, used):
    """Two spans of the right length: the original events, then a mirrored copy (1023 - value).
    TEXT points at the copy. FCS 3.x defines DATA offsets in TEXT; FCS 2.0 only in the HEADER."""
    raw = calibur.events(preprocess=False)
    copy = _integers(1023 - raw, [2] * 8, True)
    start, end = _data_span(
        write_fcs("ok.fcs", keywords=_keywords(calibur), data=calibur_data, version=version, text_data=(0, 0))
    )
    length = end - start + 1
    path = write_fcs(
        "two.fcs",
        keywords=_keywords(calibur),
        data=calibur_data,
        version=version,
        text_data=(end + 1, end + length),
        trailer=copy,
    )
    values = read_fcs(path).events(preprocess=False)
    assert np.array_equal(values, 1023 - raw if used == "TEXT" else raw)


@pytest.mark.parametrize("header_data", [(0, 0), "blank"])
def test_large_file_convention_reads_offsets_from_text_silently(
    calibur, calibur_data, write_fcs, header_data
):
    path = write_fcs(
        "large.fcs", keywords=_keywords(calibur), data=calibur_data, version="3.1", header_data=header_data
    )
    fcs = read_fcs(path)
    assert np.array_equal(fcs.events(), calibur.events())
    assert not any("DATA" in w for w in fcs.warnings)


def test_span_longer_than_tot_reads_tot_events_with_a_warning(calibur, calibur_data, write_fcs):
    start, end = _data_span(
        write_fcs("ok.fcs", keywords=_keywords(calibur), data=calibur_data, version="3.0")
    )
    path = write_fcs(
        "long.fcs",
        keywords=_keywords(calibur),
        data=calibur_data,
        version="3.0",
        header_data=(start, end + 160),
        text_data=(start, end + 160),
        trailer=b"\0" * 160,
    )
    fcs = read_fcs(path)
    assert fcs.n_events == 37395
    assert np.array_equal(fcs.events(), calibur.events())
    assert any(f"spans {end + 160 - start + 1} bytes, more than $TOT=37395" in w for w in fcs.warnings)


def test_file_too_short_for_tot_is_truncated_by_a_stated_number_of_bytes(calibur, calibur_data, write_fcs):
    start, end = _data_span(
        write_fcs("ok.fcs", keywords=_keywords(calibur), data=calibur_data, version="3.0")
    )
    path = write_fcs(
        "short.fcs",
        keywords=_keywords(calibur),
        data=calibur_data[:-1000],
        version="3.0",
        header_data=(start, end),
        text_data=(start, end),
    )
    with pytest.raises(
        FCSReadError, match=r"^short\.fcs: is truncated: DATA needs 598320 bytes .* 1000 bytes short\.$"
    ):
        read_fcs(path)


def test_offsets_inside_the_text_segment_are_refused(calibur, calibur_data, write_fcs):
    path = write_fcs(
        "inside.fcs",
        keywords=_keywords(calibur),
        data=calibur_data,
        version="3.0",
        header_data=(100, 598419),
        text_data=(100, 598419),
    )
    with pytest.raises(
        FCSReadError, match=r"^inside\.fcs: gives DATA offsets that overlap the HEADER or TEXT"
    ):
        read_fcs(path)


# --- several data sets ---------------------------------------------------------------------------


def test_highest_version_data_set_is_chosen_and_any_can_be_asked_for(
    calibur, calibur_data, build_chain, write_fcs
):
    raw = calibur.events(preprocess=False)
    variants = [raw, 1023 - raw, raw // 2]
    sets = [
        (_keywords(calibur), _integers(values, [2] * 8, True), {"version": version})
        for values, version in zip(variants, ["3.0", "3.1", "3.1"], strict=True)
    ]
    path = write_fcs("three.fcs", build_chain(sets))
    chosen = read_fcs(path)
    assert (chosen.dataset_index, chosen.n_datasets, chosen.version) == (1, 3, "3.1")
    assert np.array_equal(chosen.events(preprocess=False), variants[1])
    for index in range(3):
        assert np.array_equal(read_fcs(path, dataset=index).events(preprocess=False), variants[index])
    with pytest.raises(
        FCSReadError, match=r"^three\.fcs: holds 3 data set\(s\), so data set index 3 does not exist\.$"
    ):
        read_fcs(path, dataset=3)


@pytest.mark.parametrize(
    ("nextdata", "message"),
    [
        ("-58", r"\$NEXTDATA of data set 1 is negative \(-58\)"),
        ("99999999", r"is truncated: \$NEXTDATA of data set 1 points to byte 99999999"),
        ("60", r"\$NEXTDATA points to byte 60, where no FCS data set starts"),
    ],
)
def test_bad_nextdata_is_refused(calibur, calibur_data, write_fcs, nextdata, message):
    path = write_fcs(
        "next.fcs", keywords=_keywords(calibur, **{"$NEXTDATA": nextdata}), data=calibur_data, version="3.0"
    )
    with pytest.raises(FCSReadError, match=rf"^next\.fcs: {message}"):
        read_fcs(path)


# --- keywords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["$PAR", "$DATATYPE", "$BYTEORD", "$P2B", "$P2R"])
def test_missing_required_keyword_is_named(calibur, calibur_data, write_fcs, missing):
    keywords = _keywords(calibur)
    del keywords[missing]
    with pytest.raises(FCSReadError, match=rf"^req\.fcs: required keyword \{missing} is missing\.$"):
        read_fcs(write_fcs("req.fcs", keywords=keywords, data=calibur_data, version="3.0"))


def test_missing_tot_in_fcs2_is_derived_from_the_data_length(calibur, calibur_data, write_fcs):
    keywords = _keywords(calibur)
    del keywords["$TOT"]
    fcs = read_fcs(write_fcs("no_tot.fcs", keywords=keywords, data=calibur_data, version="2.0"))
    assert fcs.n_events == 37395
    assert "$TOT is missing; 37395 events were derived from the DATA length." in fcs.warnings


def test_missing_mode_is_list_mode_and_other_modes_are_refused(calibur, calibur_data, write_fcs):
    keywords = _keywords(calibur)
    del keywords["$MODE"]
    fcs = read_fcs(write_fcs("no_mode.fcs", keywords=keywords, data=calibur_data, version="2.0"))
    assert "$MODE is missing; list mode (L) was assumed." in fcs.warnings
    path = write_fcs(
        "hist.fcs", keywords=_keywords(calibur, **{"$MODE": "C"}), data=calibur_data, version="2.0"
    )
    with pytest.raises(
        FCSReadError, match=r"^hist\.fcs: stores \$MODE C data; only list mode \(L\) is read\.$"
    ):
        read_fcs(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"$PAR": "1000000000"}, r"\$PAR is 1000000000, impossible for a TEXT segment with \d+ keywords"),
        ({"$PAR": "eight"}, r"\$PAR is 'eight', not a whole number"),
        ({"$DATATYPE": "X"}, r"\$DATATYPE is 'X', not I, F, D or A"),
        ({"$BYTEORD": "3,4,1,2"}, r"\$BYTEORD '3,4,1,2' is neither little-endian"),
        ({"$P3E": "4"}, r"\$P3E is '4', not two numbers f1,f2"),
        ({"$P3R": "many"}, r"\$P3R is 'many', not a finite number"),
        ({"$TOT": "-5"}, r"\$TOT is -5"),
        ({"$TOT": "1000000000000000"}, r"is truncated: DATA needs 16000000000000000 bytes"),
    ],
)
def test_impossible_keyword_values_are_refused(calibur, calibur_data, write_fcs, changes, message):
    path = write_fcs("kw.fcs", keywords=_keywords(calibur, **changes), data=calibur_data, version="2.0")
    with pytest.raises(FCSReadError, match=rf"^kw\.fcs: {message}"):
        read_fcs(path)


def test_stale_parameter_keywords_beyond_par_are_ignored(calibur, calibur_data, write_fcs):
    keywords = _keywords(calibur, **{"$P9N": "FL4-H", "$P9B": "16", "$P9R": "1024", "$P12N": "Time"})
    fcs = read_fcs(write_fcs("stale.fcs", keywords=keywords, data=calibur_data, version="2.0"))
    assert len(fcs.channels) == 8 and fcs.time_index == 7
    assert any("parameter(s) 9, 12 beyond $PAR=8 (e.g. $P12N)" in w for w in fcs.warnings)
    assert np.array_equal(fcs.events(), calibur.events())


def test_zero_events(calibur, write_fcs):
    fcs = read_fcs(
        write_fcs("empty_run.fcs", keywords=_keywords(calibur, **{"$TOT": "0"}), data=b"", version="3.1")
    )
    assert fcs.n_events == 0
    assert fcs.events().shape == (0, 8)
    assert [chunk.shape for chunk in fcs.iter_event_chunks(1000)] == [(0, 8)]
    assert describe_fcs(fcs)["n_events"] == 0


def test_compensation_keywords_that_are_not_used_are_reported(calibur, calibur_data, write_fcs):
    keywords = _keywords(calibur, **{"$COMP": "2,1,0,0,1", "$DFC1TO2": "12.5"})
    fcs = read_fcs(write_fcs("comp.fcs", keywords=keywords, data=calibur_data, version="3.0"))
    assert any(
        w.startswith("$COMP (FCS 3.0 compensation matrix) is present but not used") for w in fcs.warnings
    )
    assert any(w.startswith("FCS 2.0 $DFCiTOj compensation keywords are present") for w in fcs.warnings)
    assert fcs.spillover() is None


# --- broken and truncated files ----------------------------------------------------------------


def test_missing_empty_directory_and_non_fcs_files(tmp_path):
    with pytest.raises(FCSReadError, match=r"^nowhere\.fcs: does not exist"):
        read_fcs(tmp_path / "nowhere.fcs")
    (tmp_path / "empty.fcs").write_bytes(b"")
    with pytest.raises(FCSReadError, match=r"^empty\.fcs: is empty \(0 bytes\)\.$"):
        read_fcs(tmp_path / "empty.fcs")
    (tmp_path / "folder.fcs").mkdir()
    with pytest.raises(FCSReadError, match=r"^folder\.fcs: cannot be opened"):
        read_fcs(tmp_path / "folder.fcs")
    (tmp_path / "table.fcs").write_text("file\tevents\nA02.fcs\t37395\n")
    with pytest.raises(FCSReadError, match=r"^table\.fcs: is not an FCS file"):
        read_fcs(tmp_path / "table.fcs")
    (tmp_path / "v1.fcs").write_bytes(b"FCS1.0" + b" " * 52)
    with pytest.raises(FCSReadError, match=r"^v1\.fcs: has FCS version '1\.0', which is not supported"):
        read_fcs(tmp_path / "v1.fcs")


def test_garbage_bytes_after_an_fcs_signature_are_refused_in_one_sentence(tmp_path):
    rng = np.random.default_rng(3)
    for k in range(200):
        content = (
            b"FCS3.1    " + rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        )
        if k % 2:
            # Plausible offsets pointing into the random bytes.
            content = b"FCS3.0          58     300     301     400       0       0" + content[10:]
        path = tmp_path / f"garbage{k}.fcs"
        path.write_bytes(content)
        with pytest.raises(FCSReadError) as caught:
            read_fcs(path).events()
        message = str(caught.value)
        assert message.startswith(f"garbage{k}.fcs: ") and message.endswith(".") and "\n" not in message
        assert "Error:" not in message, message


def _segments(path: Path) -> list[int]:
    """Byte positions across HEADER, TEXT and DATA (and after) of a real file."""
    content = path.read_bytes()
    text_start, text_end = int(content[10:18]), int(content[18:26])
    fcs = read_fcs(path)
    data_start = fcs._data_start
    data_end = data_start + fcs._data_bytes - 1
    positions = {
        1,
        3,
        6,
        9,
        10,
        20,
        33,
        41,
        57,
        58,
        text_start + 1,
        (text_start + text_end) // 2,
        text_end - 1,
        text_end,
        text_end + 1,
        data_start + 1,
        data_start + 17,
        (data_start + data_end) // 2,
        data_end - 1,
        data_end,
        data_end + 1,
        len(content) - 1,
    }
    return sorted(p for p in positions if 0 < p < len(content))


@pytest.mark.parametrize(
    "relative",
    [
        "FACSCaliburHTS/Sample_Well_A02.fcs",
        "cyflow_cube_8/cyflow_cube_8.fcs",
        "Cytek_xP5/Cytek_xP5.fcs",
        "MiltenyiBiotec/FCS3.1/EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs",
        "fake_large_fcs/fake_large_fcs.fcs",
    ],
)
def test_truncation_anywhere_gives_one_sentence_or_the_same_events(fcsparser_cytometers, tmp_path, relative):
    source = fcsparser_cytometers / relative
    complete = read_fcs(source)
    expected = complete.events()
    data_end = complete._data_start + complete._data_bytes
    content = source.read_bytes()
    for position in _segments(source):
        path = tmp_path / source.name
        path.write_bytes(content[:position])
        try:
            fcs = read_fcs(path)
            events = fcs.events()
        except FCSReadError as exc:
            message = str(exc)
            assert message.startswith(f"{source.name}: ") and message.endswith(".") and "\n" not in message
            assert "Error:" not in message, f"safety net at byte {position}: {message}"
            continue
        assert position >= data_end, f"cut at byte {position} inside DATA was read"
        assert np.array_equal(events, expected)


def test_truncated_multi_data_set_file_is_refused_in_either_data_set(shared_data, tmp_path):
    source = shared_data / "fcs" / "flowkit" / "multi_dataset_fcs" / "coulter.lmd"
    content = source.read_bytes()
    # The FCS 3.0 data set starts at byte 363,602 with its DATA first and its TEXT at the end.
    for position in (
        100,
        3000,
        200_000,
        363_602 + 30,
        363_602 + 10_000,
        363_602 + 579_000,
        len(content) - 500,
    ):
        path = tmp_path / "coulter.lmd"
        path.write_bytes(content[:position])
        with pytest.raises(FCSReadError, match=r"^coulter\.lmd: (is truncated|\$NEXTDATA)"):
            read_fcs(path).events()


def test_a_file_changed_after_reading_is_not_read_silently(calibur, calibur_data, write_fcs):
    path = write_fcs("changing.fcs", keywords=_keywords(calibur), data=calibur_data, version="3.0")
    fcs = read_fcs(path)
    with open(path, "ab") as fh:
        fh.write(b"\0" * 16)
    with pytest.raises(FCSReadError, match=r"^changing\.fcs: changed on disk since it was read"):
        fcs.events()


# --- events access -----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["calibur", "fortessa", "cyflow"])
def test_chunks_of_any_size_concatenate_to_the_events_bit_for_bit(request, fixture):
    fcs: FCSFile = request.getfixturevalue(fixture)
    everything = fcs.events()
    for size in (1, 7, fcs.n_events, fcs.n_events + 13):
        if size == 1 and fcs.n_events > 1000:
            chunks = list(itertools.islice(fcs.iter_event_chunks(size), 1000))
            assert np.array_equal(np.concatenate(chunks), everything[:1000])
            continue
        chunks = list(fcs.iter_event_chunks(size))
        assert all(0 < len(c) <= size for c in chunks)
        assert len(chunks) == -(-fcs.n_events // size)
        assert np.array_equal(np.concatenate(chunks), everything)


@pytest.mark.parametrize("n_channels", [1, 3])
def test_log_and_gain_scaling_is_bit_identical_to_flowio_in_every_chunking(write_fcs, n_channels):
    """NumPy may run SIMD loops on contiguous columns (a single channel) and scalar ones on strided
    columns; neither the layout nor a chunk boundary may change a single bit."""
    n_events = 20011
    values = np.random.default_rng(5).integers(0, 1024, size=(n_events, n_channels), dtype=np.uint16)
    keywords = {
        "$BYTEORD": "1,2",
        "$DATATYPE": "I",
        "$MODE": "L",
        "$PAR": str(n_channels),
        "$TOT": str(n_events),
    }
    for n in range(1, n_channels + 1):
        keywords.update(
            {
                f"$P{n}N": f"FL{n}-H",
                f"$P{n}B": "16",
                f"$P{n}R": "1024",
                f"$P{n}E": "4.5,0.7",
                f"$P{n}G": "3.3",
            }
        )
    path = write_fcs("log.fcs", keywords=keywords, data=values.astype("<u2").tobytes(), version="3.0")
    fcs = read_fcs(path)
    expected = _flowio(path)
    assert np.array_equal(fcs.events(), expected)
    for size in (7, 8, 16, 1000, n_events):
        assert np.array_equal(np.concatenate(list(fcs.iter_event_chunks(size))), expected)


def test_event_ranges_are_slices_of_all_events(calibur):
    everything = calibur.events()
    assert np.array_equal(calibur.events(100, 350), everything[100:350])
    assert np.array_equal(calibur.events(calibur.n_events - 5), everything[-5:])
    assert calibur.events(10, 10).shape == (0, 8)
    with pytest.raises(ValueError):
        calibur.events(10, 5)
    with pytest.raises(ValueError):
        list(calibur.iter_event_chunks(0))


def test_channel_metadata_follows_flowio_rules(fortessa, calibur):
    assert fortessa.time_index == 10
    assert fortessa.fluoro_indices == [6, 7, 8, 9]
    time = fortessa.channels[10]
    assert (time.number, time.pnn, time.range, time.gain) == (11, "Time", 262144.0, 0.01)
    fsc = calibur.channels[0]
    assert (fsc.bits, fsc.range, fsc.log_decades, fsc.log_offset) == (16, 1024.0, 4.0, 1.0)


# --- describe_fcs ------------------------------------------------------------------------------


def test_describe_fcs_gives_the_documented_keys_in_order(fcsparser_cytometers):
    path = fcsparser_cytometers / "Cytek_xP5" / "Cytek_xP5.fcs"
    fcs = read_fcs(path)
    described = describe_fcs(fcs)
    assert list(described) == [
        "file",
        "sample_id",
        "sha256",
        "size_bytes",
        "fcs_version",
        "datatype",
        "n_events",
        "n_datasets",
        "dataset",
        "cytometer",
        "fil",
        "acquisition",
        "spillover",
        "channels",
        "warnings",
    ]
    assert described["file"] == str(path)
    assert described["sha256"] == fcs.sha256 and len(fcs.sha256) == 64
    assert described["size_bytes"] == os.path.getsize(path) == 1043904
    assert described["cytometer"] == "Cytek xP5: NCSU CORE  xP5 Facscan"
    assert described["acquisition"] == {
        "date": "02-MAR-2015",
        "btim": "13:22:33",
        "etim": "13:22:52",
        "start": "2015-03-02T13:22:33",
        "end": "2015-03-02T13:22:52",
    }
    assert described["spillover"] is None
    assert described["channels"][0] == {"n": 1, "pnn": "TIME", "pns": "", "bits": 24, "range": 30000.0}
    json.dumps(described, allow_nan=False)


def test_describe_fcs_lists_spillover_detectors(fortessa):
    described = describe_fcs(fortessa)
    assert described["spillover"] == {"detectors": ["FITC-A", "PerCP-Cy5-5-A", "AmCyan-A", "PE-Texas Red-A"]}
