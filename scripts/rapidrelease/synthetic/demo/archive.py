"""The demo's synthetic history: earlier lots' sealed decisions, so that the index has trends to show.

A lab that runs rapidrelease keeps its earlier lots' release.json files; config.yaml
``trends.archive`` points the lots index at them (:mod:`rapidrelease.report.archive`). Phase I
control limits need 20 baseline lots and a site comparison two lots per site, so the demo ships
:data:`N_ARCHIVED_LOTS` earlier lots over SITE-A and SITE-B, collected from May to November 2026,
before the demo lots of 25 November.

No cell of them was simulated: the metrics each lot's units would have reported are drawn around
the demo lots' own (:data:`PROCESS`, with a lot-to-lot spread typical of autologous CAR-T
manufacture: viability ±3 points, transduction ±7 points, a log-normal CD4:CD8 ratio and viable
cell count) and handed to the release decision itself
(:func:`rapidrelease.release.decision.evaluate_lot`) through an in-memory configuration with the
demo's specifications, then written sealed (:func:`rapidrelease.records.write_record`). So every
record is what the pipeline would have decided from those metrics: its rounding, its reasons, its
dose from the viable count and the patient's weight, the sterility run's validity and the starting
material's acceptance. A few lots have an assignable failure (:data:`EVENTS`): a poor transduction,
a low viability, a contaminated lot, and a sequencing run that missed its LOD and so left one lot
inconclusive. The records have no data files (every unit's path is null) and their audit block
says they are synthetic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from rapidrelease.config.run import Lot, RunConfig, Unit
from rapidrelease.config.specs import load_specs
from rapidrelease.records import Metric, Population, Release, UnitRecord, write_record
from rapidrelease.release.decision import evaluate_lot
from rapidrelease.stats import wilson_interval

__all__ = [
    "ARCHIVE_DIR",
    "ARCHIVE_STREAM",
    "EVENTS",
    "N_ARCHIVED_LOTS",
    "PROCESS",
    "ArchivedLot",
    "archived_lots",
    "write_archive",
]

ARCHIVE_DIR = "archive"
"""The archive's folder in the demo folder: ``archive/<lot>/release.json``."""
ARCHIVE_STREAM = 100
"""The archive's generator is seeded from (seed, 100), apart from every tube's."""
N_ARCHIVED_LOTS = 24
SITES = ("SITE-A", "SITE-B")
PRODUCT = "CAR-T (demo, synthetic)"
RELEASE_SPEC = "CART-DEMO-release"
STARTING_SPEC = "APHERESIS-DEMO"
FIRST_COLLECTION = datetime(2026, 5, 4, 8, 0)
"""About one lot a week from here (local time), the last well before the demo lots of 25 November."""

PROCESS: Mapping[str, tuple[float, float]] = {
    # metric: (mean, lot-to-lot SD); percentages in points. Centred between the demo lots' own
    # values (DEMO-001 and DEMO-002 in lots.py) where both pass, on DEMO-001's where DEMO-002 fails.
    "viability_pct": (86.0, 3.0),
    "cd3_pct_live": (94.5, 1.8),
    "car_pct_cd3": (34.0, 7.0),
    "ifng_pct_car": (22.5, 4.0),
    "cd107a_pct_car": (32.5, 5.0),
    "sterility_lod": (8.6, 0.6),  # CFU/mL, the run's LOD95 for the spiked S. aureus
    "apheresis_viability_pct": (95.5, 1.5),
    "apheresis_cd3_pct_live": (45.0, 10.0),
}
LOG_CD4_CD8 = (math.log(1.35), 0.25)
"""CD4:CD8 ratio among CAR+ T cells: log-normal, median 1.35 (DEMO-001 1.42, DEMO-002 1.25)."""
LOG_TNC_VIABLE = (math.log(1.2e9), 0.25)
"""Viable nucleated cells of the product: log-normal, median 1.2 × 10⁹ (DEMO-001's; DEMO-002 2.5 × 10⁹)."""
WEIGHT_KG = (74.0, 12.0)
SITE_B_VIABILITY_OFFSET = -0.8
"""SITE-B's lots run slightly lower in viability (a longer transport), well inside the ±5 margin."""

