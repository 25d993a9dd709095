"""The gating engine against independent truth: the ISAC GatingML 2.0 compliance suite event by event,
FlowKit's and FlowJo's counts on real FlowJo workspaces, and FlowKit run side by side."""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import flowkit
import numpy as np
import pytest

from rapidrelease.errors import GatingError
from rapidrelease.fcs.reader import read_fcs
from rapidrelease.gating.engine import (
    SampleLayout,
    compile_tree,
    gate_chunks,
    gate_events,
    gate_fcs,
    pull_back_bound,
    transform_domain_floor,
)
from rapidrelease.gating.template import load_template, population_path

# The suite's truth file for each gate id; ParRectangle1's file carries the name of its test case.
TRUTH_FILE_OF_GATE = {"ParRectangle1": "ParQuadRect"}

FLOWJO_WORKSPACES = [
    ("flowkit/simple_diamond_example/simple_diamond_example_quad_gate.wsp", "cmp_flowkit_diamond_quad.tsv"),
    ("flowkit/simple_diamond_example/test_data_diamond_asinh_rect.wsp", "cmp_flowkit_diamond_asinh.tsv"),
    ("flowkit/simple_diamond_example/test_data_diamond_asinh_rect2.wsp", "cmp_flowkit_diamond_asinh2.tsv"),
    ("flowkit/simple_diamond_example/test_data_diamond_biex_rect.wsp", "cmp_flowkit_diamond_biex.tsv"),
    ("flowkit/simple_line_example/simple_poly_and_rect.wsp", "cmp_flowkit_line_polyrect.tsv"),
    ("flowkit/simple_line_example/simple_poly_and_rect_v2_poly50.wsp", "cmp_flowkit_line_poly50.tsv"),
    ("flowkit/simple_line_example/single_ellipse_51_events.wsp", "cmp_flowkit_line_ellipse.tsv"),
    ("coereba_aurora_seb/CytoML.wsp", "cmp_coereba_seb.tsv"),
]


@pytest.fixture(scope="module")
def gate_ref(shared_data: Path) -> Path:
    return shared_data / "fcs" / "flowkit" / "gate_ref"


def _compliance_templates(gate_ref: Path) -> list[Path]:
    # gml_range_gate_attr_testing.xml is deliberately not GatingML 2.0 (FlowKit refuses it too)
    return [p for p in sorted((gate_ref / "gml").glob("*.xml")) if "attr_testing" not in p.name]


def test_every_gatingml_compliance_gate_matches_the_isac_truth_event_by_event(gate_ref: Path):
    fcs = read_fcs(gate_ref / "data1.fcs")
    events = fcs.events()
    truth = {p.stem.removeprefix("Results_"): p for p in (gate_ref / "truth").glob("Results_*.txt")}
    checked: dict[str, int] = {}
    for template_path in _compliance_templates(gate_ref):
        tree = load_template(template_path).tree_for(fcs.sample_id)
        masks = gate_events(events, compile_tree(tree, SampleLayout.of(fcs)))
        for path, mask in masks.items():
            name = TRUTH_FILE_OF_GATE.get(path[-1], path[-1])
            if name not in truth:
                continue
            expected = np.loadtxt(truth[name], dtype=np.int8).astype(bool)
            mismatched = np.flatnonzero(mask != expected)
            assert mismatched.size == 0, (
                f"{template_path.name} {population_path(path)}: events {mismatched[:10]}"
            )
            checked[name] = int(mask.sum())
    assert sorted(checked) == sorted(truth), "every truth file of the suite was compared"
    # spot values from the suite's published results, as a reader can check them
    assert checked["Polygon1"] == 1582 and checked["Ellipse1"] == 203 and checked["ScaleRange4c"] == 1873


@pytest.mark.parametrize("chunk_size", [7, 1000, 4096, 1_000_000])
def test_chunk_size_never_changes_a_gate_result(gate_ref: Path, chunk_size: int):
    fcs = read_fcs(gate_ref / "data1.fcs")
    tree = load_template(gate_ref / "gml" / "gml_all_gates.xml").tree_for(fcs.sample_id)
    whole = gate_fcs(fcs, tree, chunk_size=fcs.n_events, keep_masks=True)
    chunked = gate_fcs(fcs, tree, chunk_size=chunk_size, keep_masks=True)
    assert whole.masks is not None and chunked.masks is not None
    for path, mask in whole.masks.items():
        assert np.array_equal(chunked.masks[path], mask), population_path(path)
    assert [p.count for p in chunked.populations] == [p.count for p in whole.populations]


