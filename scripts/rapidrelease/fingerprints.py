"""Content fingerprints of input files, so that reruns follow bytes, not clocks.

Snakemake reruns a job when an input is newer than its outputs. A file replaced by an older one
(``cp -p``, ``rsync -t``, a restore from backup) or touched back in time keeps a lot's decision
resting on bytes nobody measured. The workflow therefore gives every job the SHA-256 of its inputs
as a parameter: Snakemake records a job's parameters with its outputs and reruns the job when they
change (its ``params`` rerun trigger), whatever the files' times.

Hashing every input at every run would read every data file each time the DAG is built, so the
digests are cached by what the file system says of a file: size, modification and change times,
inode and device. The change time (ctime) cannot be set by ``touch`` or ``cp -p``: any rewrite gives
the file a new one, so a cached digest is reused only for a file untouched since it was hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rapidrelease.outputs import sha256_file

__all__ = ["Fingerprints"]

_VERSION = 1


class Fingerprints:
    """SHA-256 digests of files, cached in ``cache_path`` by their stat (see the module docstring)."""

    def __init__(self, cache_path: Path) -> None:
        self.cache_path = Path(cache_path)
        self._digests: dict[str, tuple[list[int], str]] = {}
        self._changed = False
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if data.get("version") == _VERSION:
                self._digests = {k: (list(v[0]), str(v[1])) for k, v in data["files"].items()}
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            self._digests = {}  # no cache, or one from another version: hash again

    def sha256(self, path: Path) -> str | None:
        """The SHA-256 of the file's bytes now, or None when it does not exist (or is not a file)."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        key = os.path.abspath(path)
        signature = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]
        cached = self._digests.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        digest = sha256_file(Path(path))
        self._digests[key] = (signature, digest)
        self._changed = True
        return digest

    def of(self, paths: Iterable[Path | str | None]) -> str:
        """One digest of the files' paths and contents (a missing file counts as missing)."""
        combined = hashlib.sha256()
        for path in paths:
            if path is None:
                continue
            combined.update(f"{path}\0{self.sha256(Path(path)) or 'missing'}\n".encode())
        return combined.hexdigest()

    def save(self) -> None:
        """Write the cache atomically if anything was hashed; a failure only costs hashing again."""
        if not self._changed:
            return
        data = {"version": _VERSION, "files": {k: [v[0], v[1]] for k, v in self._digests.items()}}
        tmp = None
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".fingerprints.", dir=self.cache_path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, self.cache_path)
            self._changed = False
        except OSError:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