EVENTS: Mapping[int, tuple[str, str]] = {
    # lot number: (what happened, its effect on the drawn metrics)
    6: ("poor transduction (CAR+ 11 % of CD3+)", "car_pct_cd3=11.0"),
    11: ("the sterility run's positive control missed its LOD (run to be repeated)", "sterility_lod=12.4"),
    14: ("low viability after a delayed shipment (66 %)", "viability_pct=66.0"),
    19: ("Staphylococcus epidermidis in the sterility sample", "contaminant_call=DETECTED"),
}
"""The archived lots (1-based) with an assignable cause, and the metric it sets."""


@dataclass(frozen=True)
class ArchivedLot:
    """One earlier lot: its lot-sheet row and the metrics its units reported (``metrics[unit_id]``)."""

    lot: Lot
    units: tuple[Unit, ...]
    metrics: Mapping[str, Mapping[str, Metric]]
    hours_to_result: float
    event: str | None


def _offset(moment: datetime) -> timezone:
    """Central European time as a fixed offset: summer time (+02:00) until 25 October 2026 03:00."""
    return timezone(timedelta(hours=2 if moment < datetime(2026, 10, 25, 3, 0) else 1))


def _percent(numerator: str, denominator: str, successes: int, trials: int, **extra: object) -> Metric:
    low, high = wilson_interval(successes, trials)
    return Metric(
        value=100.0 * successes / trials,
        unit="%",
        kind="percent",
        numerator=Population(numerator, successes),
        denominator=Population(denominator, trials),
        ci95=(100.0 * low, 100.0 * high),
        **extra,  # type: ignore[arg-type]
    )


def _count_of(pct: float, trials: int) -> int:
    return round(min(max(pct, 0.0), 100.0) / 100.0 * trials)


def _phenotype(rng: np.random.Generator, values: Mapping[str, float], ratio: float) -> dict[str, Metric]:
    """The phenotype tube's release metrics as its gates would count them (populations as in the panel)."""
    singlets = int(rng.integers(24_000, 27_000))
    live = _count_of(values["viability_pct"], singlets)
    cd3 = _count_of(values["cd3_pct_live"], live)
    car = _count_of(values["car_pct_cd3"], cd3)
    cd8 = max(1, round(0.93 * car / (1.0 + ratio)))
    cd4 = round(cd8 * ratio)
    base = "Cells/Singlets"
    return {
        "viability_pct": _percent(f"{base}/Live", base, live, singlets),
        "cd3_pct_live": _percent(f"{base}/Live/CD3pos", f"{base}/Live", cd3, live),
        "car_pct_cd3": _percent(f"{base}/Live/CD3pos/CARpos", f"{base}/Live/CD3pos", car, cd3),
        "cd4_cd8_ratio": Metric(
            value=cd4 / cd8,
            unit="",
            kind="ratio",
            numerator=Population(f"{base}/Live/CD3pos/CARpos/CD4vCD8/CD4posCD8neg", cd4),
            denominator=Population(f"{base}/Live/CD3pos/CARpos/CD4vCD8/CD4negCD8pos", cd8),
        ),
    }


def _potency(rng: np.random.Generator, values: Mapping[str, float]) -> dict[str, Metric]:
    """The stimulated tube's net responses: gross counts less the unstimulated tube's background."""
    car = int(rng.integers(6_000, 9_000))
    metrics = {}
    for name, gate in (("ifng_pct_car", "IFNgpos"), ("cd107a_pct_car", "CD107apos")):
        background = round(float(rng.uniform(0.2, 0.6)), 3)
        gross = _count_of(values[name] + background, car)
        percent = _percent(
            f"Cells/Singlets/Live/CD3pos/CARpos/{gate}", "Cells/Singlets/Live/CD3pos/CARpos", gross, car
        )
        assert isinstance(percent.value, float)
        metrics[name] = Metric(
            value=max(0.0, percent.value - background),
            unit="%",
            kind="percent",
            numerator=percent.numerator,
            denominator=percent.denominator,
            evidence={"gross": percent.value, "background": {"value": background}},
        )
    return metrics


