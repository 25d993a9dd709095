"""The demo files are valid FCS 3.1 with the keywords an LSRFortessa export carries."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import flowio
import flowkit
import numpy as np
import pytest

from rapidrelease.synthetic.demo.lots import DEMO_LOTS
from rapidrelease.synthetic.demo.panel import SPILLOVER

LOT_IDS = [lot.lot_id for lot in DEMO_LOTS]

FLUORESCENCE = ["B530-A", "YG586-A", "B695-A", "R780-A", "V450-A", "V525-A", "V610-A"]
MARKERS = ["CAR", "CCR7", "CD8", "Viability", "CD45RA", "CD3", "CD4"]
ALL_PNN = ["FSC-A", "FSC-H", "SSC-A", *FLUORESCENCE, "Time"]


@pytest.fixture(scope="module", params=LOT_IDS)
def fcs(request: pytest.FixtureRequest, fcs_paths: dict[str, Path]) -> tuple[str, Path, flowio.FlowData]:
    path = fcs_paths[request.param]
    return request.param, path, flowio.FlowData(str(path))


def test_header_and_data_segment_are_fcs_3_1_float_list_mode(fcs: tuple[str, Path, flowio.FlowData]) -> None:
    _, path, data = fcs
    raw = path.read_bytes()
    assert raw[:10] == b"FCS3.1    "
    text = data.text
    assert (text["datatype"], text["mode"], text["byteord"]) == ("F", "L", "1,2,3,4")
    assert int(text["tot"]) == 30_000 and int(text["par"]) == 11
    begin, end = int(text["begindata"]), int(text["enddata"])
    assert end - begin + 1 == 30_000 * 11 * 4
    # HEADER offsets agree with $BEGINDATA/$ENDDATA; the data set closes with the (uncomputed) CRC field.
    assert (int(raw[26:34]), int(raw[34:42])) == (begin, end)
    assert raw[end + 1 :] == b"00000000"


def test_channels_carry_cytometer_parameter_keywords(fcs: tuple[str, Path, flowio.FlowData]) -> None:
    _, _, data = fcs
    text = data.text
    assert [text[f"p{n}n"] for n in range(1, 12)] == ALL_PNN
    assert [text[f"p{n}s"] for n in range(4, 11)] == MARKERS
    for n in range(1, 12):
        assert (text[f"p{n}b"], text[f"p{n}e"], float(text[f"p{n}g"])) == ("32", "0,0", 1.0)
    for n in range(1, 11):
        assert text[f"p{n}r"] == "262144"
        assert 200 <= int(text[f"p{n}v"]) <= 1000  # PMT/photodiode volts
    assert [text[f"p{n}l"] for n in range(4, 11)] == ["488", "561", "488", "640", "405", "405", "405"]


def test_acquisition_keywords_describe_a_fortessa_run(fcs: tuple[str, Path, flowio.FlowData]) -> None:
    lot_id, path, data = fcs
    text = data.text
    assert text["cyt"] == "LSRFortessa"
    assert text["cytsn"] and text["inst"] and text["op"]
    assert text["fil"] == path.name
    assert text["src"].startswith(lot_id)
    assert "SYNTHETIC" in text["com"]
    assert re.fullmatch(r"\d{2}-[A-Z]{3}-\d{4}", text["date"])
    start = datetime.strptime(f"{text['date']} {text['btim']}", "%d-%b-%Y %H:%M:%S")
    end = datetime.strptime(f"{text['date']} {text['etim']}", "%d-%b-%Y %H:%M:%S")
    time = flowkit.Sample(path).get_channel_events("Time", source="raw")  # seconds, $TIMESTEP applied
    assert float(text["timestep"]) == 0.01
    # $ETIM is the last event's time rounded up to the second.
    assert (end - start).total_seconds() == np.ceil(time[-1])


def test_time_increases_at_a_cytometer_rate(fcs: tuple[str, Path, flowio.FlowData]) -> None:
    _, path, _ = fcs
    time = flowkit.Sample(path).get_channel_events("Time", source="raw")
    assert np.all(np.diff(time) >= 0)
    rate = time.size / (time[-1] - time[0])
    assert 1000 <= rate <= 3000  # events per second


def test_spillover_names_the_fluorescence_detectors_in_fcs_3_1_layout(
    fcs: tuple[str, Path, flowio.FlowData],
) -> None:
    _, _, data = fcs
    fields = data.text["spillover"].split(",")
    n = int(fields[0])
    assert fields[1 : 1 + n] == FLUORESCENCE
    matrix = np.array([float(v) for v in fields[1 + n :]]).reshape(n, n)
    np.testing.assert_array_equal(np.diag(matrix), 1.0)
    assert matrix[0, 1] == pytest.approx(0.2)  # FITC (row) into the PE detector (column)
    assert matrix[5, 4] == pytest.approx(0.1)  # BV510 into the BV421 detector
    np.testing.assert_array_equal(matrix, SPILLOVER)


def test_flowkit_reads_the_file_without_options(fcs: tuple[str, Path, flowio.FlowData]) -> None:
    _, path, _ = fcs
    sample = flowkit.Sample(path)
    assert sample.event_count == 30_000
    assert [sample.pnn_labels[i] for i in sample.fluoro_indices] == FLUORESCENCE
    assert [sample.pnn_labels[i] for i in sample.scatter_indices] == ["FSC-A", "FSC-H", "SSC-A"]
    assert sample.pnn_labels[sample.time_index] == "Time"
    scatter = sample.get_events(source="raw")[:, :3]
    assert scatter.min() > 0 and scatter.max() <= 262143
