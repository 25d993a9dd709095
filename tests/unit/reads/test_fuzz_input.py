"""Bounded fuzzing of the read input: mutated FASTQ, gzip, BGZF, FASTA, SAM and BAM files may only
raise ReadsError.

Seeds, mutations and target are those of tests/support/fuzz.py (which tests/fuzz/fuzz_readers.py
runs for as long as a developer likes): bytes flipped, inserted, deleted or cut in the decompressed
or the compressed file, BAM header and record fields set to extremes, and the file read alone,
counted, as an interleaved file and as both mates of a pair. A failure is any other exception (a
pysam error leaking, zlib.error, IndexError, ...), a NumPy RuntimeWarning or an execution over 5 s.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidrelease.reads.input import iter_read_batches

from support import fuzz


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    return fuzz.reads_seeds(tmp_path_factory.mktemp("seeds"))


def test_every_seed_reads_completely(seeds, tmp_path):
    # six real reads per FASTQ seed, three pairs and a reverse-strand single read for SAM/BAM: the
    # mutations start from files that are read, not from ones refused at the first byte
    for name, seed in seeds.items():
        path = tmp_path / name
        path.write_bytes(fuzz.mutate_reads(seed, []))
        assert sum(b.n_reads for b in iter_read_batches(path)) == {"fasta": 3, "sam": 4, "bam": 4}.get(
            name, 6
        ), name


@settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(["fastq", "fastq_gzip", "fastq_bgzf", "fasta", "sam", "bam"]), data=st.data())
def test_mutated_read_files_raise_only_reads_errors(seeds, name, data, tmp_path):
    fuzz.run_reads_ops(seeds[name], fuzz.draw_reads_ops(fuzz.HypothesisPick(data)), tmp_path)
