"""A package is checked before it is pooled: its manifest's schema and version, every file's SHA-256,
and no file the manifest does not list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rapidrelease.errors import ShareError
from rapidrelease.share.export import ExportSettings, build_tables
from rapidrelease.share.package import MANIFEST, read_package, write_package


@pytest.fixture
def package(tmp_path: Path, archive_lots) -> Path:
    lots, _ = archive_lots
    tables, stated = build_tables(lots, ExportSettings(min_lots=5))
    write_package(tmp_path / "pkg", tables, "0123456789ab", stated, "2026-W49")
    return tmp_path / "pkg"


def test_a_package_reads_back_as_written(package: Path):
    read = read_package(package)
    assert read.program == "0123456789ab"
    assert read.manifest["settings"]["min_lots"] == 5
    viability = read.tables["summaries"].filter(attribute="viability").row(0, named=True)
    assert (viability["n_lots"], viability["n_fail"]) == (24, 1)
    assert {f["name"] for f in read.manifest["files"]} == {
        "summaries.parquet",
        "reasons.parquet",
        "organisms.parquet",
    }


def test_a_changed_byte_is_refused(package: Path):
    path = package / "summaries.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ShareError, match=r"summaries\.parquet: its SHA-256 is not the manifest.s"):
        read_package(package)


def test_a_file_the_manifest_does_not_list_is_refused(package: Path):
    (package / "notes.txt").write_text("SITE-A lots", encoding="utf-8")
    with pytest.raises(ShareError, match=r"holds notes\.txt, which its manifest does not list"):
        read_package(package)


def test_another_version_or_schema_is_refused(package: Path):
    manifest = json.loads((package / MANIFEST).read_text(encoding="utf-8"))
    (package / MANIFEST).write_text(json.dumps({**manifest, "schema_version": 2}), encoding="utf-8")
    with pytest.raises(ShareError, match="package version 2, not 1"):
        read_package(package)
    # a free-text key added to the manifest is not part of the format
    (package / MANIFEST).write_text(json.dumps({**manifest, "site": "SITE-A"}), encoding="utf-8")
    with pytest.raises(ShareError, match="does not follow the package schema"):
        read_package(package)


def test_an_export_never_writes_among_other_files(tmp_path: Path, archive_lots):
    lots, _ = archive_lots
    tables, stated = build_tables(lots, ExportSettings(min_lots=5))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "release.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ShareError, match="is not a package"):
        write_package(tmp_path / "results", tables, "0123456789ab", stated, "2026-W49")
