"""TEXT segment parsing (FCS 3.1 §3.2.1): delimiters, escapes, encodings and writers' habits."""

from __future__ import annotations

import pytest

from rapidrelease.fcs.text_segment import parse_text_segment, shown


@pytest.mark.parametrize("delimiter", ["/", "|", "\\", "*", "\x0c", "\x1e", ","])
def test_the_first_byte_is_the_delimiter_whatever_it_is(delimiter):
    d = delimiter
    raw = f"{d}$PAR{d}2{d}$P1N{d}FSC-A{d}$SPILLOVER{d}1;FITC-A;1{d}".encode()
    segment = parse_text_segment(raw)
    assert segment.delimiter == delimiter.encode()
    assert segment.keywords == {"$PAR": "2", "$P1N": "FSC-A", "$SPILLOVER": "1;FITC-A;1"}
    assert segment.warnings == ()


def test_a_doubled_delimiter_in_a_value_is_one_literal_delimiter():
    segment = parse_text_segment(b"/$DATE/11//24//2026/$FIL/C://runs//A01.fcs/")
    assert segment.keywords == {"$DATE": "11/24/2026", "$FIL": "C:/runs/A01.fcs"}


def test_a_doubled_delimiter_in_a_keyword_stays_in_the_keyword():
    # FlowCal's test of the standard: 'key//2' is the keyword 'key/2'.
    segment = parse_text_segment(b"/k1/v1/key//2/value2/k3/v3/")
    assert segment.keywords == {"K1": "v1", "KEY/2": "value2", "K3": "v3"}


def test_an_odd_run_of_delimiters_ends_the_token_with_its_literals():
    segment = parse_text_segment(b"/$COM/50%///$CYT/Aria/")
    assert segment.keywords == {"$COM": "50%/", "$CYT": "Aria"}


def test_keywords_are_upper_cased_with_their_dollar_and_values_verbatim():
    segment = parse_text_segment(b"/$p1n/ FSC-A $/Creator/$oft $till/")
    assert segment.keywords == {"$P1N": " FSC-A $", "CREATOR": "$oft $till"}


def test_a_missing_final_delimiter_and_trailing_padding_are_tolerated():
    assert parse_text_segment(b"/A/1/B/2").keywords == {"A": "1", "B": "2"}
    padded = parse_text_segment(b"/A/1/B/2/   \x00\x00")
    assert padded.keywords == {"A": "1", "B": "2"} and padded.warnings == ()


def test_a_keyword_without_a_value_is_ignored_with_a_warning():
    segment = parse_text_segment(b"/A/1/B\nC/")
    assert segment.keywords == {"A": "1"}
    assert segment.warnings == ("TEXT ends with keyword 'B\\x0aC' that has no value; it was ignored.",)


def test_cellquest_empty_values_written_as_doubled_delimiters():
    # From flowCore's 0877408774.B08 (CellQuest 3.3): $P3S and $P4S are empty.
    raw = b"\\$P2S\\SSC-H\\$P3S\\\\$P4S\\\\$P6N\\FL1-A\\$P6R\\1024\\&10Analysis Doc.\\\\"
    segment = parse_text_segment(raw)
    assert segment.keywords == {
        "$P2S": "SSC-H",
        "$P3S": "",
        "$P4S": "",
        "$P6N": "FL1-A",
        "$P6R": "1024",
        "&10ANALYSIS DOC.": "",
    }
    assert segment.warnings[0].startswith("TEXT writes empty values as doubled delimiters ($P3S, $P4S")


def test_utf8_first_then_latin1():
    assert parse_text_segment("/$P4S/CD3 µ/".encode()).keywords["$P4S"] == "CD3 µ"
    latin = parse_text_segment("/$P4S/CD3 µ/CREATOR/CELLQuestª 3.3/".encode("latin-1"))
    assert latin.encoding == "latin-1"
    assert latin.keywords == {"$P4S": "CD3 µ", "CREATOR": "CELLQuestª 3.3"}


def test_a_repeated_keyword_keeps_the_last_value_with_a_warning():
    segment = parse_text_segment(b"/$CYT/Aria/$cyt/Canto/")
    assert segment.keywords == {"$CYT": "Canto"}
    assert segment.warnings == (
        "keyword(s) $CYT appear more than once with different values; the last is used.",
    )


def test_supplemental_text_uses_the_primary_delimiter_with_or_without_a_leading_one():
    assert parse_text_segment(b"$VOL/25/$CELLS/T cells/", delimiter=b"/").keywords == {
        "$VOL": "25",
        "$CELLS": "T cells",
    }
    assert parse_text_segment(b"/$VOL/25/", delimiter=b"/").keywords == {"$VOL": "25"}


def test_an_empty_segment_is_a_value_error_for_the_caller_to_name():
    with pytest.raises(ValueError):
        parse_text_segment(b"")


def test_shown_escapes_control_characters_and_cuts():
    assert shown("a\nb\x00c", 10) == "a\\x0ab\\x00c"
    assert shown("x" * 50, 5) == "xxxxx…"
