"""The lab's validated LOD95 table: read as written, refused with one sentence naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.config.lod_table import read_lod_table
from rapidrelease.errors import ConfigError


def test_the_table_keys_organisms_by_name_case_folded_and_by_taxid(tmp_path: Path) -> None:
    table = tmp_path / "lod95.tsv"
    table.write_text(
        "# from validation report VAL-2026-014 (probit over 6 levels x 12 replicates)\n"
        "organism\tlod95_cfu_per_ml\treplicates\n"
        "Staphylococcus aureus\t4.5\t72\n"
        "5061\t12\t72\n"
    )
    assert read_lod_table(table) == {"staphylococcus aureus": 4.5, "5061": 12.0}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the LOD table is empty"),
        ("organism\tlod\nS. aureus\t4\n", "the LOD table has no column 'lod95_cfu_per_ml'"),
        (
            "organism\tlod95_cfu_per_ml\nS. aureus\t0\n",
            "line 2: lod95_cfu_per_ml of S. aureus is '0', not a positive",
        ),
        ("organism\tlod95_cfu_per_ml\nS. aureus\tn/a\n", "line 2: lod95_cfu_per_ml of S. aureus is 'n/a'"),
        ("organism\tlod95_cfu_per_ml\nS. aureus\t4\ns. AUREUS\t5\n", "line 3: s. AUREUS is given twice"),
        ("organism\tlod95_cfu_per_ml\n\t4\n", "line 2: names no organism"),
    ],
)
def test_a_bad_table_is_refused_naming_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    table = tmp_path / "lod95.tsv"
    table.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_lod_table(table)
    assert str(caught.value).startswith(str(table)) and problem in str(caught.value)


def test_a_missing_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the LOD table cannot be read"):
        read_lod_table(tmp_path / "absent.tsv")
