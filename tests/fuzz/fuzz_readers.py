"""Fuzz the FCS reader and the read-file input with mutations of small valid files.

    .venv/bin/python tests/fuzz/fuzz_readers.py --seconds 600 [--seed 1] [--out /tmp/fuzz]

Each execution takes a small real file (FCS: FACSCalibur FCS 2.0 16-bit, Fortessa FCS 3.0 floats,
Cytek xP5, plus delimited and fixed-width ASCII and a two-data-set chain; reads: FASTQ plain, gzip
and BGZF, FASTA, SAM and BAM written from real reads), applies a few mutations — byte flips,
inserts, deletes and truncations in the HEADER, TEXT or DATA (or in the compressed or decompressed
bytes), keyword values set to hostile ones ($PAR, $TOT, $DATATYPE, $BYTEORD, $PnB, offsets, dates),
BAM header and record fields set to extremes — and reads the result completely. The only exceptions
allowed are the project's own (FCSReadError, ReadsError: one sentence naming the file); anything
else, a NumPy RuntimeWarning, the reader's catch-all "is malformed" message or an execution slower
than --hang-seconds is a failure, printed with the seed file, the mutations and the path of the
mutated bytes so it can be replayed (``--replay FILE --target fcs|reads``).

The seeds, mutations and targets live in tests/support/fuzz.py, which the unit tests
tests/unit/fcs/test_fuzz_reader.py and tests/unit/reads/test_fuzz_input.py run for a bounded number of
Hypothesis examples. This file is not collected by pytest (tests/fuzz is outside testpaths).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

# Run as a script, this file sees only tests/fuzz on sys.path; put tests/ there, as pytest does, so
# the fuzzing helpers import as support.fuzz in both.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.fuzz import (
    Op,
    RandomPick,
    draw_fcs_ops,
    draw_reads_ops,
    fcs_seeds,
    mutate_fcs,
    mutate_reads,
    reads_seeds,
    run_fcs,
    run_reads,
)

# --- the command ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total fuzzing time, split over targets")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "rapidrelease-fuzz")
    parser.add_argument("--replay", type=Path, help="run one saved input instead of fuzzing")
    parser.add_argument("--target", choices=("fcs", "reads"), help="target of --replay")
    parser.add_argument("--mode", default="single", help="reads mode of --replay")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="address-space limit of this process")
    args = parser.parse_args(argv)
    # a reader that tries to allocate what a corrupt file claims fails with MemoryError, not the host
    limit = int(args.memory_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=args.out))
    if args.replay:
        data = args.replay.read_bytes()
        run = run_fcs if args.target == "fcs" else lambda d, f: run_reads(d, args.mode, 3, f)
        try:
            run(data, work)
        except Exception:
            traceback.print_exc()
            return 1
        print(f"{args.replay}: no failure")
        return 0

    seed = args.seed if args.seed is not None else time.time_ns() % (1 << 32)
    rng = random.Random(seed)
    pick = RandomPick(rng)
    fcs = fcs_seeds()
    reads = reads_seeds(work)
    targets: dict[str, Callable[[], tuple[str, list[Op], bytes, Callable[[], None]]]] = {}

    def fcs_case() -> tuple[str, list[Op], bytes, Callable[[], None]]:
        name = pick.choice(sorted(fcs))
        ops = draw_fcs_ops(pick)
        data = mutate_fcs(fcs[name], ops)
        return name, ops, data, lambda: run_fcs(data, work)

    def reads_case() -> tuple[str, list[Op], bytes, Callable[[], None]]:
        name = pick.choice(sorted(reads))
        ops = draw_reads_ops(pick)
        data = mutate_reads(reads[name], ops)
        return name, ops, data, lambda: run_reads(data, ops[0][1], ops[0][2], work)

    targets = {"fcs.read_fcs": fcs_case, "reads.iter_read_batches": reads_case}
    print(f"fuzzing {len(targets)} targets for {args.seconds:g} s (seed {seed}); inputs kept in {args.out}")
    failures = 0
    for target, case in targets.items():
        executions, seen = 0, set()
        started = time.monotonic()
        deadline = started + args.seconds / len(targets)
        while time.monotonic() < deadline:
            name, ops, data, run = case()
            executions += 1
            try:
                run()
            except Exception as exc:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                key = (type(exc).__name__, where.filename, where.lineno)
                if key in seen:
                    continue
                seen.add(key)
                failures += 1
                saved = args.out / f"failure-{target}-{len(seen)}.bin"
                saved.write_bytes(data)
                mode = f" --mode {ops[0][1]}" if target.startswith("reads") else ""
                print(f"\nFAILURE in {target}: {type(exc).__name__}: {exc}")
                print(f"  seed file {name!r}, mutations {ops!r}")
                print(f"  replay: .venv/bin/python tests/fuzz/fuzz_readers.py --replay {saved} "
                      f"--target {target.split('.')[0]}{mode}")  # fmt: skip
                print("  " + "".join(traceback.format_exception(exc, limit=-4)).replace("\n", "\n  "))
        elapsed = time.monotonic() - started
        print(f"{target}: {executions:,} executions in {elapsed:.0f} s ({executions / elapsed:,.0f}/s), "
              f"{len(seen)} distinct failure(s)")  # fmt: skip
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
