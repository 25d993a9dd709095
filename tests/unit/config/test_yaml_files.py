"""Strict YAML reading: repeated keys refused, decimals kept as written."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rapidrelease.config.yaml_files import load_yaml
from rapidrelease.errors import ConfigError


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


def test_an_exponent_without_its_sign_is_a_number(tmp_path: Path) -> None:
    # YAML 1.1 (PyYAML) reads 1.0e8 as text; a dose limit written so must still be a number
    path = tmp_path / "specs.yaml"
    path.write_text("lower: 1.0e8\nupper: 2e9\nsigned: 1.5e+6\nname: 2.5e9 cells\nid: e5\n")
    assert load_yaml(path)[0] == {
        "lower": 1e8,
        "upper": 2e9,
        "signed": 1.5e6,
        "name": "2.5e9 cells",
        "id": "e5",
    }
    exact = load_yaml(path, exact_decimals=True)[0]
    assert exact["lower"] == Decimal("1.0e8") and exact["upper"] == Decimal("2e9")
