"""Gating speed: rapidrelease's engine against FlowKit on the same file and the same template.

Not a test (no timed assertions): it prints figures. For each case it writes a file of at least one
million events, gates it with FlowKit's ``GatingStrategy.gate_sample`` and with rapidrelease's engine,
checks that every population count is identical, and prints both times and the ratio (best of
``--repeats`` runs each, file reading timed separately from gating).

Cases:
- ``car-t``: the demo CAR-T phenotype tube simulated with 1,000,000 events, gated with the demo
  GatingML template (polygons on scatter, rectangles and quadrants on logicle axes, compensated
  with the file's $SPILLOVER) — the shape of a real release panel.
- ``gatingml-suite``: the ISAC GatingML 2.0 compliance file tiled to 1,000,000 events, gated with
  all 51 compliance gates (every gate type, transform and Boolean); needs ../shared/data.

Usage: python tests/benchmarks/bench_gating.py [--events N] [--repeats R] [--chunk-size C]
Peak memory of rapidrelease's gating alone (chunked; FlowKit holds every event at once) is printed
from a separate process: python tests/benchmarks/bench_gating.py --memory-only --events 10000000
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import flowio
import flowkit
import numpy as np

from rapidrelease.fcs.reader import read_fcs
from rapidrelease.gating.engine import DEFAULT_CHUNK_SIZE, gate_fcs
from rapidrelease.gating.template import load_template, population_path
from rapidrelease.synthetic.demo.fcs_writer import write_phenotype_fcs
from rapidrelease.synthetic.demo.lots import DEMO_LOTS
from rapidrelease.synthetic.demo.simulate import simulate_tube

ROOT = Path(__file__).resolve().parents[2]
DEMO_TEMPLATE = ROOT / "resources" / "demo" / "car_t_phenotype.gatingml.xml"
GATE_REF = ROOT.parent / "shared" / "data" / "fcs" / "flowkit" / "gate_ref"


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def write_car_t_file(folder: Path, n_events: int) -> Path:
    lot = dataclasses.replace(DEMO_LOTS[0], n_events=n_events)
    tube = simulate_tube(lot)
    path = folder / f"car_t_{n_events}.fcs"
    write_phenotype_fcs(path, tube.events, lot, seed=1, duration=timedelta(seconds=tube.duration_s))
    return path


def write_gatingml_file(folder: Path, n_events: int) -> Path:
    source = flowio.FlowData(str(GATE_REF / "data1.fcs"))
    events = source.as_array(preprocess=False)
    tiled = np.tile(events, (int(np.ceil(n_events / len(events))), 1))[:n_events]
    path = folder / f"gatingml_{n_events}.fcs"
    with open(path, "wb") as fh:
        flowio.create_fcs(
            fh, tiled.astype(np.float32).flatten(), source.pnn_labels, opt_channel_names=source.pns_labels
        )
    return path


def flowkit_counts(results: object) -> dict[str, int]:
    report = results.report  # type: ignore[attr-defined]
    counts = {}
    for row in report.itertuples():
        path = tuple(row.gate_path[1:]) + (
            (row.quadrant_parent,) if isinstance(row.quadrant_parent, str) else ()
        )
        counts[population_path((*path, row.gate_name))] = int(row.count)
    return counts


def run_case(name: str, fcs_path: Path, template: Path, repeats: int, chunk_size: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_fk_read, sample = best_of(repeats, lambda: flowkit.Sample(str(fcs_path)))
        strategy = flowkit.parse_gating_xml(str(template))
        t_fk_gate, fk_results = best_of(repeats, lambda: strategy.gate_sample(sample))
    t_rr_read, fcs = best_of(repeats, lambda: read_fcs(fcs_path))
    tree = load_template(template).tree_for(fcs.sample_id)
    t_rr_gate, rr_result = best_of(repeats, lambda: gate_fcs(fcs, tree, chunk_size=chunk_size))

    theirs = flowkit_counts(fk_results)
    ours = {population_path(p.path): p.count for p in rr_result.populations}  # type: ignore[attr-defined]
    differing = {k: (ours[k], theirs.get(k)) for k in ours if theirs.get(k) != ours[k]}
    print(f"\n== {name}: {fcs.n_events:,} events × {len(fcs.channels)} channels, {len(ours)} populations")
    print(f"   counts identical to FlowKit: {'yes' if not differing else 'NO ' + str(differing)}")
    print(f"   {'':22s}{'FlowKit':>10s}{'rapidrelease':>14s}{'ratio':>9s}")
    for label, fk, rr in (
        ("read FCS", t_fk_read, t_rr_read),
        ("gate (whole tree)", t_fk_gate, t_rr_gate),
        ("read + gate", t_fk_read + t_fk_gate, t_rr_read + t_rr_gate),
    ):
        print(f"   {label:22s}{fk:>9.3f}s{rr:>13.3f}s{fk / rr:>8.1f}×")


def peak_resident_mb() -> float:
    """Peak resident memory of this process image in MB (Linux VmHWM). getrusage's ru_maxrss is not
    used: across fork and exec it keeps the parent's high-water mark (here, the simulation's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory(fcs_path: Path, template: Path, chunk_size: int) -> None:
    fcs = read_fcs(fcs_path)
    tree = load_template(template).tree_for(fcs.sample_id)
    start = time.perf_counter()
    result = gate_fcs(fcs, tree, chunk_size=chunk_size)
    elapsed = time.perf_counter() - start
    peak_mb = peak_resident_mb()
    print(
        f"rapidrelease gated {result.n_events:,} events ({fcs.size_bytes / 1e6:,.0f} MB file) "
        f"in {elapsed:.2f} s, chunk {chunk_size:,}: peak resident memory {peak_mb:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument(
        "--memory-only", action="store_true", help="gate with rapidrelease only; print peak memory"
    )
    parser.add_argument("--fcs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.memory_only:
            fcs = args.fcs or write_car_t_file(folder, args.events)
            if args.fcs is None:
                # measure in a fresh process, so the simulation's memory is not counted
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--memory-only",
                        "--fcs",
                        str(fcs),
                        "--chunk-size",
                        str(args.chunk_size),
                    ],
                    check=True,
                )
            else:
                peak_memory(fcs, DEMO_TEMPLATE, args.chunk_size)
            return
        run_case("car-t", write_car_t_file(folder, args.events), DEMO_TEMPLATE, args.repeats, args.chunk_size)
        if GATE_REF.is_dir():
            gml = GATE_REF / "gml" / "gml_all_gates.xml"
            run_case(
                "gatingml-suite", write_gatingml_file(folder, args.events), gml, args.repeats, args.chunk_size
            )
        else:
            print(f"\n(gatingml-suite skipped: {GATE_REF} not found)")


if __name__ == "__main__":
    main()
