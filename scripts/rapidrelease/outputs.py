"""Writing outputs so that a reader never sees a half-written file.

Every file rapidrelease writes goes to a temporary name in the same folder and is renamed into
place only when complete (``os.replace`` is atomic on POSIX file systems). A run killed part-way
leaves either the previous complete file or none, never a truncated one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # polars costs 34 MB of memory to import; only table writers need it
    import polars as pl

__all__ = [
    "atomic_path",
    "dumps_json",
    "input_record",
    "sha256_file",
    "write_json",
    "write_table",
    "write_text",
]


def _file_mode() -> int:
    # mkstemp creates files readable by their owner only; give outputs the mode open() would (umask).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _atomic_text(path: Path) -> Iterator[IO[str]]:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        yield fh


def dumps_json(obj: Any) -> str:
    """Serialise ``obj`` the one way rapidrelease writes JSON: indented, UTF-8, keys in insertion order."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON (see :func:`dumps_json`) atomically."""
    text = dumps_json(obj)
    with _atomic_text(path) as fh:
        fh.write(text)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    with _atomic_text(path) as fh:
        fh.write(text)


def write_table(df: pl.DataFrame, tsv_path: Path, parquet_path: Path | None = None) -> None:
    """Write a table as TSV for people and, when ``parquet_path`` is given, as Parquet for machines."""
    with atomic_path(tsv_path) as tmp:
        df.write_csv(tmp, separator="\t")
    if parquet_path is not None:
        with atomic_path(parquet_path) as tmp:
            df.write_parquet(tmp)


def sha256_file(path: Path, block_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes as 64 lower-case hex digits, read in ``block_size``-byte blocks."""
    import hashlib  # OpenSSL costs 3.6 MB of memory; the classifier's processes never hash a file

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


def input_record(path: Path, role: str) -> dict[str, Any]:
    """An input file for the audit trail: role, path, SHA-256 and size in bytes (None when it is missing)."""
    path = Path(path)
    entry: dict[str, Any] = {"role": role, "path": str(path), "sha256": None, "size_bytes": None}
    if path.is_file():
        entry["sha256"] = sha256_file(path)
        entry["size_bytes"] = path.stat().st_size
    return entry
