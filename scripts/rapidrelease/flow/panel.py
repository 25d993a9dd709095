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

from rapidrelease.config.run import RunConfig, unmeasured_metric_problems
from rapidrelease.config.schemas import load_schema, schema_problems
from rapidrelease.config.vocabulary import FLOW_ASSAYS
from rapidrelease.config.yaml_files import load_yaml
from rapidrelease.errors import ConfigError, RapidReleaseError, TemplateError
from rapidrelease.fcs.compensation import read_spillover_file
from rapidrelease.gating.template import GateTree, GatingTemplate, population_path

__all__ = [
    "DEFAULT_DETECTION_ALPHA",
    "DEFAULT_MIN_EVENTS",
    "DEFAULT_PERCENTILE",
    "DETECTION_METRICS",
    "Detection",
    "MetricDefinition",
    "Panel",
    "SingleStainSettings",
    "ThresholdDefinition",
    "load_panel",
    "load_run_panels",
]

DEFAULT_VOLUME_TOLERANCE_PCT = 10.0
"""How far a sheet's volume_ul may lie from the cytometer's own $VOL when a panel sets no tolerance:
volumetric acquisition is accurate to a few per cent, so a larger gap is a typing or unit error."""

DEFAULT_MIN_EVENTS = 100
"""Fewest denominator events for a reportable percentage when a panel sets none (binomial SE ≤ 5 points)."""

DEFAULT_PERCENTILE = 99.5
"""Percentile of a control tube that a derived positivity threshold sits at (0.5 % of the control above)."""

MetricKind = Literal["percent", "ratio", "count", "specific_lysis", "concentration"]
UNITS: Mapping[str, str] = {
    "percent": "%",
    "ratio": "",
    "count": "events",
    "specific_lysis": "%",
    "concentration": "events/mL",
}
PopulationPath = tuple[str, ...]


@dataclass(frozen=True)
class MetricDefinition:
    """One metric of a panel: populations are paths of gate ids from the root.

    A polyfunctional metric lists ``any_of`` populations and ``at_least``: its ``numerator`` is then
    the population ``<denominator>/<metric name>`` of events in at least that many of them, which
    the panel adds to the gate tree. ``background`` names the control role a percent is reported
    net of; ``control`` the control a specific lysis is relative to.
    """

    name: str
    kind: MetricKind
    numerator: PopulationPath
    denominator: PopulationPath | None
    description: str
    min_events: int
    any_of: tuple[PopulationPath, ...] = ()
    at_least: int | None = None
    background: str | None = None
    control: str | None = None
    beads_per_ml: float | None = None

    @property
    def unit(self) -> str:
        """``"%"`` for percentages and lysis, ``""`` for ratios, ``"events"`` for counts, ``"events/mL"``."""
        return UNITS[self.kind]

    def populations(self) -> list[PopulationPath]:
        """The template's populations the metric reads (a combination's own population excluded)."""
        own = list(self.any_of) if self.any_of else [self.numerator]
        return own + ([self.denominator] if self.denominator else [])


@dataclass(frozen=True)
class ThresholdDefinition:
    """A positivity threshold derived from a control tube: events of ``parent`` above the control's
    ``percentile`` of ``channel`` form the population ``parent/name``."""

    name: str
    parent: PopulationPath
    channel: str
    comp_ref: str | None
    control: str
    percentile: float

    @property
    def path(self) -> PopulationPath:
        return (*self.parent, self.name)


@dataclass(frozen=True)
class SingleStainSettings:
    """How the spillover matrix is computed from the lot's compensation controls, and for which tubes."""

    population: PopulationPath
    positive_fraction: float = 0.05
    apply: Literal["when_missing", "always"] = "when_missing"


DETECTION_METRICS = ("microbial_call", "microbial_lod_per_ml")
"""The metrics a panel with ``detection`` adds: the call against the negative control and the LOD."""


DEFAULT_DETECTION_ALPHA = 0.01
"""The false-DETECTED rate a microbial-flow call allows a sterile tube when a panel sets none: one
sterile lot in a hundred failed for nothing, the level the sequencing assays' count test uses, and
small enough that a release series of lots is not routinely stopped by the medium's own events."""

DEFAULT_MEDIUM_MAX_PER_ML = 1000.0
"""The most events per mL a sterile-medium control may hold in the judged gate when a panel sets no
ceiling: above it the control is contaminated or the gate catches debris, and no test can be judged."""


