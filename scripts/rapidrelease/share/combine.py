"""``rapidrelease share combine``: pool programs' packages into a network benchmark.

Every package is read and checked first (:func:`rapidrelease.share.package.read_package`: schema,
version, SHA-256 of every file); one that fails stops the combination with its sentence, since a
benchmark that silently left a program out would misstate the network. Two packages of the same
program (same pseudonym) would count its lots twice and are refused.

Per platform and attribute the programs' summaries are pooled exactly where the summaries allow it:

- lots and results add up; the pooled pass rate is passes over judged lots (pass + fail) with its
  Wilson 95 % interval (:func:`rapidrelease.stats.wilson_interval`);
- the pooled mean is the lots-weighted mean of the programs' means, the pooled SD from the
  programs' within sums of squares plus their between sum of squares (the SD of the programs'
  values taken together, computed without them);
- each program's position is its mean's z against the pooled mean and SD, with its quartiles;
- each pair of programs' equivalence is the Welch TOST of the lots index
  (:func:`rapidrelease.report.trends.equivalence_of_summaries`) from their counts, means and SDs,
  within the margins given per attribute.

Quantiles cannot be pooled from quantiles; the page shows each program's own beside the pooled
mean ± 2 SD. Aggregates of a private package carry OpenDP's noise, and the intervals here do not
widen for it (the page says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import ascii_uppercase
from typing import Any

import polars as pl

from rapidrelease.errors import ShareError
from rapidrelease.outputs import dumps_json, write_text
from rapidrelease.report.trends import Equivalence, equivalence_of_summaries
from rapidrelease.share.package import Package, package_sha256, read_package
from rapidrelease.stats import wilson_interval

__all__ = [
    "ProgramSummary",
    "PooledGroup",
    "Contaminant",
    "Benchmark",
    "pooled_moments",
    "pool_packages",
    "combine_packages",
]


BENCHMARK_TABLE = "benchmark.parquet"
"""The pooled groups of a combined benchmark, one row per platform and attribute."""

POOLED_SCHEMA: dict[str, pl.DataType] = {
    "platform": pl.String,
    "attribute": pl.String,
    "unit": pl.String,
    "kind": pl.String,
    "programs": pl.Int64,
    "n_lots": pl.Int64,
    "n_pass": pl.Int64,
    "n_judged": pl.Int64,
    "pass_rate": pl.Float64,
    "pass_low95": pl.Float64,
    "pass_high95": pl.Float64,
    "n_values": pl.Int64,
    "mean": pl.Float64,
    "sd": pl.Float64,
}
"""The columns of :data:`BENCHMARK_TABLE` and their types (the lots index reads exactly these)."""


@dataclass(frozen=True)
class ProgramSummary:
    """One program's summary of one platform's attribute, and where it sits in the pooled one."""

    program: str
    n_lots: int
    n_pass: int | None
    n_fail: int | None
    n_values: int | None
    mean: float | None
    sd: float | None
    quantiles: Mapping[str, float | None]
    z: float | None
    private: bool


@dataclass(frozen=True)
class PooledGroup:
    """One platform's attribute across the network."""

    platform: str
    attribute: str
    unit: str
    kind: str
    programs: tuple[ProgramSummary, ...]
    n_lots: int
    n_pass: int
    n_judged: int
    pass_rate: float | None
    pass_interval: tuple[float, float] | None
    n_values: int
    mean: float | None
    sd: float | None
    comparisons: tuple[Equivalence, ...]
    reasons: Mapping[str, int]


@dataclass(frozen=True)
class Contaminant:
    """An organism the network's sterility assays detected: lots per platform, programs."""

    organism: str
    platform: str
    lots: int
    programs: int


@dataclass(frozen=True)
class Benchmark:
    """The pooled network: programs (label → pseudonym), groups, contaminants."""

    programs: Mapping[str, str]
    private_programs: tuple[str, ...]
    groups: tuple[PooledGroup, ...]
    contaminants: tuple[Contaminant, ...]


def pooled_moments(
    parts: Sequence[tuple[int, float, float | None]],
) -> tuple[int, float | None, float | None]:
    """Count, mean and sample SD of the union of groups given as (count, mean, SD or None).

    Exact for exact summaries: total sum of squares = Σ (nᵢ − 1)·sdᵢ² + Σ nᵢ·(meanᵢ − mean)². A
    group of one value has no SD (its within sum of squares is 0).
    """
    used = [(n, m, s) for n, m, s in parts if n > 0]
    total = sum(n for n, _, _ in used)
    if total == 0:
        return 0, None, None
    mean = math.fsum(n * m for n, m, _ in used) / total
    if total < 2:
        return total, mean, None
    within = math.fsum((n - 1) * (s or 0.0) ** 2 for n, _, s in used)
    between = math.fsum(n * (m - mean) ** 2 for n, m, _ in used)
    return total, mean, math.sqrt((within + between) / (total - 1))


