"""A de-identified package on disk: its tables as Parquet, its manifest, and the check of both.

A package is a folder::

    manifest.json       format, schema version, program pseudonym, export settings, and for each
                        table file its name, SHA-256, size, rows and columns
    summaries.parquet   per platform and shared attribute: lots, results, values' mean, SD, quantiles
    reasons.parquet     per platform and shared attribute: lots by result and reason category
    organisms.parquet   per platform: organisms the sterility assays detected, by lots
    lots.parquet        (only when exported with lot rows) one row per lot and attribute

:func:`write_package` writes it; :func:`read_package` refuses, with one sentence naming the folder
and the problem, a package whose manifest does not follow ``workflow/schemas/share_manifest.schema.json``,
is of another format version, lists a file that is missing or whose bytes changed, or sits beside a
file it does not list, or whose tables do not have the columns of this version. The column sets
(:data:`TABLES`) are the contract between :mod:`.export` and :mod:`.combine`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl

from rapidrelease.config.schemas import SCHEMA_DIR
from rapidrelease.config.vocabulary import PLATFORM_COLUMNS
from rapidrelease.errors import ShareError
from rapidrelease.outputs import atomic_path, dumps_json, sha256_file, write_text
from rapidrelease.records import loads_strict

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "MANIFEST",
    "TABLES",
    "Package",
    "write_package",
    "read_package",
]

FORMAT = "rapidrelease-share"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"

_PLATFORM: dict[str, Any] = {column: pl.String for column in PLATFORM_COLUMNS} | {"platform": pl.String}
_STATISTICS: dict[str, Any] = {
    "n_lots": pl.Int64,
    "n_pass": pl.Int64,
    "n_fail": pl.Int64,
    "n_inconclusive": pl.Int64,
    "n_values": pl.Int64,
    "mean": pl.Float64,
    "sd": pl.Float64,
    "q05": pl.Float64,
    "q25": pl.Float64,
    "q50": pl.Float64,
    "q75": pl.Float64,
    "q95": pl.Float64,
    "noise_scale_count": pl.Float64,
    "noise_scale_sum": pl.Float64,
}

TABLES: Mapping[str, Mapping[str, Any]] = {
    "summaries": {**_PLATFORM, "attribute": pl.String, "unit": pl.String, "kind": pl.String, **_STATISTICS},
    "reasons": {
        **_PLATFORM,
        "attribute": pl.String,
        "result": pl.String,
        "category": pl.String,
        "lots": pl.Int64,
    },
    "organisms": {**_PLATFORM, "organism": pl.String, "lots": pl.Int64},
    "lots": {
        "lot_key": pl.String,
        "collected_week": pl.String,
        **_PLATFORM,
        "attribute": pl.String,
        "result": pl.String,
        "category": pl.String,
        "value": pl.Float64,
        "hours_to_result": pl.Float64,
    },
}
"""Each table's columns and their Polars types, in file order."""

REQUIRED_TABLES = ("summaries", "reasons", "organisms")


@dataclass(frozen=True)
class Package:
    """A package as read and checked: its folder, manifest and tables (``lots`` only if exported)."""

    path: Path
    manifest: Mapping[str, Any]
    tables: Mapping[str, pl.DataFrame]

    @property
    def program(self) -> str:
        """The program's pseudonym (no name: a keyed hash or a random token made at export)."""
        return str(self.manifest["program"])


def empty_table(name: str) -> pl.DataFrame:
    """A table of ``name`` with its columns and no rows."""
    return pl.DataFrame(schema=dict(TABLES[name]))


def write_package(
    out_dir: Path, tables: Mapping[str, pl.DataFrame], program: str, settings: Mapping[str, Any], week: str
) -> Path:
    """Write ``tables`` (names of :data:`TABLES`) as Parquet and the manifest into ``out_dir``.

    ``out_dir`` may exist only if empty or if it holds an earlier package (which is replaced), so
    that an export can never mix its files with a site's other files. Returns the manifest's path.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ShareError(f"{out_dir}: is a file, not a folder for the package.")
        present = {p.name for p in out_dir.iterdir()}
        if present and MANIFEST not in present:
            raise ShareError(f"{out_dir}: holds files and is not a package; choose an empty or new folder.")
        for name in present:
            if name != MANIFEST and name.removesuffix(".parquet") not in TABLES:
                raise ShareError(f"{out_dir}: holds {name}, which is not part of a package.")
        for name in present:
            (out_dir / name).unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in tables.items():
        expected = dict(TABLES[name])
        table = frame.select([pl.col(c).cast(t) for c, t in expected.items()])
        path = out_dir / f"{name}.parquet"
        with atomic_path(path) as tmp:
            # Parquet with statistics off: the column statistics are a second copy of the values
            # in the file's footer, which a reader of the tables would not see
            table.write_parquet(tmp, compression="zstd", statistics=False)
        files.append(
            {
                "name": path.name,
                "table": name,
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "rows": table.height,
                "columns": list(expected),
            }
        )
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "program": program,
        "exported_week": week,
        "settings": dict(settings),
        "files": files,
    }
    path = out_dir / MANIFEST
    write_text(path, dumps_json(manifest))
    return path


@functools.cache
def _manifest_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / "share_manifest.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def read_package(path: Path) -> Package:
    """Read and check the package in folder ``path`` (see the module's description)."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ShareError(f"{path}: is not a package (it has no {MANIFEST}).")
    try:
        manifest = loads_strict(manifest_path.read_text(encoding="utf-8"), "manifest")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ShareError(f"{manifest_path}: is not a complete JSON manifest ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ShareError(f"{manifest_path}: is not the manifest of a {FORMAT} package.")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ShareError(
            f"{manifest_path}: is of package version {manifest.get('schema_version')!r}, not "
            f"{SCHEMA_VERSION}; export it again with this version of rapidrelease."
        )
    errors = sorted(_manifest_validator().iter_errors(manifest), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "the top level"
        raise ShareError(
            f"{manifest_path}: does not follow the package schema at {where} ({errors[0].message})."
        )
    listed = {entry["name"]: entry for entry in manifest["files"]}
    unlisted = sorted(p.name for p in path.iterdir() if p.name != MANIFEST and p.name not in listed)
    if unlisted:
        raise ShareError(f"{path}: holds {unlisted[0]}, which its manifest does not list.")
    tables: dict[str, pl.DataFrame] = {}
    for name, entry in listed.items():
        file = path / name
        if not file.is_file():
            raise ShareError(f"{file}: is listed in the manifest but missing.")
        if sha256_file(file) != entry["sha256"] or file.stat().st_size != entry["bytes"]:
            raise ShareError(f"{file}: its SHA-256 is not the manifest's: it changed after export.")
        table = entry["table"]
        expected = dict(TABLES[table])
        try:
            frame = pl.read_parquet(file)
        except Exception as exc:  # polars raises several types for a file that is not Parquet
            raise ShareError(f"{file}: is not a readable Parquet table ({type(exc).__name__}).") from None
        if dict(frame.schema) != expected or frame.height != entry["rows"]:
            raise ShareError(
                f"{file}: does not have the columns and rows of a {table} table of this version."
            )
        tables[table] = frame
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise ShareError(f"{path}: has no {missing[0]} table.")
    return Package(path, manifest, tables)


def package_sha256(path: Path) -> str:
    """The SHA-256 of a package's manifest, which pins every file's SHA-256: the package's identity."""
    return hashlib.sha256((Path(path) / MANIFEST).read_bytes()).hexdigest()
