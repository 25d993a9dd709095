"""Minimizers against a literal re-statement of Kraken 2's definition, base by base."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidrelease.reads.kmers import KRAKEN2_DEFAULTS, MinimizerSpec, kmer_minimizers, lmer_values

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _value(text: str) -> int:
    value = 0
    for base in text:
        value = (value << 2) | "ACGT".index(base)
    return value


def _literal(seq: str, spec: MinimizerSpec) -> list[int | None]:
    """Kraken 2's minimizer of each k-mer written out directly (None for an ambiguous k-mer):
    the smallest, under XOR with the toggle mask, of the canonical spaced-seed-masked l-mers."""
    toggle = spec.toggle_mask & spec.lmer_mask
    out: list[int | None] = []
    for i in range(len(seq) - spec.k + 1):
        kmer = seq[i : i + spec.k].upper()
        if any(base not in "ACGT" for base in kmer):
            out.append(None)
            continue
        candidates = []
        for j in range(spec.window):
            lmer = kmer[j : j + spec.l]
            reverse = lmer.translate(COMPLEMENT)[::-1]
            canonical = min(_value(lmer), _value(reverse)) & spec.spaced_seed_mask
            candidates.append(canonical ^ toggle)
        out.append(min(candidates) ^ toggle)
    return out


def _check(seq: str, spec: MinimizerSpec) -> None:
    minimizers, ambiguous = kmer_minimizers(np.frombuffer(seq.encode(), dtype=np.uint8), spec)
    expected = _literal(seq, spec)
    assert ambiguous.tolist() == [m is None for m in expected]
    assert [int(m) for m, e in zip(minimizers, expected, strict=True) if e is not None] == [
        e for e in expected if e is not None
    ]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ACGTacgtNRY", min_size=0, max_size=300))
def test_minimizers_equal_kraken2s_definition_on_any_sequence(seq: str):
    _check(seq, KRAKEN2_DEFAULTS)


@pytest.mark.parametrize("l", [9, 15, 16, 17, 23, 24, 31])
def test_every_minimizer_length_from_9_to_31(l: int):  # noqa: E741
    rng = np.random.default_rng(l)
    seq = "".join(rng.choice(list("ACGT"), size=250))
    _check(seq, MinimizerSpec(k=l + 6, l=l, spaced_positions=min(3, l // 2)))


def test_a_sequence_and_its_reverse_complement_share_minimizers():
    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGT"), size=400))
    reverse = seq.translate(COMPLEMENT)[::-1]
    forward_m, _ = kmer_minimizers(np.frombuffer(seq.encode(), dtype=np.uint8))
    reverse_m, _ = kmer_minimizers(np.frombuffer(reverse.encode(), dtype=np.uint8))
    # canonical minimizers: the k-mer at i is the reverse complement of the k-mer at n - k - i
    assert np.array_equal(forward_m, reverse_m[::-1])


def test_a_mismatch_at_a_spaced_position_keeps_the_minimizer():
    # Kraken 2's spaced seed ignores alternate positions near the l-mer's end: with k = l the
    # minimizer is the l-mer itself, so a substitution there must leave it unchanged
    spec = MinimizerSpec(k=31, l=31, spaced_positions=7)
    seq = "ACGTTGCAAGGCTTACCGATAGCATTGACCA"
    forward_only = seq if _value(seq) <= _value(seq.translate(COMPLEMENT)[::-1]) else None
    assert forward_only is not None
    spaced_position = 31 - 2  # pattern ends ...0101: the second-to-last base is ignored
    mutated = (
        seq[:spaced_position] + ("A" if seq[spaced_position] != "A" else "C") + seq[spaced_position + 1 :]
    )
    a, _ = kmer_minimizers(np.frombuffer(seq.encode(), dtype=np.uint8), spec)
    b, _ = kmer_minimizers(np.frombuffer(mutated.encode(), dtype=np.uint8), spec)
    assert a.tolist() == b.tolist()


def test_lmer_values_are_the_two_bit_packing_of_both_strands():
    codes = np.array(
        [0, 1, 2, 3, 3, 2, 1, 0, 0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 2, 3], dtype=np.uint8
    )  # ACGTTGCAAACCGGTTACGT
    forward, reverse = lmer_values(codes, 20)
    assert int(forward[0]) == _value("ACGTTGCAAACCGGTTACGT")
    assert int(reverse[0]) == _value("ACGTAACCGGTTTGCAACGT")


def test_sequences_shorter_than_k_have_no_kmers():
    minimizers, ambiguous = kmer_minimizers(np.frombuffer(b"ACGT" * 8, dtype=np.uint8))
    assert minimizers.size == 0 and ambiguous.size == 0