def _labels(packages: Sequence[Package]) -> dict[str, str]:
    seen: dict[str, Path] = {}
    for package in packages:
        if package.program in seen:
            raise ShareError(
                f"{package.path}: is of the same program as {seen[package.program]} (pseudonym "
                f"{package.program}); combining both would count its lots twice."
            )
        seen[package.program] = package.path
    letters = [ascii_uppercase[i % 26] * (1 + i // 26) for i in range(len(packages))]
    return {f"Program {letter}": p.program for letter, p in zip(letters, packages, strict=True)}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def pool_packages(
    packages: Sequence[Package], margins: Mapping[str, float] | None = None, alpha: float = 0.05
) -> Benchmark:
    """Pool checked packages (:func:`read_package`); ``margins`` per attribute for the TOST."""
    labels = _labels(packages)
    by_program = dict(zip(labels, packages, strict=True))
    summaries = pl.concat(
        [
            p.tables["summaries"].with_columns(pl.lit(label).alias("program"))
            for label, p in by_program.items()
        ]
    )
    reasons = pl.concat(
        [p.tables["reasons"].with_columns(pl.lit(label).alias("program")) for label, p in by_program.items()]
    )
    private = tuple(label for label, p in by_program.items() if p.manifest["settings"]["privacy"] is not None)
    groups = []
    keys = summaries.select("platform", "attribute", "unit", "kind").unique().sort("platform", "attribute")
    for platform, attribute, unit, kind in keys.iter_rows():
        rows = summaries.filter((pl.col("platform") == platform) & (pl.col("attribute") == attribute))
        programs_rows = list(rows.sort("program").iter_rows(named=True))
        n_values, mean, sd = pooled_moments(
            [(r["n_values"] or 0, r["mean"], r["sd"]) for r in programs_rows if r["mean"] is not None]
        )
        n_pass = sum(r["n_pass"] or 0 for r in programs_rows)
        n_judged = n_pass + sum(r["n_fail"] or 0 for r in programs_rows)
        programs = tuple(
            ProgramSummary(
                program=r["program"],
                n_lots=r["n_lots"],
                n_pass=_int(r["n_pass"]),
                n_fail=_int(r["n_fail"]),
                n_values=_int(r["n_values"]),
                mean=r["mean"],
                sd=r["sd"],
                quantiles={q: r[q] for q in ("q05", "q25", "q50", "q75", "q95")},
                z=(r["mean"] - mean) / sd if r["mean"] is not None and mean is not None and sd else None,
                private=r["program"] in private,
            )
            for r in programs_rows
        )
        comparisons = []
        if kind != "category":
            margin = (margins or {}).get(attribute)
            for i, a in enumerate(programs):
                for b in programs[i + 1 :]:
                    comparisons.append(
                        equivalence_of_summaries(
                            a.program,
                            a.n_values or 0,
                            a.mean,
                            None if a.sd is None else a.sd**2,
                            b.program,
                            b.n_values or 0,
                            b.mean,
                            None if b.sd is None else b.sd**2,
                            margin,
                            alpha,
                        )
                    )
        counted = reasons.filter((pl.col("platform") == platform) & (pl.col("attribute") == attribute))
        by_reason = (
            counted.group_by("result", "category").agg(pl.col("lots").sum()).sort("result", "category")
        )
        groups.append(
            PooledGroup(
                platform=platform,
                attribute=attribute,
                unit=unit,
                kind=kind,
                programs=programs,
                n_lots=int(rows["n_lots"].sum()),
                n_pass=n_pass,
                n_judged=n_judged,
                pass_rate=n_pass / n_judged if n_judged else None,
                pass_interval=wilson_interval(n_pass, n_judged) if n_judged else None,
                n_values=n_values,
                mean=mean,
                sd=sd,
                comparisons=tuple(comparisons),
                reasons={f"{r} · {c}": int(n) for r, c, n in by_reason.iter_rows()},
            )
        )
    organisms = pl.concat(
        [
            p.tables["organisms"].with_columns(pl.lit(label).alias("program"))
            for label, p in by_program.items()
        ]
    )
    contaminants = tuple(
        Contaminant(organism, platform, int(lots), int(programs))
        for organism, platform, lots, programs in organisms.group_by("organism", "platform")
        .agg(pl.col("lots").sum(), pl.col("program").n_unique().alias("programs"))
        .sort("lots", "organism", descending=[True, False])
        .iter_rows()
    )
    return Benchmark(labels, private, tuple(groups), contaminants)


def _pooled_table(benchmark: Benchmark) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "platform": g.platform,
                "attribute": g.attribute,
                "unit": g.unit,
                "kind": g.kind,
                "programs": len(g.programs),
                "n_lots": g.n_lots,
                "n_pass": g.n_pass,
                "n_judged": g.n_judged,
                "pass_rate": g.pass_rate,
                "pass_low95": None if g.pass_interval is None else g.pass_interval[0],
                "pass_high95": None if g.pass_interval is None else g.pass_interval[1],
                "n_values": g.n_values,
                "mean": g.mean,
                "sd": g.sd,
            }
            for g in benchmark.groups
        ],
        schema=POOLED_SCHEMA,
    )


def combine_packages(
    paths: Sequence[Path], out_dir: Path, margins: Mapping[str, float] | None = None, alpha: float = 0.05
) -> Benchmark:
    """Check and pool the packages in ``paths``; write ``benchmark.html`` (the page),
    ``benchmark.parquet`` (the pooled groups) and ``benchmark.json`` (which packages, by their
    manifests' SHA-256, and the settings) into ``out_dir``."""
    from rapidrelease.share.page import render_benchmark

    if len(paths) < 1:
        raise ShareError("give at least one package to combine.")
    packages = [read_package(Path(p)) for p in paths]
    benchmark = pool_packages(packages, margins, alpha)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "benchmark.html", render_benchmark(benchmark))
    _pooled_table(benchmark).write_parquet(out_dir / BENCHMARK_TABLE)
    write_text(
        out_dir / "benchmark.json",
        dumps_json(
            {
                "programs": [
                    {"label": label, "program": p.program, "manifest_sha256": package_sha256(p.path)}
                    for label, p in zip(benchmark.programs, packages, strict=True)
                ],
                "margins": dict(margins or {}),
                "alpha": alpha,
            }
        ),
    )
    return benchmark