def _read_cmp(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [row for row in csv.DictReader(fh, delimiter="\t") if row["path"] != "(root)"]


@pytest.mark.parametrize(("workspace", "truth_table"), FLOWJO_WORKSPACES)
def test_flowjo_workspace_counts_equal_flowkit_and_flowjo_where_flowkit_agrees(
    shared_data: Path, workspace: str, truth_table: str
):
    fcs_dir = shared_data / "fcs" / Path(workspace).parent
    template = load_template(shared_data / "fcs" / workspace)
    rows = _read_cmp(shared_data / "fcs" / "_truth" / truth_table)
    assert rows
    for row in rows:
        fcs = read_fcs(fcs_dir / row["sample"])
        result = gate_fcs(fcs, template.tree_for(fcs.sample_id))
        counts = {pop.path[-1]: pop.count for pop in result.populations}
        ours = counts[row["path"]]
        assert ours == int(row["flowkit"]), f"{row['sample']} {row['path']}"
        flowjo = int(row["flowjo"])
        flowkit_close = flowjo >= 0 and abs(int(row["flowkit"]) - flowjo) <= max(5, 0.005 * flowjo)
        if flowkit_close:
            assert abs(ours - flowjo) <= max(5, 0.005 * flowjo), f"{row['sample']} {row['path']} vs FlowJo"


def test_flowkit_gates_the_same_events_side_by_side_on_a_workspace(shared_data: Path):
    # FlowKit run here, not only its recorded counts: every population's membership, event by event
    workspace = (
        shared_data / "fcs" / "flowkit" / "simple_diamond_example" / "simple_diamond_example_quad_gate.wsp"
    )
    fcs_path = workspace.parent / "test_data_diamond_01.fcs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wsp = flowkit.Workspace(str(workspace), fcs_samples=str(fcs_path))
        sample_id = wsp.get_sample_ids()[0]
        wsp.analyze_samples(sample_id=sample_id, use_mp=False)
        flowkit_results = wsp.get_gating_results(sample_id)
    fcs = read_fcs(fcs_path)
    ours = gate_fcs(fcs, load_template(workspace).tree_for(fcs.sample_id), keep_masks=True)
    assert ours.masks is not None
    for path, mask in ours.masks.items():
        expected = flowkit_results.get_gate_membership(path[-1], gate_path=("root", *path[:-1]))
        assert np.array_equal(mask, expected), population_path(path)


def test_a_missing_channel_is_one_sentence_naming_file_gate_and_channel(gate_ref: Path, shared_data: Path):
    other = read_fcs(shared_data / "fcs" / "flowkit" / "simple_diamond_example" / "test_data_diamond_01.fcs")
    tree = load_template(gate_ref / "gml" / "gml_poly1_gate.xml").tree_for(other.sample_id)
    with pytest.raises(GatingError) as err:
        compile_tree(tree, SampleLayout.of(other))
    message = str(err.value)
    assert message.startswith("test_data_diamond_01.fcs: gate 'Polygon1' needs channel 'FL2-H'")
    assert "\n" not in message


def test_a_population_never_holds_an_event_its_parent_lacks(gate_ref: Path):
    fcs = read_fcs(gate_ref / "data1.fcs")
    tree = load_template(gate_ref / "gml" / "gml_all_gates.xml").tree_for(fcs.sample_id)
    result = gate_fcs(fcs, tree, keep_masks=True)
    assert result.masks is not None
    for path, parent in tree.populations():
        if parent:
            assert not np.any(result.masks[path] & ~result.masks[parent]), population_path(path)
    by_path = {p.path: p for p in result.populations}
    scale_par = by_path[("ScaleRect1", "ScalePar1")]
    assert scale_par.parent_count == by_path[("ScaleRect1",)].count


def test_zero_event_sample_gives_zero_counts_not_an_error(gate_ref: Path):
    fcs = read_fcs(gate_ref / "data1.fcs")
    tree = load_template(gate_ref / "gml" / "gml_all_gates.xml").tree_for(fcs.sample_id)
    compiled = compile_tree(tree, SampleLayout.of(fcs))
    result = gate_chunks("empty.fcs", [np.zeros((0, len(fcs.channels)))], compiled)
    assert result.n_events == 0
    assert all(p.count == 0 for p in result.populations)


TRANSFORMS = [
    flowkit.transforms.LogicleTransform(262144, 0.5, 4.5, 0),
    flowkit.transforms.LogicleTransform(10000, 1, 4, 0.5),
    flowkit.transforms.AsinhTransform(10000, 4, 1),
    flowkit.transforms.HyperlogTransform(10000, 1, 4.5, 0),
    flowkit.transforms.LinearTransform(10000, 500),
    flowkit.transforms.LogTransform(10000, 5),
    flowkit.transforms.WSPBiexTransform(negative=0, width=-10),
    flowkit.transforms.WSPLogTransform(offset=1, decades=4.5),
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: type(t).__name__)
def test_pulled_back_bounds_decide_exactly_like_the_transformed_comparison(transform):
    # The engine decides `T(x) >= bound` as `x >= r_hi` and `T(x) < bound` as `x < r_lo` for raw values
    # in the transform's domain, and transforms only the rest. Check that on a wide raw range and on
    # values packed against both edges of every band, where an error would show first.
    rng = np.random.default_rng(3)
    magnitudes = 10.0 ** rng.uniform(-4, 7, 20_000)
    raw = np.concatenate([magnitudes, -magnitudes, [0.0, -0.0]])
    transformed = np.asarray(transform.apply(raw.reshape(-1, 1))).reshape(-1)
    floor = transform_domain_floor(transform)
    bounds = np.quantile(np.unique(transformed[np.isfinite(transformed)]), [0.02, 0.25, 0.5, 0.75, 0.98])
    banded = 0
    for bound in bounds:
        band = pull_back_bound(transform, float(bound))
        if band is None:
            continue  # a bound on a flat stretch: the engine transforms every event instead
        banded += 1
        r_lo, r_hi = band
        steps = np.arange(1, 200, dtype=np.float64)
        near = np.concatenate(
            [r_lo - steps * 1e-13 * max(1.0, abs(r_lo)), r_hi + steps * 1e-13 * max(1.0, abs(r_hi))]
        )
        values = np.concatenate([raw, near, [r_hi, np.nextafter(r_lo, -np.inf)]])
        t = np.asarray(transform.apply(values.reshape(-1, 1))).reshape(-1)
        in_domain = np.ones(len(values), dtype=bool) if floor is None else values > floor
        assert np.all(t[in_domain & (values < r_lo)] < bound)
        assert np.all(t[in_domain & (values >= r_hi)] >= bound)
    assert banded >= 3, "most bounds should be decidable in raw units"


GML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML'
    ' xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"'
    ' xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">\n'
)