@dataclass(frozen=True)
class Detection:
    """How a microbial_flow test tube is called against its negative control.

    ``alpha`` is the false-DETECTED rate the call allows a sterile tube (the exact conditional test's
    level, rapidrelease.flow.microbial); ``detection_probability`` the probability with which the
    limit of detection is detected. ``negative_control_max_per_ml`` is the ceiling of a valid
    sterile-medium control, in the judged metric's unit (events/mL).
    """

    metric: str
    alpha: float = DEFAULT_DETECTION_ALPHA
    detection_probability: float = 0.95
    negative_control_max_per_ml: float = DEFAULT_MEDIUM_MAX_PER_ML


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
    thresholds: tuple[ThresholdDefinition, ...] = ()
    detection: Detection | None = None
    single_stains: SingleStainSettings | None = None
    min_events: int = DEFAULT_MIN_EVENTS
    """The panel's default fewest events (a derived threshold's control must hold as many)."""
    volume_tolerance_pct: float = DEFAULT_VOLUME_TOLERANCE_PCT
    """How far (% of $VOL) a unit sheet's volume_ul may be from the file's $VOL."""

    def metric_names(self) -> list[str]:
        """The names of the metrics a tube measured with this panel reports, in panel order."""
        names = [m.name for m in self.metrics]
        return names + list(DETECTION_METRICS) if self.detection is not None else names

    def control_roles(self) -> set[str]:
        """Roles of the lot's control tubes this panel's thresholds and metrics read."""
        roles = {t.control for t in self.thresholds}
        roles |= {m.background for m in self.metrics if m.background}
        roles |= {m.control for m in self.metrics if m.control}
        if self.detection is not None:
            roles.add("negative_control")
        if self.single_stains is not None:
            roles.add("compensation")
        return roles

    def template(self) -> GatingTemplate:
        """The panel's gating template (loaded once per process)."""
        if not self.template_path.is_file():
            raise TemplateError(f"{self.template_path}: gating template not found.")
        return _load_template_cached(self.template_path.resolve())

    def check_populations(self, tree: GateTree) -> None:
        """Raise ConfigError naming the panel, metric and population when ``tree`` lacks a population.

        The populations a panel adds (its thresholds, then its combinations) count as defined.
        """
        known = {path for path, _ in tree.populations()}
        if self.single_stains is not None and self.single_stains.population not in known:
            raise ConfigError(
                f"{self.path}: single_stains gates the controls to population "
                f"{population_path(self.single_stains.population)!r}, which {tree.source} does not define."
            )
        for threshold in self.thresholds:
            if threshold.parent not in known:
                raise ConfigError(
                    f"{self.path}: threshold {threshold.name!r} is applied within population "
                    f"{population_path(threshold.parent)!r}, which {tree.source} does not define."
                )
            known.add(threshold.path)
        for metric in self.metrics:
            for pop in metric.populations():
                if pop not in known:
                    raise ConfigError(
                        f"{self.path}: metric {metric.name!r} names population {population_path(pop)!r}, "
                        f"which {tree.source} does not define."
                    )


@functools.cache
def _load_template_cached(path: Path) -> GatingTemplate:
    # compiled once per run when the job set a cache (rapidrelease.gating.compiled), else parsed
    from rapidrelease.gating.compiled import load_compiled_template

    return load_compiled_template(path)