def _category(value: str, detail: str | None = None) -> Metric:
    return Metric(value=value, unit=None, kind="category", detail=detail)


def _units(lot_id: str) -> tuple[Unit, ...]:
    """The units of an archived lot, as the demo's unit sheet has them; no data file is kept."""
    spike = {"spike_organism": "Staphylococcus aureus", "spike_concentration": 100.0, "spike_unit": "CFU/mL"}
    return (
        Unit(lot_id, "PHENO", "phenotype", "test", None),
        Unit(lot_id, "STER", "sterility_reads", "test", None, volume_ul=10_000.0),
        Unit(lot_id, "STER-NC1", "sterility_reads", "negative_control", None),
        Unit(lot_id, "STER-NC2", "sterility_reads", "negative_control", None),
        Unit(lot_id, "STER-PC", "sterility_reads", "positive_control", None, **spike),  # type: ignore[arg-type]
        Unit(lot_id, "POT-STIM", "potency", "stimulated", None),
        Unit(lot_id, "POT-UNSTIM", "potency", "unstimulated", None),
        Unit(lot_id, "MICRO", "microbial_flow", "test", None),
        Unit(lot_id, "MICRO-NC", "microbial_flow", "negative_control", None),
        Unit(lot_id, "APHERESIS", "phenotype", "starting_material", None),
    )


