"""Gating templates: GatingML 2.0 XML and FlowJo 10 workspaces, compiled into a flat gate tree.

FlowKit parses both formats (``flowkit.parse_gating_xml`` and FlowKit's FlowJo workspace parser);
this module turns FlowKit's gate objects into :class:`GateTree`, an immutable list of gates in
evaluation order (every parent and every Boolean operand before the gates that use it) that the
NumPy kernels in :mod:`rapidrelease.gating.kernels` evaluate. The gate semantics are FlowKit's, which
reproduces the ISAC GatingML 2.0 compliance results:

- Rectangle and range gates (GatingML 2.0 §5.1.1): ``min <= x < max`` per dimension.
- Polygon gates (§5.1.2): inside by the winding number, counted odd (FlowUtils' rule).
- Ellipsoid gates (§5.1.3): ``(x-μ)ᵀ C⁻¹ (x-μ) <= distance²``.
- Quadrant gates (§5.1.4): each quadrant a rectangle from the dividers; quadrants are populations
  named ``<quadrant gate id>/<quadrant id>`` under the quadrant gate's parent.
- Boolean gates (§5.1.5): and / or / not of other gates, each operand optionally complemented.

A population is addressed by its *path*: the gate ids from the root, joined by ``/``
(e.g. ``Cells/Singlets/Live``). FlowJo ellipses arrive as 128-vertex polygons (FlowKit's conversion),
exactly as FlowJo itself evaluates them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rapidrelease.errors import TemplateError

if TYPE_CHECKING:
    from flowkit import GatingStrategy
    from flowkit._models.dimension import Dimension as FlowKitPlainDimension
    from flowkit._models.dimension import QuadrantDivider
    from flowkit._models.dimension import RatioDimension as FlowKitRatioDimension
    from flowkit._models.gates._base_gate import Gate
    from flowkit._models.transforms._base_transform import Transform

    FlowKitDimension = FlowKitPlainDimension | FlowKitRatioDimension | QuadrantDivider

__all__ = [
    "Dimension",
    "GateNode",
    "GateTree",
    "GatingTemplate",
    "Quadrant",
    "RatioDimension",
    "load_template",
    "population_path",
]

GateKind = Literal["rectangle", "polygon", "ellipsoid", "quadrant", "boolean"]

UNCOMPENSATED = None
"""Compensation reference meaning raw (uncompensated) values."""


@dataclass(frozen=True)
class RatioDimension:
    """A GatingML 2.0 ratio dimension (§6.2 ``fratio``): ``a * (x - b) / (y - c)`` of raw values."""

    x_label: str
    y_label: str
    a: float
    b: float
    c: float


@dataclass(frozen=True)
class Dimension:
    """One input dimension of a gate.

    ``label`` is the channel as the template names it ($PnN, $PnS, a FlowJo label with ``_`` for
    ``/``, or a fluorochrome of the gate's compensation matrix); ``ratio`` replaces it for ratio
    dimensions. ``comp_ref`` is ``None`` (raw values), ``"FCS"`` (the file's own spillover) or the id of
    a matrix in :attr:`GateTree.matrices`; ``xform_ref`` is ``None`` or an id in
    :attr:`GateTree.transforms`.
    """

    label: str | None
    ratio: RatioDimension | None
    comp_ref: str | None
    xform_ref: str | None


@dataclass(frozen=True)
class Quadrant:
    """One quadrant of a quadrant gate: ``bounds[i] = (lo, hi)`` on ``dimensions[i]``, ``lo <= x < hi``."""

    quadrant_id: str
    bounds: tuple[tuple[float | None, float | None], ...]


@dataclass(frozen=True)
class GateNode:
    """One gate of the tree.

    ``path`` is the gate ids from the root (root excluded); ``parent`` the path of the population
    it is applied within (``()`` for the root, i.e. all events). Only the fields of its ``kind`` are set.
    """

    path: tuple[str, ...]
    parent: tuple[str, ...]
    kind: GateKind
    dimensions: tuple[Dimension, ...] = ()
    complement: bool = False
    bounds: tuple[tuple[float | None, float | None], ...] = ()
    vertices: np.ndarray | None = None
    mean: np.ndarray | None = None
    covariance: np.ndarray | None = None
    distance_square: float | None = None
    quadrants: tuple[Quadrant, ...] = ()
    operator: Literal["and", "or", "not", "at_least"] | None = None
    operands: tuple[tuple[tuple[str, ...], bool], ...] = ()
    at_least: int | None = None
    """For operator ``at_least`` (a panel's polyfunctional combination, never a template's): the
    fewest operands an event must belong to."""

    @property
    def name(self) -> str:
        return self.path[-1]

    def population_paths(self) -> list[tuple[str, ...]]:
        """Paths of the populations this gate defines: itself, or one per quadrant."""
        if self.kind == "quadrant":
            return [(*self.path, q.quadrant_id) for q in self.quadrants]
        return [self.path]


@dataclass(frozen=True)
class GateTree:
    """A compiled gating strategy: gates in evaluation order plus the transforms and matrices they use.

    ``transforms`` maps an id to a FlowKit transform (its ``apply`` takes an ``(n, 1)`` float64 array);
    ``matrices`` maps an id to ``(detectors, fluorochromes, spillover)`` with ``spillover`` of shape
    ``(k, k)``, rows emitting and columns receiving, in ``detectors`` order.
    """

    source: str
    nodes: tuple[GateNode, ...]
    transforms: Mapping[str, Transform]
    matrices: Mapping[str, tuple[tuple[str, ...], tuple[str, ...], np.ndarray]]

    def populations(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """Every population as ``(path, parent_path)``, in evaluation order."""
        return [(p, node.parent) for node in self.nodes for p in node.population_paths()]


def population_path(path: tuple[str, ...]) -> str:
    """The text form of a population path, e.g. ``Cells/Singlets/Live``."""
    return "/".join(path)


@dataclass
class GatingTemplate:
    """A loaded template. GatingML gives one tree for every sample; a FlowJo workspace one per sample."""

    path: Path
    kind: Literal["gatingml", "flowjo"]
    _trees: dict[str, GateTree]

    @property
    def sample_names(self) -> list[str]:
        """Names of the samples of a FlowJo workspace (empty for GatingML)."""
        return [] if self.kind == "gatingml" else sorted(self._trees)

    def tree_for(self, sample_id: str) -> GateTree:
        """The gate tree to apply to the sample named ``sample_id`` (its FCS file name).

        A FlowJo workspace carries gates per sample; a sample is matched by its name in the
        workspace, which FlowJo sets to the FCS file name.
        """
        if self.kind == "gatingml":
            return self._trees[""]
        tree = self._trees.get(sample_id)
        if tree is None:
            raise TemplateError(
                f"{self.path.name}: the workspace has no sample named {sample_id!r} "
                f"(it has {len(self._trees)}: {', '.join(sorted(self._trees)[:5])}"
                f"{', …' if len(self._trees) > 5 else ''})."
            )
        return tree


def load_template(path: Path) -> GatingTemplate:
    """Load a GatingML 2.0 XML file or a FlowJo 10 ``.wsp`` workspace.

    Raises :class:`TemplateError` naming the file when it is missing, malformed or uses a gate
    construct the engine cannot evaluate.
    """
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"{path}: gating template not found.")
    if path.suffix.lower() == ".wsp":
        return GatingTemplate(path, "flowjo", _load_flowjo(path))
    return GatingTemplate(path, "gatingml", {"": _load_gatingml(path)})


def _load_gatingml(path: Path) -> GateTree:
    import flowkit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            strategy = flowkit.parse_gating_xml(str(path))
    except Exception as exc:  # FlowKit raises many types for malformed XML
        raise TemplateError(f"{path.name}{_gatingml_problem(path, exc)}.") from exc
    return compile_strategy(strategy, source=path.name)


_XML_NAMESPACE = re.compile(r"\{[^}]*\}")


def _gatingml_problem(path: Path, exc: Exception) -> str:
    """Where and why a file is not GatingML 2.0: the first XML or XSD error with its line."""
    from flowkit._resources import gml_schema
    from lxml import etree

    try:
        document = etree.parse(str(path))
    except etree.XMLSyntaxError as syntax:
        return f" line {syntax.lineno}: not well-formed XML ({_first_line(syntax)})"
    if not gml_schema.validate(document):
        error = gml_schema.error_log[0]
        message = _XML_NAMESPACE.sub("", error.message).rstrip(".")
        return f" line {error.line}: not valid GatingML 2.0 ({message})"
    return f": not a usable GatingML 2.0 file ({_first_line(exc)})"


def _load_flowjo(path: Path) -> dict[str, GateTree]:
    from flowkit._utils import wsp_utils

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wsp = wsp_utils.parse_wsp(str(path))
    except Exception as exc:
        raise TemplateError(f"{path.name}: not a readable FlowJo workspace ({_first_line(exc)}).") from exc
    trees = {}
    for sample_name, sample in wsp["samples"].items():
        trees[sample_name] = compile_strategy(
            sample["gating_strategy"], source=f"{path.name} [{sample_name}]"
        )
    if not trees:
        raise TemplateError(f"{path.name}: the workspace holds no samples with gates.")
    return trees


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(". ") if text else type(exc).__name__


def compile_strategy(strategy: GatingStrategy, source: str) -> GateTree:
    """Compile a FlowKit ``GatingStrategy`` into a :class:`GateTree`.

    Gates come out in an order where each gate follows its parent and every Boolean operand.
    """
    from flowkit.exceptions import QuadrantReferenceError

    nodes: dict[tuple[str, ...], GateNode] = {}
    for gate_id, flowkit_path in strategy.get_gate_ids():
        try:
            gate = strategy.get_gate(gate_id, flowkit_path)
        except QuadrantReferenceError:
            continue  # a quadrant: evaluated with its quadrant gate
        # FlowKit puts a quadrant's children under (…, quadrant gate, quadrant): the same as our paths.
        path, parent = (*flowkit_path[1:], gate_id), tuple(flowkit_path[1:])
        try:
            nodes[path] = _compile_gate(gate, path, parent, strategy.transformations)
        except TemplateError as exc:
            raise TemplateError(f"{source}: {exc}") from exc
        except Exception as exc:
            raise TemplateError(f"{source}: gate {gate_id!r} cannot be used ({_first_line(exc)}).") from exc

    ordered = _evaluation_order(nodes, source)
    matrices = {}
    for matrix_id, matrix in strategy.comp_matrices.items():
        spill = np.asarray(matrix.matrix, dtype=np.float64)
        detectors = tuple(matrix.detectors)
        if spill.shape != (len(detectors), len(detectors)):
            raise TemplateError(
                f"{source}: compensation matrix {matrix_id!r} is {spill.shape[0]}×{spill.shape[1]} "
                f"for {len(detectors)} detectors."
            )
        fluorochromes = tuple(matrix.fluorochromes) if matrix.fluorochromes else ("",) * len(detectors)
        matrices[matrix_id] = (detectors, fluorochromes, spill)
    transforms = dict(strategy.transformations)
    for node in ordered:
        for dim in node.dimensions:
            if dim.comp_ref not in (None, "FCS") and dim.comp_ref not in matrices:
                raise TemplateError(f"{source}: gate {node.name!r} names unknown matrix {dim.comp_ref!r}.")
            if dim.xform_ref is not None and dim.xform_ref not in transforms:
                raise TemplateError(
                    f"{source}: gate {node.name!r} names unknown transform {dim.xform_ref!r}."
                )
    return GateTree(source=source, nodes=tuple(ordered), transforms=transforms, matrices=matrices)


def _evaluation_order(nodes: dict[tuple[str, ...], GateNode], source: str) -> list[GateNode]:
    """Order gates so that parents and Boolean operands come first (operands may sit anywhere)."""
    import networkx as nx  # only when a template is parsed: a cached compiled tree needs none

    population_owner: dict[tuple[str, ...], tuple[str, ...]] = {}
    for path, node in nodes.items():
        for pop in node.population_paths():
            population_owner[pop] = path
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for path, node in nodes.items():
        needed = [node.parent] if node.parent else []
        needed += [operand for operand, _ in node.operands]
        for pop in needed:
            owner = population_owner.get(pop)
            if owner is None:
                raise TemplateError(
                    f"{source}: gate {node.name!r} refers to unknown population {'/'.join(pop)!r}."
                )
            graph.add_edge(owner, path)
    if not nx.is_directed_acyclic_graph(graph):
        raise TemplateError(f"{source}: Boolean gates refer to each other in a cycle.")
    # ties broken by the template's own order, so the output order is stable run to run
    position = {path: i for i, path in enumerate(nodes)}
    return [nodes[p] for p in nx.lexicographical_topological_sort(graph, key=lambda p: position[p])]


def _gate_comp_ref(dimensions: Sequence[FlowKitDimension], gate_name: str) -> str | None:
    # FlowKit compensates a gate's events with the one matrix its dimensions name; every dimension of
    # that gate (scatter included) then reads the compensated events. Mixed matrices are unsupported.
    refs = {d.compensation_ref for d in dimensions if d.compensation_ref not in (None, "uncompensated")}
    if len(refs) > 1:
        raise TemplateError(
            f"gate {gate_name!r} mixes compensation matrices {sorted(refs)}, which FlowKit does not support."
        )
    return refs.pop() if refs else None


def _compile_gate(
    gate: Gate, path: tuple[str, ...], parent: tuple[str, ...], transformations: Mapping[str, Transform]
) -> GateNode:
    from flowkit import gates as fk_gates
    from flowkit._models.dimension import QuadrantDivider
    from flowkit._models.dimension import RatioDimension as FkRatioDimension

    if isinstance(gate, fk_gates.BooleanGate):
        operands = tuple(((*ref["path"][1:], ref["ref"]), bool(ref["complement"])) for ref in gate.gate_refs)
        if gate.type == "not" and len(operands) != 1:
            raise TemplateError(f"Boolean 'not' gate {gate.gate_name!r} must have exactly one operand.")
        return GateNode(path, parent, "boolean", operator=gate.type, operands=operands)

    comp_ref = _gate_comp_ref(gate.dimensions, gate.gate_name)

    def dimension(dim: FlowKitDimension) -> Dimension:
        if isinstance(dim, FkRatioDimension):
            return Dimension(
                None, _ratio(dim.ratio_ref, transformations, gate.gate_name), comp_ref, dim.transformation_ref
            )
        label = dim.dimension_ref if isinstance(dim, QuadrantDivider) else dim.id
        return Dimension(label, None, comp_ref, dim.transformation_ref)

    if isinstance(gate, fk_gates.QuadrantGate):
        dividers = list(gate.dimensions)
        dims = tuple(dimension(d) for d in dividers)
        quadrants = []
        for quadrant in gate.quadrants.values():
            bounds = []
            for divider in dividers:
                if divider.id in quadrant.divider_refs:
                    lo, hi = quadrant.get_divider_range(divider.id)
                    bounds.append((_opt_float(lo), _opt_float(hi)))
                else:
                    bounds.append((None, None))
            quadrants.append(Quadrant(quadrant.id, tuple(bounds)))
        return GateNode(path, parent, "quadrant", dims, quadrants=tuple(quadrants))

    dims = tuple(dimension(d) for d in gate.dimensions)
    if isinstance(gate, fk_gates.RectangleGate):
        bounds = tuple(
            (_opt_float(getattr(d, "min", None)), _opt_float(getattr(d, "max", None)))
            for d in gate.dimensions
        )
        return GateNode(path, parent, "rectangle", dims, complement=bool(gate.use_complement), bounds=bounds)
    if isinstance(gate, fk_gates.PolygonGate):
        vertices = np.asarray(gate.vertices, dtype=np.float64)
        if vertices.ndim != 2 or vertices.shape[1] != 2 or vertices.shape[0] < 3 or len(dims) != 2:
            raise TemplateError(
                f"polygon gate {gate.gate_name!r} needs 2 dimensions and at least 3 vertices."
            )
        return GateNode(
            path, parent, "polygon", dims, complement=bool(gate.use_complement), vertices=vertices
        )
    if isinstance(gate, fk_gates.EllipsoidGate):
        mean = np.asarray(gate.coordinates, dtype=np.float64)
        cov = np.asarray(gate.covariance_matrix, dtype=np.float64)
        if cov.shape != (len(dims), len(dims)) or mean.shape != (len(dims),):
            raise TemplateError(
                f"ellipsoid gate {gate.gate_name!r} has a mean or covariance of the wrong size."
            )
        return GateNode(
            path,
            parent,
            "ellipsoid",
            dims,
            mean=mean,
            covariance=cov,
            distance_square=float(gate.distance_square),
        )
    raise TemplateError(
        f"gate {gate.gate_name!r} is a {type(gate).__name__}, which the engine does not evaluate."
    )


def _ratio(ratio_ref: str, transformations: Mapping[str, Transform], gate_name: str) -> RatioDimension:
    ratio = transformations.get(ratio_ref)
    if ratio is None or not hasattr(ratio, "param_a"):
        raise TemplateError(f"gate {gate_name!r} names ratio {ratio_ref!r}, which is not a ratio transform.")
    x_label, y_label = ratio.dimensions
    return RatioDimension(x_label, y_label, float(ratio.param_a), float(ratio.param_b), float(ratio.param_c))


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)
