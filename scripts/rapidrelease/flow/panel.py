"""Flow panels: the gating template of a tube and the metrics computed from its populations.

A panel file (``config/panels/*.yaml``, schema ``workflow/schemas/panel.schema.yaml``) names a
GatingML 2.0 or FlowJo template and defines each metric as populations of that template, e.g.
``car_pct_cd3: {numerator: …/CD3pos/CARpos, denominator: …/CD3pos}``. Specifications refer to metrics by
name, so a site can change its gating without touching its specifications.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rapidrelease.errors import ConfigError, RapidReleaseError, TemplateError
from rapidrelease.fcs.compensation import read_spillover_file
from rapidrelease.gating.template import GateTree, GatingTemplate, load_template, population_path
from rapidrelease.release.schemas import load_schema, schema_problems
from rapidrelease.release.yaml_files import load_yaml

__all__ = ["DEFAULT_MIN_EVENTS", "MetricDefinition", "Panel", "load_panel"]

DEFAULT_MIN_EVENTS = 100
"""Fewest denominator events for a reportable percentage when a panel sets none (binomial SE ≤ 5 points)."""

MetricKind = Literal["percent", "ratio", "count"]
UNITS: Mapping[str, str] = {"percent": "%", "ratio": "", "count": "events"}


@dataclass(frozen=True)
class MetricDefinition:
    """One metric of a panel: populations are paths of gate ids from the root."""

    name: str
    kind: MetricKind
    numerator: tuple[str, ...]
    denominator: tuple[str, ...] | None
    description: str
    min_events: int

    @property
    def unit(self) -> str:
        """``"%"`` for percentages, ``""`` for ratios, ``"events"`` for counts."""
        return UNITS[self.kind]

    def populations(self) -> list[tuple[str, ...]]:
        return [self.numerator] + ([self.denominator] if self.denominator else [])


@dataclass(frozen=True)
class Panel:
    """A loaded panel file."""

    path: Path
    name: str
    assay: str
    template_path: Path
    metrics: tuple[MetricDefinition, ...]
    compensation_path: Path | None = None
    """A spillover matrix file used instead of each tube's own $SPILLOVER (None: the tube's)."""

    def template(self) -> GatingTemplate:
        """The panel's gating template (loaded once per process)."""
        if not self.template_path.is_file():
            raise TemplateError(f"{self.template_path}: gating template not found.")
        return _load_template_cached(self.template_path.resolve())

    def check_populations(self, tree: GateTree) -> None:
        """Raise ConfigError naming the panel, metric and population when ``tree`` lacks a population."""
        known = {path for path, _ in tree.populations()}
        for metric in self.metrics:
            for pop in metric.populations():
                if pop not in known:
                    raise ConfigError(
                        f"{self.path}: metric {metric.name!r} names population {population_path(pop)!r}, "
                        f"which {tree.source} does not define."
                    )


@functools.cache
def _load_template_cached(path: Path) -> GatingTemplate:
    return load_template(path)


def load_panel(path: Path, check_template: bool = True) -> Panel:
    """Load and validate a panel file; raises ConfigError naming the file (and metric) on any problem.

    For a GatingML template every metric's populations are checked against the template here, before
    any tube is measured; a FlowJo workspace is checked per sample when its tube is gated. With
    ``check_template`` False the template and compensation files are not read (a cluster job,
    whose workflow was checked when it was submitted, need not load FlowKit again).
    """
    path = Path(path)
    data, _ = load_yaml(path)
    problems = schema_problems(data, load_schema("panel.schema.yaml"))
    if problems:
        location, phrase = problems[0]
        where = " → ".join(str(k) for k in location)
        more = f" ({len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ConfigError(f"{path}{', ' + where if where else ''}: {phrase}{more}")
    default_min = int(data.get("min_events", DEFAULT_MIN_EVENTS))
    metrics = [_metric(path, name, spec, default_min) for name, spec in data["metrics"].items()]
    panel = Panel(
        path=path,
        name=str(data["name"]),
        assay=str(data["assay"]),
        template_path=Path(data["gating_template"]),
        metrics=tuple(metrics),
        compensation_path=Path(data["compensation"]) if data.get("compensation") else None,
    )
    if not check_template:
        return panel
    try:
        template = panel.template()
    except RapidReleaseError as exc:
        raise ConfigError(f"{path}: its gating template cannot be used: {exc}") from exc
    if template.kind == "gatingml":
        panel.check_populations(template.tree_for(""))
    if panel.compensation_path is not None:
        read_spillover_file(panel.compensation_path)  # refuse a bad matrix before any tube is measured
    return panel


def _metric(path: Path, name: str, spec: Mapping[str, Any], default_min: int) -> MetricDefinition:
    kind: MetricKind = spec.get("kind", "percent")
    denominator = spec.get("denominator")
    if kind in ("percent", "ratio") and not denominator:
        raise ConfigError(f"{path}, metrics → {name}: a {kind} metric needs a denominator population.")
    return MetricDefinition(
        name=name,
        kind=kind,
        numerator=tuple(spec["numerator"].strip("/").split("/")),
        denominator=tuple(denominator.strip("/").split("/")) if denominator else None,
        description=str(spec.get("description", "")),
        min_events=int(spec.get("min_events", default_min)),
    )
