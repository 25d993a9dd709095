"""Spillover matrices from $SPILLOVER/$SPILL/SPILL (FCS 3.1 §3.2.19), checked against flowutils."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from flowutils.compensate import get_spill

from rapidrelease.errors import FCSReadError
from rapidrelease.fcs.compensation import Spillover, parse_spillover
from rapidrelease.fcs.reader import describe_fcs, read_fcs


def test_rows_are_the_emitting_fluorochrome_and_columns_the_receiving_detector():
    spill = parse_spillover("3,FITC-A,PE-A,APC-A,1,0.21,0.002,0.015,1,0.03,0,0.004,1", "test.fcs $SPILLOVER")
    assert spill.detectors == ("FITC-A", "PE-A", "APC-A")
    assert spill.matrix.shape == (3, 3) and spill.matrix.dtype == np.float64
    # 21 % of the FITC signal is seen in the PE detector: row FITC, column PE.
    assert spill.matrix[0, 1] == 0.21
    assert spill.matrix[1, 0] == 0.015
    assert not spill.matrix.flags.writeable


def test_well_formed_text_parses_exactly_as_flowutils_does():
    text = "2, FL1-H ,FL2-H\n,1.0,0.25, 0.05 ,1"
    spill = parse_spillover(text, "x")
    matrix, names = get_spill(text)
    assert list(spill.detectors) == names == ["FL1-H", "FL2-H"]
    assert np.array_equal(spill.matrix, matrix)
    assert spill == parse_spillover(text + ",", "x")  # a trailing comma carries no value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FITC-A,1", r"must start with the number of detectors, not 'FITC-A'"),
        ("0", r"declares 0 detectors"),
        ("3,FITC-A,PE-A", r"declares 3 detectors but lists only 2 items"),
        ("2,FITC-A,PE-A,1,0.1,0.2", r"for 2 detectors needs 4 values \(n×n\) but has 3"),
        ("2,FITC-A,PE-A,1,0.1,0.2,1,0", r"for 2 detectors needs 4 values \(n×n\) but has 5"),
        ("2,FITC-A,PE-A,1,abc,0.2,1", r"value at row 1, column 2 is 'abc', not a finite number"),
        ("2,FITC-A,PE-A,1,0.1,nan,1", r"value at row 2, column 1 is 'nan', not a finite number"),
        ("2,FITC-A,FITC-A,1,0,0,1", r"names detector\(s\) FITC-A more than once"),
        ("2,FITC-A, ,1,0,0,1", r"detector name 2 of 2 is empty"),
    ],
)
def test_malformed_spillover_is_refused_naming_the_source(text, message):
    with pytest.raises(FCSReadError, match=rf"^A01\.fcs \$SPILLOVER: spillover {message}"):
        parse_spillover(text, "A01.fcs $SPILLOVER")


@pytest.mark.parametrize(
    ("relative", "n_detectors"),
    [
        ("Fortessa/FCS_3.0_Fortessa_PBS_Specimen_001_A1_A01.fcs", 4),
        ("HTS_BD_LSR-II/HTS_BD_LSR_II_Mixed_Specimen_001_D6_D06.fcs", 4),
        ("fake_large_fcs/fake_large_fcs.fcs", 4),
    ],
)
def test_bd_spill_keyword_names_the_files_channels(fcsparser_cytometers, relative, n_detectors):
    fcs = read_fcs(fcsparser_cytometers / relative)
    spill = fcs.spillover()
    assert len(spill.detectors) == n_detectors
    assert set(spill.detectors) <= set(fcs.pnn_labels)
    assert set(spill.detectors) == {fcs.pnn_labels[i] for i in fcs.fluoro_indices}
    assert np.array_equal(np.diag(spill.matrix), np.ones(n_detectors))


def test_spillover_with_names_but_no_values_is_reported_not_guessed(fcsparser_cytometers):
    path = fcsparser_cytometers / "MiltenyiBiotec" / "FCS3.1" / "EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs"
    fcs = read_fcs(path)
    assert fcs.keywords["$SPILLOVER"] == "6,FL2-A,FL2-H,FL4-A,FL4-H,FL7-A,FL7-H"
    with pytest.raises(
        FCSReadError, match=r"^EY_2013.*\.fcs \$SPILLOVER: spillover for 6 detectors needs 36 values"
    ):
        fcs.spillover()
    assert any(w.startswith("$SPILLOVER: spillover for 6 detectors needs 36") for w in fcs.warnings)
    assert describe_fcs(fcs)["spillover"] is None


def _real_files_with_spillover(shared_data: Path) -> list[Path]:
    with open(shared_data / "MANIFEST.tsv", encoding="utf-8") as fh:
        rows = [row for row in csv.DictReader(fh, delimiter="\t") if row["format"].startswith("FCS")]
    paths = []
    for row in rows:
        path = shared_data / row["path"]
        try:
            fcs = read_fcs(path)
        except FCSReadError:
            continue
        if any(k in fcs.keywords for k in ("$SPILLOVER", "$SPILL", "SPILL", "SPILLOVER")):
            paths.append(path)
    return paths


def test_every_real_spillover_matches_flowutils_and_names_real_channels(shared_data):
    """Attune NxT, NovoCyte and Aurora write $SPILLOVER; BD FACSDiva writes SPILL. Every matrix has
    1 on its diagonal (a fluorochrome is fully seen in its own detector) and names channels of its
    file, except BD Accuri C6 files rewritten by flowCore, whose $SPILLOVER names parameter
    numbers of the original 14-channel file."""
    paths = _real_files_with_spillover(shared_data)
    accuri = [p for p in paths if "realtime_cont" in str(p)]
    assert (len(paths), len(accuri)) == (251, 162)
    for path in paths:
        fcs = read_fcs(path)
        spill = fcs.spillover()
        key = next(k for k in ("$SPILLOVER", "$SPILL", "SPILL", "SPILLOVER") if k in fcs.keywords)
        matrix, names = get_spill(fcs.keywords[key])
        assert list(spill.detectors) == names and np.array_equal(spill.matrix, matrix), path.name
        assert np.all(np.diag(spill.matrix) == 1), path.name
        if path in accuri:
            assert spill.detectors == ("3", "4", "5", "6", "9", "10", "11", "12")
            assert any("names detector(s) 3, 4, 5" in w for w in fcs.warnings)
        else:
            assert set(spill.detectors) <= set(fcs.pnn_labels), path.name


def test_spillover_equality_compares_names_and_values():
    a = Spillover(("A", "B"), np.array([[1.0, 0.1], [0.0, 1.0]]))
    assert a == Spillover(("A", "B"), np.array([[1.0, 0.1], [0.0, 1.0]]))
    assert a != Spillover(("A", "B"), np.array([[1.0, 0.2], [0.0, 1.0]]))
    assert a != Spillover(("B", "A"), np.array([[1.0, 0.1], [0.0, 1.0]]))


@pytest.mark.parametrize(
    ("relative", "n", "first", "value_0_1"),
    [
        ("flowkit/8_color_data_set/den_comp.csv", 8, "TNFa FITC FLR-A", 0.014139),  # '#' header
        ("flowkit/comp_complete_example.csv", 14, "Ax488-A", 0.2986),  # plain header
        (
            "cytoexplorerdata_tcell_activation/Compensation-Spillover-Matrix.csv",
            11,
            "Alexa Fluor 488-A",
            0.180901,
        ),
        ("flowcore_extdata/compdata/compmatrix", 4, "FL1-H", 0.24),  # title line, tabs, CR line ends
    ],
)
def test_matrix_files_as_flowjo_flowkit_r_and_flowcore_write_them(shared_data, relative, n, first, value_0_1):
    from rapidrelease.fcs.compensation import read_spillover_file

    spill = read_spillover_file(shared_data / "fcs" / relative)
    assert len(spill.detectors) == n and spill.detectors[0] == first
    assert spill.matrix.shape == (n, n)
    assert spill.matrix[0, 1] == pytest.approx(value_0_1)
    assert np.all(np.diag(spill.matrix) == 1.0)


def test_matrix_file_problems_name_the_file(tmp_path):
    from rapidrelease.errors import ConfigError
    from rapidrelease.fcs.compensation import read_spillover_file

    with pytest.raises(ConfigError, match=r"absent\.csv: compensation matrix file not found\.$"):
        read_spillover_file(tmp_path / "absent.csv")
    short = tmp_path / "short.csv"
    short.write_text("FL1-A,FL2-A\n1,0.1\n")
    with pytest.raises(ConfigError, match=r"short\.csv: names 2 detectors but has 1 rows of values\.$"):
        read_spillover_file(short)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("FL1-A,FL2-A\n1,0.1\n0.2\n")
    with pytest.raises(ConfigError, match=r"ragged\.csv: spillover for 2 detectors needs 4 values"):
        read_spillover_file(ragged)
    words = tmp_path / "words.csv"
    words.write_text("just,a,note\n")
    with pytest.raises(ConfigError, match=r"words\.csv: not a compensation matrix"):
        read_spillover_file(words)
    labels = tmp_path / "labels.csv"
    labels.write_text('"","FL1-A","FL2-A"\n"FL1-A",1,0.1\n"FL3-A",0.2,1\n')
    with pytest.raises(ConfigError, match=r"labels\.csv: the row names \['FL1-A', 'FL3-A'\] do not match"):
        read_spillover_file(labels)
