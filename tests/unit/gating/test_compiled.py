"""Compiled templates cached by content: a cached tree gates exactly as the parsed one, without FlowKit."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.fcs.reader import read_fcs
from rapidrelease.gating.compiled import load_compiled_template, use_template_cache
from rapidrelease.gating.engine import SampleLayout, compile_tree, gate_events, gate_fcs
from rapidrelease.gating.template import load_template

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "resources" / "demo"


@pytest.fixture
def cache(tmp_path: Path):
    use_template_cache(tmp_path / "templates")
    yield tmp_path / "templates"
    use_template_cache(None)


def test_every_compliance_gate_gives_the_same_events_from_the_cache(shared_data: Path, cache: Path):
    # the ISAC suite uses every GatingML transform (linear, log, hyperlog, logicle, asinh) and ratio
    gate_ref = shared_data / "fcs" / "flowkit" / "gate_ref"
    fcs = read_fcs(gate_ref / "data1.fcs")
    events = fcs.events()
    templates = [p for p in sorted((gate_ref / "gml").glob("*.xml")) if "attr_testing" not in p.name]
    compared = written = 0
    for path in templates:
        parsed = gate_events(events, compile_tree(load_template(path).tree_for(""), SampleLayout.of(fcs)))
        load_compiled_template(path)  # parses, and writes the cache unless a ratio transform is named
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        written += (cache / f"{digest}.gatetree").is_file()
        cached = gate_events(
            events, compile_tree(load_compiled_template(path).tree_for(""), SampleLayout.of(fcs))
        )
        assert parsed.keys() == cached.keys(), path.name
        for population, mask in parsed.items():
            assert np.array_equal(mask, cached[population]), (path.name, population)
            compared += 1
    # 133 populations of 46 templates; the 4 that name a ratio transform are parsed every time
    assert (compared, written, len(templates)) == (133, 42, 46)


def test_the_demo_phenotype_tube_counts_the_same_from_a_cached_template(cache: Path):
    template = DEMO / "car_t_phenotype.gatingml.xml"
    fcs = read_fcs(DEMO / "DEMO-001" / "DEMO-001_phenotype.fcs")
    parsed = gate_fcs(fcs, load_template(template).tree_for(""))
    load_compiled_template(template)
    cached = gate_fcs(fcs, load_compiled_template(template).tree_for(""))
    counts = {p.path: p.count for p in parsed.populations}
    assert counts == {p.path: p.count for p in cached.populations}
    # the demo's viability: 23,217 live of 26,349 single cells (release.json of DEMO-001)
    assert (cached.count("Cells/Singlets/Live"), cached.count("Cells/Singlets")) == (23_217, 26_349)


def test_a_cached_template_is_read_without_importing_flowkit(cache: Path):
    template = DEMO / "car_t_phenotype.gatingml.xml"
    load_compiled_template(template)
    probe = (
        "import sys; from pathlib import Path;"
        "from rapidrelease.gating.compiled import load_compiled_template, use_template_cache;"
        f"use_template_cache(Path({str(cache)!r}));"
        f"tree = load_compiled_template(Path({str(template)!r})).tree_for('');"
        "print(len(tree.nodes), 'flowkit' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    nodes, flowkit_loaded = done.stdout.split()
    assert int(nodes) == len(load_template(template).tree_for("").nodes) and flowkit_loaded == "False"


def test_an_edited_template_or_a_spoiled_cache_file_is_parsed_again(tmp_path: Path, cache: Path):
    template = tmp_path / "phenotype.xml"
    text = (DEMO / "car_t_phenotype.gatingml.xml").read_text()
    template.write_text(text)
    load_compiled_template(template)
    first = cache / f"{hashlib.sha256(template.read_bytes()).hexdigest()}.gatetree"
    assert json.loads(first.read_text())["template_sha256"] == first.stem
    # the live gate's viability-dye bound moved (0.55 to 0.45) under the same file name: a new key,
    # never the old tree
    edited = text.replace(
        'transformation-ref="Logicle_262144_0.5_4.5_0" gating:max="0.55"',
        'transformation-ref="Logicle_262144_0.5_4.5_0" gating:max="0.45"',
        1,
    )
    assert edited != text
    template.write_text(edited)
    assert _live_bound(load_compiled_template(template)) == 0.45 and len(list(cache.glob("*.gatetree"))) == 2
    # a cache file cut short is written again from the template
    first.write_text(first.read_text()[:100])
    template.write_text(text)
    assert _live_bound(load_compiled_template(template)) == 0.55
    assert json.loads(first.read_text())["template_sha256"] == first.stem


def _live_bound(template) -> float | None:
    live = next(node for node in template.tree_for("").nodes if node.name == "Live")
    return live.bounds[0][1]
