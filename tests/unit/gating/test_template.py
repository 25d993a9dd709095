"""Loading gating templates: the paths of populations, and errors that say where a template is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.errors import TemplateError
from rapidrelease.gating.template import load_template, population_path


def test_demo_template_populations_in_evaluation_order(project_root: Path):
    tree = load_template(project_root / "resources/demo/car_t_phenotype.gatingml.xml").tree_for("any.fcs")
    paths = [population_path(p) for p, _ in tree.populations()]
    assert paths[:5] == [
        "Cells",
        "Cells/Singlets",
        "Cells/Singlets/Live",
        "Cells/Singlets/Live/CD3pos",
        "Cells/Singlets/Live/CD3pos/CARpos",
    ]
    # quadrants are populations of the quadrant gate, under the quadrant gate's parent
    parents = {population_path(p): population_path(parent) for p, parent in tree.populations()}
    assert (
        parents["Cells/Singlets/Live/CD3pos/CARpos/CD4vCD8/CD4posCD8neg"]
        == "Cells/Singlets/Live/CD3pos/CARpos"
    )
    assert len(paths) == 13


def test_a_workspace_gives_each_sample_its_own_gates_and_names_a_missing_one(shared_data: Path):
    workspace = load_template(shared_data / "fcs/coereba_aurora_seb/CytoML.wsp")
    assert len(workspace.sample_names) == 30
    tree = workspace.tree_for("2025_07_26_AB_02_NY068_02_SEB.fcs")
    assert [population_path(p) for p, _ in tree.populations()] == ["Vd2"]
    with pytest.raises(TemplateError) as err:
        workspace.tree_for("someone_else.fcs")
    assert str(err.value).startswith(
        "CytoML.wsp: the workspace has no sample named 'someone_else.fcs' (it has 30:"
    )


def test_an_invalid_gate_id_is_named_with_its_line(shared_data: Path):
    # a real derived template whose first gate id starts with '-', which XML ids may not
    with pytest.raises(TemplateError) as err:
        load_template(shared_data / "fcs/fungalight_attune_yeast/fungalight_gates_DERIVED.gatingml.xml")
    assert str(err.value) == (
        "fungalight_gates_DERIVED.gatingml.xml line 3: not valid GatingML 2.0 (Element 'RectangleGate', "
        "attribute 'id': '-outlier' is not a valid value of the atomic type 'xs:ID')."
    )


def test_malformed_xml_and_missing_files(tmp_path: Path):
    broken = tmp_path / "broken.xml"
    broken.write_text(
        '<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating">\n<a>'
    )
    with pytest.raises(TemplateError, match=r"^broken\.xml line 2: not well-formed XML"):
        load_template(broken)
    with pytest.raises(TemplateError, match=r"absent\.xml: gating template not found\.$"):
        load_template(tmp_path / "absent.xml")
    not_wsp = tmp_path / "notes.wsp"
    not_wsp.write_text("not a workspace")
    with pytest.raises(TemplateError, match=r"^notes\.wsp: not a readable FlowJo workspace"):
        load_template(not_wsp)