def archived_lots(seed: int) -> list[ArchivedLot]:
    """The :data:`N_ARCHIVED_LOTS` earlier lots drawn from ``seed``'s archive stream, in collection order."""
    rng = np.random.default_rng((seed, ARCHIVE_STREAM))
    sites = rng.permutation(np.repeat(np.array(SITES), N_ARCHIVED_LOTS // len(SITES)))
    lots = []
    collected = FIRST_COLLECTION
    for number in range(1, N_ARCHIVED_LOTS + 1):
        lot_id = f"HIST-{number:03d}"
        site = str(sites[number - 1])
        values = {name: float(rng.normal(mean, sd)) for name, (mean, sd) in PROCESS.items()}
        if site == "SITE-B":
            values["viability_pct"] += SITE_B_VIABILITY_OFFSET
        values = {k: min(v, 99.5) for k, v in values.items()}
        ratio = float(math.exp(rng.normal(*LOG_CD4_CD8)))
        tnc = float(math.exp(rng.normal(*LOG_TNC_VIABLE)))
        weight = round(float(np.clip(rng.normal(*WEIGHT_KG), 45.0, 120.0)))
        what, effect = EVENTS.get(number, (None, None))
        contaminant = None
        if effect is not None:
            name, setting = effect.split("=")
            if name == "contaminant_call":
                contaminant = setting
            else:
                values[name] = float(setting)
        when = collected + timedelta(minutes=int(rng.integers(-60, 150)))
        lot = Lot(
            lot_id=lot_id,
            product=PRODUCT,
            spec=RELEASE_SPEC,
            collected_at=when.replace(tzinfo=_offset(when)),
            site=site,
            tnc_viable=float(f"{tnc:.2g}"),
            weight_kg=float(weight),
            starting_spec=STARTING_SPEC,
        )
        apheresis = _phenotype(
            rng,
            {
                "viability_pct": values["apheresis_viability_pct"],
                "cd3_pct_live": max(values["apheresis_cd3_pct_live"], 22.0),
                "car_pct_cd3": 0.0,
            },
            ratio,
        )
        detected = "Staphylococcus epidermidis: 412 reads (41.2 RPM) against 0 in the negative controls"
        metrics: dict[str, dict[str, Metric]] = {
            "PHENO": _phenotype(rng, values, ratio),
            "POT-STIM": _potency(rng, values),
            "MICRO": {"microbial_call": _category("NOT_DETECTED")},
            "STER": {
                "contaminant_call": _category(
                    contaminant or "NOT_DETECTED", detected if contaminant else None
                ),
                "lod": Metric(value=round(values["sterility_lod"], 2), unit="CFU/mL", kind="concentration"),
            },
            "APHERESIS": {k: v for k, v in apheresis.items() if k in ("viability_pct", "cd3_pct_live")},
        }
        lots.append(
            ArchivedLot(
                lot=lot,
                units=_units(lot_id),
                metrics=metrics,
                hours_to_result=round(float(rng.uniform(16.5, 23.0)), 3),
                event=what,
            )
        )
        collected += timedelta(days=int(rng.integers(5, 10)))
    return lots


def _record(archived: ArchivedLot, stage_of: Mapping[str, str]) -> list[UnitRecord]:
    return [
        UnitRecord(
            stage=stage_of[unit.assay],  # type: ignore[arg-type]
            lot_id=unit.lot_id,
            unit_id=unit.unit_id,
            assay=unit.assay,
            role=unit.role,
            metrics=archived.metrics.get(unit.unit_id, {}),
        )
        for unit in archived.units
    ]


def _utc(moment: datetime) -> str:
    """``moment`` in UTC with milliseconds and a ``Z``, as the audit block writes its times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _audit(archived: ArchivedLot, deadline_hours: float) -> dict[str, object]:
    """A synthetic lot's audit block: when it was decided, and that it was simulated, not measured."""
    collected = archived.lot.collected_at
    decided = collected + timedelta(hours=archived.hours_to_result)
    return {
        "rapidrelease_version": metadata.version("rapidrelease"),
        "python_version": "synthetic",
        "packages": {},
        "workflow": None,
        "files": [],
        "settings": {
            "synthetic": "an earlier lot of the demo's history, drawn by rapidrelease simulate-demo"
        },
        "command_line": ["rapidrelease", "simulate-demo"],
        "run_command": None,
        "host": "synthetic",
        "user": "synthetic",
        "started_at": _utc(decided - timedelta(minutes=3)),
        "finished_at": _utc(decided),
        "timeline": {
            "collected_at": _utc(collected),
            "deadline": _utc(collected + timedelta(hours=deadline_hours)),
            "units": [],
            "analysis_start": None,
            "analysis_end": _utc(decided),
            "hours_to_result": archived.hours_to_result,
            "hours_left": round(deadline_hours - archived.hours_to_result, 3),
        },
    }


def write_archive(out_dir: Path, seed: int, specs_path: Path) -> list[tuple[Path, Release]]:
    """Decide every archived lot against the specifications in ``specs_path`` and write
    ``out_dir/<lot>/release.json``, sealed; return (path, record) pairs in collection order."""
    lots = archived_lots(seed)
    units = tuple(u for archived in lots for u in archived.units)
    run = RunConfig(
        config_path=Path("config/config.yaml"),
        results_dir=Path(out_dir),
        deadline_hours=24.0,
        lots={a.lot.lot_id: a.lot for a in lots},
        units=units,
        specs=load_specs(Path(specs_path)),
        settings={},
    )
    stage_of = {unit.assay: RunConfig.record_stage(unit) for unit in units}
    written = []
    for archived in lots:
        decision = evaluate_lot(run, archived.lot.lot_id, _record(archived, stage_of))
        decision = dataclasses.replace(decision, audit=_audit(archived, run.deadline_hours))
        path = Path(out_dir) / archived.lot.lot_id / "release.json"
        write_record(path, decision)
        written.append((path, decision))
    return written
