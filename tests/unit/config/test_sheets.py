"""Reading TSV sheets with their line numbers."""

from __future__ import annotations

from pathlib import Path

from rapidrelease.config.schemas import load_schema
from rapidrelease.config.sheets import read_sheet, row_records, sheet_problems


def test_rows_keep_their_line_numbers_and_short_rows_are_padded(tmp_path: Path) -> None:
    path = tmp_path / "units.tsv"
    path.write_text(
        "# comment\nlot_id\tunit_id\tassay\trole\tpath\tpath2\ttemplate\tvolume_ul\n\n"
        "L1\tU1\tsterility_reads\ttest\tr1.fq\n",
        encoding="utf-8",
    )
    problems: list[str] = []
    sheet = read_sheet(path, load_schema("units.schema.yaml"), problems)
    assert problems == []
    assert sheet is not None and sheet.data_lines == 1
    (row,) = sheet.rows
    assert row.line == 4
    assert row.cells["path"] == "r1.fq" and row.cells["volume_ul"] == ""


def test_a_number_column_reads_plain_decimals_only(tmp_path: Path) -> None:
    path = tmp_path / "units.tsv"
    rows = ["1.5e2", "nan", "inf", "0x10", "1e999", " 25 "]
    path.write_text(
        "lot_id\tunit_id\tassay\trole\tpath\tpath2\ttemplate\tvolume_ul\n"
        + "".join(f"L1\tU{i}\tsterility_reads\ttest\tr.fq\t\t\t{v}\n" for i, v in enumerate(rows)),
        encoding="utf-8",
    )
    schema = load_schema("units.schema.yaml")
    sheet = read_sheet(path, schema, [])
    checked = row_records(sheet, schema)
    assert [item.record["volume_ul"] for item in checked] == [150.0, "nan", "inf", "0x10", "1e999", 25.0]
    assert [line.split(": ", 1)[1] for line in sheet_problems(checked)] == [
        "'nan' is not a number.",
        "'inf' is not a number.",
        "'0x10' is not a number.",
        "'1e999' is not a number.",
    ]
