"""Compiled gating templates, cached beside the results and keyed by the template's content.

Parsing a GatingML template needs FlowKit, whose import alone took 1.5–4 s of every flow job (most
of a small tube's measurement). A run parses each template once: the compiled gate tree is written
as JSON to ``<cache>/<SHA-256 of the template's bytes>.gatetree`` (not
``.json``: every JSON file under the results is a sealed record), and every later job of the run reads
that instead, with no FlowKit. The key is the content, so an edited template is parsed again
whatever its time; a cache file that cannot be read, or holds another template's tree, is
rebuilt. The tree's GatingML 2.0 transforms are applied by FlowUtils with FlowKit's own calls
(the classes below, named as FlowKit's), so a cached tree gates exactly as a parsed one. A tree
using any other transform (FlowJo's) is never cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rapidrelease.gating.template import (
    Dimension,
    GateNode,
    GateTree,
    GatingTemplate,
    Quadrant,
    RatioDimension,
    load_template,
)

__all__ = ["FORMAT", "load_compiled_template", "template_cache_dir", "use_template_cache"]

FORMAT = "rapidrelease compiled gate tree 1"
"""Written in every cache file; a file of another format is rebuilt."""

_cache_dir: Path | None = None


def use_template_cache(folder: Path | None) -> None:
    """Cache compiled templates in ``folder`` (None: parse every template, cache nothing)."""
    global _cache_dir
    _cache_dir = None if folder is None else Path(folder)


def template_cache_dir() -> Path | None:
    """The folder compiled templates are cached in, if any."""
    return _cache_dir


class _FlowUtilsTransform:
    """A GatingML 2.0 transform by its parameters (``param_t`` …), as FlowKit holds them."""

    PARAMS: tuple[str, ...] = ()

    def __init__(self, **params: float) -> None:
        for name in self.PARAMS:
            setattr(self, name, params[name])

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, p) == getattr(other, p) for p in self.PARAMS)

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, p) for p in self.PARAMS)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{p}={getattr(self, p)}' for p in self.PARAMS)})"

    def _call(self, function: str, events: np.ndarray) -> np.ndarray:
        import flowutils  # a compiled library, imported in milliseconds (FlowKit is not)

        kwargs = {p.removeprefix("param_"): getattr(self, p) for p in self.PARAMS}
        return getattr(flowutils.transforms, function)(events, None, **kwargs)


class LinearTransform(_FlowUtilsTransform):
    """flin(x, T, A) = (x + A) / (T + A), as FlowKit's LinearTransform."""

    PARAMS = ("param_t", "param_a")
    param_t: float
    param_a: float

    def apply(self, events: np.ndarray) -> np.ndarray:
        return (events + self.param_a) / (self.param_t + self.param_a)

    def inverse(self, events: np.ndarray) -> np.ndarray:
        return (events * (self.param_t + self.param_a)) - self.param_a


class LogTransform(_FlowUtilsTransform):
    """flog(x, T, M), applied by ``flowutils.transforms.log`` as FlowKit's LogTransform."""

    PARAMS = ("param_t", "param_m")

    def apply(self, events: np.ndarray) -> np.ndarray:
        return self._call("log", events)

    def inverse(self, events: np.ndarray) -> np.ndarray:
        return self._call("log_inverse", events)


class HyperlogTransform(_FlowUtilsTransform):
    """hyperlog(x, T, W, M, A), applied by FlowUtils as FlowKit's HyperlogTransform."""

    PARAMS = ("param_t", "param_w", "param_m", "param_a")

    def apply(self, events: np.ndarray) -> np.ndarray:
        return self._call("hyperlog", events)

    def inverse(self, events: np.ndarray) -> np.ndarray:
        return self._call("hyperlog_inverse", events)


class LogicleTransform(_FlowUtilsTransform):
    """logicle(x, T, W, M, A), applied by FlowUtils as FlowKit's LogicleTransform."""

    PARAMS = ("param_t", "param_w", "param_m", "param_a")

    def apply(self, events: np.ndarray) -> np.ndarray:
        return self._call("logicle", events)

    def inverse(self, events: np.ndarray) -> np.ndarray:
        return self._call("logicle_inverse", events)


