"""Content fingerprints: a rewrite is seen whatever the file's times; an untouched file is not read again."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from rapidrelease import fingerprints
from rapidrelease.fingerprints import Fingerprints


def test_a_file_copied_over_with_its_old_time_gets_its_new_digest(tmp_path: Path) -> None:
    tube, other = tmp_path / "tube.fcs", tmp_path / "other.fcs"
    tube.write_bytes(b"the lot's own tube")
    other.write_bytes(b"another lot's tube")
    os.utime(other, (1_600_000_000, 1_600_000_000))
    cache = tmp_path / "cache.json"
    first = Fingerprints(cache)
    before = first.of([tube])
    first.save()
    shutil.copy2(other, tube)  # cp -p: the older modification time comes along
    assert tube.stat().st_mtime == 1_600_000_000
    after = Fingerprints(cache)
    assert after.sha256(tube) == hashlib.sha256(b"another lot's tube").hexdigest()
    assert after.of([tube]) != before


def test_a_file_untouched_since_it_was_hashed_is_not_read_again(tmp_path: Path, monkeypatch) -> None:
    tube = tmp_path / "tube.fcs"
    tube.write_bytes(b"bytes")
    cache = tmp_path / "cache.json"
    first = Fingerprints(cache)
    digest = first.sha256(tube)
    first.save()
    monkeypatch.setattr(fingerprints, "sha256_file", lambda path: pytest.fail(f"{path} hashed again"))
    assert Fingerprints(cache).sha256(tube) == digest


def test_a_missing_file_and_a_damaged_cache_are_not_errors(tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    prints = Fingerprints(cache)
    assert prints.sha256(tmp_path / "absent.fcs") is None
    assert prints.of([tmp_path / "absent.fcs"]) == prints.of([tmp_path / "absent.fcs"])
    assert prints.of([tmp_path / "absent.fcs"]) != prints.of([tmp_path / "other.fcs"])