def _range_gate(gate_id: str, channel: str, comp_ref: str, low: float) -> str:
    return (
        f'<gating:RectangleGate gating:id="{gate_id}">'
        f'<gating:dimension gating:compensation-ref="{comp_ref}" gating:min="{low}">'
        f'<data-type:fcs-dimension data-type:name="{channel}"/></gating:dimension></gating:RectangleGate>\n'
    )


def test_a_malformed_spillover_only_stops_gates_that_compensate_with_it(tmp_path: Path):
    import fcsparser

    # Miltenyi's $SPILLOVER names 6 detectors but gives no values (the reader warns about it)
    fcs = read_fcs(
        Path(fcsparser.__file__).parent
        / "tests/data/FlowCytometers/MiltenyiBiotec/FCS3.1/EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs"
    )
    scatter = tmp_path / "scatter.xml"
    scatter.write_text(GML_HEAD + _range_gate("Big", "FSC-A", "uncompensated", 0) + "</gating:Gating-ML>\n")
    counted = gate_fcs(fcs, load_template(scatter).tree_for(fcs.sample_id))
    assert 0 < counted.count("Big") < fcs.n_events

    compensated = tmp_path / "compensated.xml"
    compensated.write_text(GML_HEAD + _range_gate("FL2pos", "FL2-A", "FCS", 0) + "</gating:Gating-ML>\n")
    with pytest.raises(GatingError) as err:
        gate_fcs(fcs, load_template(compensated).tree_for(fcs.sample_id))
    message = str(err.value)
    assert message.startswith(
        "EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs $SPILLOVER: spillover for 6 detectors"
    )
    assert message.endswith("and gate 'FL2pos' compensates with it.")


def test_a_singular_spillover_matrix_is_one_sentence_not_infinite_values(gate_ref: Path, tmp_path: Path):
    # the compliance suite's MySpill with PE's spectrum pasted over PerCP's: no compensation exists
    source = (gate_ref / "gml" / "gml_matrix_rect3_gate.xml").read_text(encoding="utf-8")
    head, fitc, pe, percp = re.split(r"(?=<transforms:spectrum>)", source)
    percp_tail = percp[percp.index("</transforms:spectrum>") + len("</transforms:spectrum>") :]
    template = tmp_path / "singular.xml"
    template.write_text(head + fitc + pe + pe.rstrip() + percp_tail, encoding="utf-8")
    fcs = read_fcs(gate_ref / "data1.fcs")
    with pytest.raises(GatingError) as err:
        gate_fcs(fcs, load_template(template).tree_for(fcs.sample_id))
    assert str(err.value).startswith(f"{fcs.sample_id}: the spillover matrix of matrix 'MySpill' of ")
    assert str(err.value).endswith("cannot be inverted (it is singular: column 3 has no pivot).")


def test_a_spillover_coefficient_that_is_no_number_is_one_sentence(gate_ref: Path, tmp_path: Path):
    source = (gate_ref / "gml" / "gml_matrix_rect3_gate.xml").read_text(encoding="utf-8")
    assert source.count('transforms:value="0.09"') == 1
    template = tmp_path / "nan.xml"
    template.write_text(source.replace('transforms:value="0.09"', 'transforms:value="NaN"'), encoding="utf-8")
    fcs = read_fcs(gate_ref / "data1.fcs")
    with pytest.raises(GatingError) as err:
        gate_fcs(fcs, load_template(template).tree_for(fcs.sample_id))
    assert str(err.value) == (
        f"{fcs.sample_id}: the spillover matrix of matrix 'MySpill' of nan.xml cannot be inverted"
        " (it holds a value that is not finite)."
    )