class AsinhTransform(_FlowUtilsTransform):
    """fasinh(x, T, M, A), applied by FlowUtils as FlowKit's AsinhTransform."""

    PARAMS = ("param_t", "param_m", "param_a")

    def apply(self, events: np.ndarray) -> np.ndarray:
        return self._call("asinh", events)

    def inverse(self, events: np.ndarray) -> np.ndarray:
        return self._call("asinh_inverse", events)


_TRANSFORMS = {
    cls.__name__: cls
    for cls in (LinearTransform, LogTransform, HyperlogTransform, LogicleTransform, AsinhTransform)
}


def load_compiled_template(path: Path) -> GatingTemplate:
    """The template at ``path``: from the cache when one is in use and holds its content's tree,
    else parsed (:func:`~rapidrelease.gating.template.load_template`) and, a GatingML template of
    standard transforms, cached for the next job. Raises what ``load_template`` raises."""
    path = Path(path)
    if _cache_dir is None or not path.is_file() or path.suffix.lower() == ".wsp":
        return load_template(path)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    cached = _cache_dir / f"{sha256}.gatetree"
    tree = _read_tree(cached, sha256)
    if tree is not None:
        return GatingTemplate(path, "gatingml", {"": tree})
    template = load_template(path)
    tree = template.tree_for("")
    if all(type(t).__name__ in _TRANSFORMS for t in tree.transforms.values()):
        plain = _tree_to_json(tree)
        _write_atomic(cached, json.dumps({"format": FORMAT, "template_sha256": sha256, "tree": plain}))
        # the parsed template gates with the same transforms a cached one will
        template = GatingTemplate(path, "gatingml", {"": _tree_from_json(plain)})
    return template


def _read_tree(cached: Path, sha256: str) -> GateTree | None:
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("template_sha256") != sha256:
            return None
        return _tree_from_json(data["tree"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, cut short or foreign: parsed and written again


def _write_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temporary file renamed into place (jobs may race)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # a cache that cannot be written only costs time


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _tree_to_json(tree: GateTree) -> dict[str, Any]:
    return {
        "source": tree.source,
        "nodes": [_plain(node) for node in tree.nodes],
        "transforms": {
            ref: {"kind": kind, **{p: getattr(t, p) for p in _TRANSFORMS[kind].PARAMS}}
            for ref, t in tree.transforms.items()
            for kind in (type(t).__name__,)
        },
        "matrices": {
            ref: [list(detectors), list(fluorochromes), spill.tolist()]
            for ref, (detectors, fluorochromes, spill) in tree.matrices.items()
        },
    }


def _array(value: dict[str, Any] | None) -> np.ndarray | None:
    return None if value is None else np.asarray(value["array"], dtype=value["dtype"])


def _bounds(value: list[list[float | None]]) -> tuple[tuple[float | None, float | None], ...]:
    return tuple((lo, hi) for lo, hi in value)


def _node(data: dict[str, Any]) -> GateNode:
    dimensions = tuple(
        Dimension(
            label=d["label"],
            ratio=None if d["ratio"] is None else RatioDimension(**d["ratio"]),
            comp_ref=d["comp_ref"],
            xform_ref=d["xform_ref"],
        )
        for d in data["dimensions"]
    )
    return GateNode(
        path=tuple(data["path"]),
        parent=tuple(data["parent"]),
        kind=data["kind"],
        dimensions=dimensions,
        complement=data["complement"],
        bounds=_bounds(data["bounds"]),
        vertices=_array(data["vertices"]),
        mean=_array(data["mean"]),
        covariance=_array(data["covariance"]),
        distance_square=data["distance_square"],
        quadrants=tuple(Quadrant(q["quadrant_id"], _bounds(q["bounds"])) for q in data["quadrants"]),
        operator=data["operator"],
        operands=tuple((tuple(path), bool(negated)) for path, negated in data["operands"]),
        at_least=data["at_least"],
    )


def _tree_from_json(data: dict[str, Any]) -> GateTree:
    transforms = {
        ref: _TRANSFORMS[t["kind"]](**{k: v for k, v in t.items() if k != "kind"})
        for ref, t in data["transforms"].items()
    }
    matrices = {
        ref: (tuple(detectors), tuple(fluorochromes), np.asarray(spill, dtype=np.float64))
        for ref, (detectors, fluorochromes, spill) in data["matrices"].items()
    }
    return GateTree(
        source=data["source"],
        nodes=tuple(_node(n) for n in data["nodes"]),
        transforms=transforms,
        matrices=matrices,
    )
