"""``rapidrelease fcs-info`` run as a real process: JSON per readable file, one line per failure."""

from __future__ import annotations

import json
import subprocess
import sys


def _fcs_info(*paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rapidrelease", "fcs-info", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_readable_and_unreadable_files_together(fcsparser_cytometers, tmp_path):
    good = [
        fcsparser_cytometers / "Cytek_xP5" / "Cytek_xP5.fcs",
        fcsparser_cytometers / "MiltenyiBiotec" / "FCS3.1" / "SG_2014-09-26_Duplicate_Names.fcs",
    ]
    corrupted = fcsparser_cytometers / "corrupted" / "corrupted.fcs"
    header_only = fcsparser_cytometers / "cytek-nl-2000" / "sample_header.fcs"
    missing = tmp_path / "missing.fcs"
    result = _fcs_info(good[0], corrupted, good[1], header_only, missing)
    assert result.returncode == 1
    described = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["sample_id"] for d in described] == ["Cytek_xP5.fcs", "SG_2014-09-26_Duplicate_Names.fcs"]
    assert [d["n_events"] for d in described] == [23126, 8129]
    assert described[1]["warnings"][0].startswith(
        "the DATA end offset (TEXT 294900) is one past the last byte"
    )
    errors = result.stderr.splitlines()
    assert len(errors) == 3
    assert errors[0] == "rapidrelease: corrupted.fcs: is not an FCS file (it does not start with 'FCS')."
    assert errors[1].startswith("rapidrelease: sample_header.fcs: is truncated: DATA needs 2160000 bytes")
    assert errors[2].startswith("rapidrelease: missing.fcs: does not exist")
    assert "Traceback" not in result.stderr


def test_all_readable_files_exit_zero(fcsparser_cytometers):
    result = _fcs_info(fcsparser_cytometers / "cyflow_cube_8" / "cyflow_cube_8.fcs")
    assert result.returncode == 0 and result.stderr == ""
    described = json.loads(result.stdout)
    assert described["fcs_version"] == "3.0" and described["datatype"] == "I"
    assert [c["bits"] for c in described["channels"]] == [16] * 8 + [32, 8]
