"""The schemas in workflow/schemas/: valid, documented, and in step with the code that applies them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from rapidrelease.config.schemas import (
    ISO_TIME_PATTERN,
    NAME_PATTERN,
    SAFE_ID_PATTERN,
    SCHEMA_DIR,
    in_document_order,
    load_schema,
    schema_problems,
)
from rapidrelease.config.specs import COMPARISONS
from rapidrelease.config.vocabulary import ALL_ROLES, DOSE_ASSAY, FLOW_ASSAYS, READS_ASSAYS, ROLES_OF_ASSAY

INPUT_SCHEMAS = ("config.schema.yaml", "lots.schema.yaml", "units.schema.yaml", "specs.schema.yaml")


def properties_of(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, property schema) under any ``properties`` in ``schema``."""
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, sub in schema.items():
            yield from properties_of(sub, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, sub in enumerate(schema):
            yield from properties_of(sub, f"{path}[{index}]")


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMA_DIR.glob("*.schema.*")))
def test_schema_is_valid_json_schema_2020_12(name: str) -> None:
    # every shipped schema, here once: the jobs that read them do not check them again
    schema = yaml.safe_load((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    # what the jobs read through libyaml is what PyYAML's own parser reads
    assert load_schema(name) == schema


@pytest.mark.parametrize("name", [*INPUT_SCHEMAS, "release.schema.json"])
def test_every_property_is_described_for_the_lab(name: str) -> None:
    schema = load_schema(name)
    undescribed = [
        path
        for path, sub in properties_of(schema)
        # if/then branches only narrow properties described where they are declared.
        if not str(sub.get("description", "")).strip() and not any(s in path for s in ("/if", "/then"))
    ]
    assert undescribed == []


def test_release_schema_is_plain_json() -> None:
    assert json.loads((SCHEMA_DIR / "release.schema.json").read_text(encoding="utf-8"))["title"].startswith(
        "rapidrelease release decision"
    )


def test_identifier_patterns_match_the_code() -> None:
    lots, units, specs = (
        load_schema(n) for n in ("lots.schema.yaml", "units.schema.yaml", "specs.schema.yaml")
    )
    attribute = specs["properties"]["specs"]["additionalProperties"]["properties"]["attributes"]
    assert lots["properties"]["lot_id"]["pattern"] == SAFE_ID_PATTERN
    assert lots["properties"]["spec"]["pattern"] == SAFE_ID_PATTERN
    assert lots["properties"]["collected_at"]["pattern"] == ISO_TIME_PATTERN
    assert units["properties"]["lot_id"]["pattern"] == SAFE_ID_PATTERN
    assert units["properties"]["unit_id"]["pattern"] == SAFE_ID_PATTERN
    assert specs["properties"]["specs"]["propertyNames"]["pattern"] == SAFE_ID_PATTERN
    assert attribute["propertyNames"]["pattern"] == NAME_PATTERN
    assert attribute["additionalProperties"]["properties"]["metric"]["pattern"] == NAME_PATTERN
    assert attribute["additionalProperties"]["properties"]["unit_id"]["pattern"] == SAFE_ID_PATTERN


def test_specs_name_only_assays_and_roles_a_unit_can_have() -> None:
    units = load_schema("units.schema.yaml")["properties"]
    specs = load_schema("specs.schema.yaml")
    attribute = specs["properties"]["specs"]["additionalProperties"]["properties"]["attributes"]
    keys = attribute["additionalProperties"]["properties"]
    # and the dose, computed from the lot sheet and the phenotype unit
    assert keys["assay"]["enum"] == [*units["assay"]["enum"], DOSE_ASSAY]
    assert keys["role"]["enum"] == units["role"]["enum"]
    assert tuple(keys["comparison"]["enum"]) == COMPARISONS


def test_the_sheets_schema_and_the_package_share_one_vocabulary() -> None:
    units = load_schema("units.schema.yaml")["properties"]
    assert units["assay"]["enum"] == [*FLOW_ASSAYS, *READS_ASSAYS] == list(ROLES_OF_ASSAY)
    assert set(units["role"]["enum"]) == ALL_ROLES


def test_problems_read_in_document_order() -> None:
    schema = load_schema("config.schema.yaml")
    config = {"specs": 1, "lots": 2, "units": "u", "results": "r", "deadline_hours": -1}
    assert [keys for keys, _ in schema_problems(config, schema)] == [
        ("specs",),
        ("lots",),
        ("deadline_hours",),
    ]
    assert in_document_order({"b": 1, "a": 2}, [(("a",), "x"), (("b",), "y"), (("b",), "y")]) == [
        (("b",), "y"),
        (("a",), "x"),
    ]


def test_safe_id_pattern_stays_exact_inside_a_path_regex() -> None:
    # The workflow builds wildcard_constraints from it without ^ and $.
    wildcard = SAFE_ID_PATTERN.removeprefix("^").removesuffix("$")
    path = re.compile(f"results/(?P<lot>{wildcard})/units/(?P<unit>{wildcard})/metrics.json")
    assert path.fullmatch("results/DEMO-001/units/PHENO.2/metrics.json").groupdict() == {
        "lot": "DEMO-001",
        "unit": "PHENO.2",
    }
    assert path.fullmatch("results/DEMO-001/units/../metrics.json") is None
    assert path.fullmatch("results/a..b/units/PHENO/metrics.json") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- type: object\n", "not a valid JSON schema (it is not a mapping of keywords)."),
        ("type: [object\n", "not a valid JSON schema ("),
        (None, "schema not found; rapidrelease reads its schemas from the project's workflow/schemas/."),
    ],
)
def test_a_schema_that_is_no_schema_is_one_sentence_naming_the_file(tmp_path, monkeypatch, text, problem):
    # the jobs no longer check a schema against the metaschema; what they can still meet is a file
    # that is not YAML, not a mapping, or not there
    from rapidrelease.config import schemas
    from rapidrelease.errors import ConfigError

    monkeypatch.setattr(schemas, "SCHEMA_DIR", tmp_path)
    name = f"broken-{len(problem)}-{text is None}.schema.yaml"  # load_schema caches by name
    if text is not None:
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_schema(name)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / name}: {problem}")
    assert "\n" not in message and "Traceback" not in message
