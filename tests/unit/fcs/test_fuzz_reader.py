"""Bounded fuzzing of read_fcs: mutated small valid files may only raise FCSReadError.

The seeds, mutations and target are those of tests/support/fuzz.py, which
tests/fuzz/fuzz_readers.py runs for as long as a developer likes; here Hypothesis draws a fixed
number of mutation lists, so a failure shrinks to a few mutations and is replayed from Hypothesis'
database. A failure is an exception other than FCSReadError, a NumPy RuntimeWarning, the reader's
catch-all "is malformed" message or an execution over 5 s.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidrelease.errors import FCSReadError
from rapidrelease.fcs.reader import read_fcs

from support import fuzz

SEEDS = fuzz.fcs_seeds()


def test_every_seed_is_a_valid_file_with_events(tmp_path: Path):
    # mutations of a file that is already refused would only test the first check
    for name, content in SEEDS.items():
        path = tmp_path / f"{name}.fcs"
        path.write_bytes(content)
        fcs = read_fcs(path)
        assert fcs.n_events > 0 and fcs.events().shape == (fcs.n_events, len(fcs.channels)), name


@settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(sorted(SEEDS)), data=st.data())
def test_mutated_fcs_files_raise_only_fcs_read_errors(name, data, tmp_path):
    ops = fuzz.draw_fcs_ops(fuzz.HypothesisPick(data))
    fuzz.run_fcs(fuzz.mutate_fcs(SEEDS[name], ops), tmp_path)


@pytest.mark.parametrize("tot", ["1000000000000", "4611686018427387904"])
def test_a_huge_tot_is_refused_against_the_data_segment_without_allocating_it(tmp_path, tot):
    # $TOT = 10^12 events of 16 bytes would be 16 TB: the reader must compare it with the DATA
    # segment's size and refuse, never try to allocate or read that much.
    path = tmp_path / "huge_tot.fcs"
    path.write_bytes(fuzz.mutate_fcs(SEEDS["fortessa_fcs3.0_float"], [("keyword", "$TOT", tot)]))
    tracemalloc.start()
    with pytest.raises(FCSReadError) as caught:
        read_fcs(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "is truncated: DATA needs" in str(caught.value) and f"$TOT={tot}" in str(caught.value)
    assert peak < 10 << 20  # well under 10 MB: nothing sized by $TOT was allocated
