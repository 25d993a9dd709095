"""Strict YAML reading: repeated keys refused, decimals kept as written."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rapidrelease.errors import ConfigError
from rapidrelease.release.yaml_files import load_yaml


def test_exact_decimals_keep_the_written_decimals(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: 4.50\nb: 70\nc: 1_000.25\nd: .inf\ne: 0.1\n", encoding="utf-8")
    content, sha256 = load_yaml(path, exact_decimals=True)
    assert content["a"] == Decimal("4.50") and str(content["a"]) == "4.50"
    assert content["b"] == 70 and isinstance(content["b"], int)
    assert content["c"] == Decimal("1000.25")
    assert content["d"] == float("inf")
    assert content["e"] == Decimal("0.1")  # not the binary 0.1000000000000000055...
    assert len(sha256) == 64
    plain, _ = load_yaml(path)
    assert plain["a"] == 4.5 and isinstance(plain["a"], float)


def test_key_repeated_in_a_nested_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("x:\n  y: 1\n  z: 2\n  y: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a.yaml line 4: not valid YAML \(key 'y' is written twice\)\.$"):
        load_yaml(path)


def test_same_key_in_different_mappings_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: {limit: 1}\nb: {limit: 2}\n", encoding="utf-8")
    assert load_yaml(path)[0] == {"a": {"limit": 1}, "b": {"limit": 2}}


def test_python_objects_are_not_constructed(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a.yaml line 1: not valid YAML \("):
        load_yaml(path)