def load_run_panels(run: RunConfig, check_template: bool = True) -> dict[Path, Panel]:
    """Every panel the run's flow units name, loaded once each, by panel file.

    A panel that cannot be loaded is a ConfigError naming the unit sheet and the first unit that
    uses it, so the lab knows which row to fix; so is a specification attribute whose metric no
    panel of its lots reports (it could only ever be INCONCLUSIVE).
    """
    panels: dict[Path, Panel] = {}
    for unit in run.units:
        if unit.assay not in FLOW_ASSAYS or unit.template is None or unit.template in panels:
            continue
        try:
            panels[unit.template] = load_panel(unit.template, check_template=check_template)
        except ConfigError as problem:
            raise ConfigError(
                f"{run.settings['units']}, column 'template' of lot {unit.lot_id} unit {unit.unit_id}: "
                f"{problem}"
            ) from None
    unmeasured = unmeasured_metric_problems(
        run, {template: panel.metric_names() for template, panel in panels.items()}
    )
    if unmeasured:
        raise ConfigError("\n".join(unmeasured))
    return panels


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
    assay = str(data["assay"])
    metrics = [_metric(path, assay, name, spec, default_min) for name, spec in data["metrics"].items()]
    thresholds = [_threshold(name, spec) for name, spec in data.get("thresholds", {}).items()]
    detection = None
    if "detection" in data:
        detection = _detection(path, assay, data["detection"], metrics)
    panel = Panel(
        path=path,
        name=str(data["name"]),
        assay=assay,
        template_path=Path(data["gating_template"]),
        metrics=tuple(metrics),
        compensation_path=Path(data["compensation"]) if data.get("compensation") else None,
        thresholds=tuple(thresholds),
        detection=detection,
        single_stains=_single_stains(path, data["single_stains"], data) if "single_stains" in data else None,
        min_events=default_min,
        volume_tolerance_pct=float(data.get("volume_tolerance_pct", DEFAULT_VOLUME_TOLERANCE_PCT)),
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


def _path(text: str) -> PopulationPath:
    return tuple(text.strip("/").split("/"))


def _metric(path: Path, assay: str, name: str, spec: Mapping[str, Any], default_min: int) -> MetricDefinition:
    where = f"{path}, metrics → {name}"
    kind: MetricKind = spec.get("kind", "percent")
    denominator = spec.get("denominator")
    if kind in ("percent", "ratio") and not denominator:
        raise ConfigError(f"{where}: a {kind} metric needs a denominator population.")
    numerator = spec["numerator"]
    any_of: tuple[PopulationPath, ...] = ()
    at_least = spec.get("at_least")
    if isinstance(numerator, list):
        if kind != "percent" or at_least is None:
            raise ConfigError(
                f"{where}: a list of numerator populations is a polyfunctional combination: "
                "a percent metric with at_least."
            )
        if at_least > len(numerator):
            raise ConfigError(
                f"{where}: at_least is {at_least}, but only {len(numerator)} populations are listed."
            )
        any_of = tuple(_path(p) for p in numerator)
        numerator_path = (*_path(denominator), name)
    else:
        if at_least is not None:
            raise ConfigError(f"{where}: at_least needs a list of numerator populations.")
        numerator_path = _path(numerator)
    background = spec.get("background")
    if background is not None and (kind != "percent" or assay != "potency"):
        raise ConfigError(f"{where}: background subtraction is for percent metrics of a potency panel.")
    control = spec.get("control")
    if kind == "specific_lysis":
        control = control or "target_only"
    elif control is not None:
        raise ConfigError(f"{where}: a control is named only by a specific_lysis metric.")
    beads_per_ml = spec.get("beads_per_ml")
    if kind == "concentration" and denominator and beads_per_ml is None:
        raise ConfigError(
            f"{where}: a concentration counted against beads (a denominator) needs beads_per_ml."
        )
    if beads_per_ml is not None and (kind != "concentration" or not denominator):
        raise ConfigError(f"{where}: beads_per_ml is for a concentration metric with a bead denominator.")
    return MetricDefinition(
        name=name,
        kind=kind,
        numerator=numerator_path,
        denominator=_path(denominator) if denominator else None,
        description=str(spec.get("description", "")),
        min_events=int(spec.get("min_events", default_min)),
        any_of=any_of,
        at_least=at_least,
        background=background,
        control=control,
        beads_per_ml=float(beads_per_ml) if beads_per_ml is not None else None,
    )


def _threshold(name: str, spec: Mapping[str, Any]) -> ThresholdDefinition:
    compensation = spec.get("compensation", "FCS")
    return ThresholdDefinition(
        name=name,
        parent=_path(spec["parent"]),
        channel=str(spec["channel"]),
        comp_ref=None if compensation == "uncompensated" else str(compensation),
        control=str(spec["control"]),
        percentile=float(spec.get("percentile", DEFAULT_PERCENTILE)),
    )


def _detection(path: Path, assay: str, spec: Mapping[str, Any], metrics: list[MetricDefinition]) -> Detection:
    if assay != "microbial_flow":
        raise ConfigError(
            f"{path}, detection: a call against a negative control is for a microbial_flow panel."
        )
    judged = next((m for m in metrics if m.name == spec["metric"]), None)
    if judged is None or judged.kind != "concentration":
        raise ConfigError(
            f"{path}, detection → metric: {spec['metric']!r} is not a concentration metric of the panel."
        )
    return Detection(
        metric=str(spec["metric"]),
        alpha=float(spec.get("alpha", DEFAULT_DETECTION_ALPHA)),
        detection_probability=float(spec.get("detection_probability", 0.95)),
        negative_control_max_per_ml=float(spec.get("negative_control_max_per_ml", DEFAULT_MEDIUM_MAX_PER_ML)),
    )


def _single_stains(path: Path, spec: Mapping[str, Any], data: Mapping[str, Any]) -> SingleStainSettings:
    if "compensation" in data:
        raise ConfigError(
            f"{path}: a panel compensates with a matrix file (compensation) or with its single-stain "
            "controls (single_stains), not both."
        )
    return SingleStainSettings(
        population=_path(spec["population"]),
        positive_fraction=float(spec.get("positive_fraction", 0.05)),
        apply=spec.get("apply", "when_missing"),
    )
