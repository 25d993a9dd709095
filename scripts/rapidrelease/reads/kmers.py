"""Minimizers of DNA k-mers, as Kraken 2 defines them, for every position of many sequences at once.

Kraken 2 (Wood, Lu & Langmead 2019; ``src/mmscanner.cc``) does not store k-mers: each k-mer
(``k`` = 35 bases) is represented by its minimizer, the smallest of its ``k - l + 1`` canonical
l-mers (``l`` = 31) under an order scrambled by XOR with a toggle mask, after a spaced-seed mask has
zeroed some positions (``s`` = 7 alternate positions near the l-mer's end) so that a mismatch there
does not change the minimizer. A read's consecutive k-mers mostly share a minimizer, so a classifier
looks one up only when it changes.

Here the scanner is vectorised: a whole batch of sequences is encoded in one array and every
l-mer, canonical form, window minimum and ambiguity flag is computed by array operations. The
values are bit for bit Kraken 2's (``l`` ≤ 31, DNA, reverse-complement version 1). l-mers are
assembled from 16-base pieces (uint32), themselves from 8-base pieces whose reverse complements are
looked up in a 65,536-entry table, so most passes over the data are on narrow values.

Why minimizers rather than every canonical k-mer: ``k = l = 31`` with no spaced seed makes every
canonical 31-mer its own minimizer, and ``tests/benchmarks/bench_classify.py --compare-kmers``
measures both designs on the same 42.6-Mb panel and 1,000,000 reads. Every 31-mer gives 3.1× the
entries (157.7 against 51.5 MiB), a 2.7× slower classifier (35,500 against 95,800 reads/s),
2.2× its memory and the same recall and precision, but 114 of 250,000 human reads missing from the
index called SARS-CoV-2 against none: their poly(T) stretches match the 33-base poly(A) tail of
the virus's genome as 31-mers, which no 35-mer can (that build is unmasked, as Kraken 2's is there;
DUST masking, the default, would remove the tail too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AMBIGUOUS",
    "ENCODE",
    "KRAKEN2_DEFAULTS",
    "MinimizerSpec",
    "encode",
    "kmer_minimizers",
    "lmer_values",
]

AMBIGUOUS = np.uint8(4)
"""Code of any character that is not A, C, G or T (either case)."""


def _encode_table() -> np.ndarray:
    table = np.full(256, AMBIGUOUS, dtype=np.uint8)
    for code, base in enumerate(b"ACGT"):
        table[base] = code
        table[base + 32] = code  # lower case (soft-masked) bases count, as in Kraken 2
    return table


ENCODE = _encode_table()
"""ASCII byte → 2-bit base code (A 0, C 1, G 2, T 3), 4 for anything else."""


def _reverse_complement_8mers() -> np.ndarray:
    # For every 16-bit 8-mer, its reverse complement: base j (from the left) goes to position 7 - j,
    # complemented (3 - code).
    values = np.arange(1 << 16, dtype=np.uint32)
    out = np.zeros(1 << 16, dtype=np.uint32)
    for j in range(8):
        base = (values >> (2 * (7 - j))) & 3
        out |= (3 - base) << (2 * j)
    return out.astype(np.uint16)


_RC8 = _reverse_complement_8mers()

U64 = np.uint64


@dataclass(frozen=True)
class MinimizerSpec:
    """Minimizer parameters: Kraken 2's defaults (k 35, l 31, 7 spaced positions, its toggle mask)."""

    k: int = 35
    l: int = 31  # noqa: E741 - the letter Kraken 2's paper and code use
    spaced_positions: int = 7
    toggle_mask: int = 0xE37E28C4271B5A2D

    def __post_init__(self) -> None:
        if not 9 <= self.l <= 31 or self.k < self.l:
            raise ValueError(f"need 9 <= l <= 31 and k >= l, not k={self.k}, l={self.l}")
        if 2 * self.spaced_positions > self.l:
            raise ValueError("spaced positions must leave at least half of the l-mer")

    @property
    def window(self) -> int:
        """l-mers per k-mer (k - l + 1)."""
        return self.k - self.l + 1

    @property
    def lmer_mask(self) -> int:
        return (1 << (2 * self.l)) - 1

    @property
    def spaced_seed_mask(self) -> int:
        """Kraken 2's default seed ``"1" * (l - 2s) + "01" * s``, a character per base (2 bits)."""
        pattern = "1" * (self.l - 2 * self.spaced_positions) + "01" * self.spaced_positions
        return int("".join(c * 2 for c in pattern), 2)

    def as_dict(self) -> dict[str, int]:
        return {
            "k": self.k,
            "l": self.l,
            "spaced_positions": self.spaced_positions,
            "toggle_mask": self.toggle_mask,
        }


def encode(seq: np.ndarray) -> np.ndarray:
    """2-bit codes of ASCII bases, shape as ``seq``; 4 (:data:`AMBIGUOUS`) for anything not ACGT."""
    return ENCODE[seq]


def lmer_values(codes: np.ndarray, l: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: E741
    """Forward and reverse-complement values of every l-mer, uint64, shape ``(len(codes) - l + 1,)``.

    ``codes`` are base codes 0–3 (ambiguous positions must be handled by the caller; their low two
    bits are used as they are). The forward value packs the l-mer's first base in the highest bits;
    the reverse complement is the forward value of the l-mer's reverse complement (Kraken 2's
    ``reverse_complement`` with ``revcom_version`` 1).
    """
    n = len(codes) - l + 1
    if n <= 0:
        empty = np.zeros(0, dtype=U64)
        return empty, empty
    # Build 16-mers (uint32) from 8-mers (uint16) from 4-mers (uint8): the narrow passes are cheap,
    # and an l-mer (l <= 31) is then at most two 16-mers, so only a few passes touch 8-byte values.
    c = codes & np.uint8(3)
    if l < 16:  # room for a whole 16-mer after the last l-mer; the padding's bits are shifted out
        c = np.concatenate([c, np.zeros(16 - l, dtype=np.uint8)])
    f2 = (c[:-1] << np.uint8(2)) | c[1:]
    f4 = (f2[:-2] << np.uint8(4)) | f2[2:]
    f8 = (f4[:-4].astype(np.uint16) << np.uint16(8)) | f4[4:]
    r8 = _RC8[f8]
    f16 = (f8[:-8].astype(np.uint32) << np.uint32(16)) | f8[8:]  # 16-mer starting at each position
    r16 = (r8[8:].astype(np.uint32) << np.uint32(16)) | r8[:-8]  # its reverse complement
    del c, f2, f4, f8, r8  # memory is bounded by what is alive at once
    if l <= 16:
        fwd = (f16[:n] >> np.uint32(2 * (16 - l))).astype(U64)
        rev = (r16[:n] & np.uint32((1 << (2 * l)) - 1)).astype(U64)
        return fwd, rev
    # l = 16 + t: the 16-mer at i, then the last t bases (the low bits of the 16-mer ending at the
    # l-mer's last base); the reverse complement puts the complement of those t bases first.
    t = l - 16
    fwd = f16[:n].astype(U64) << U64(2 * t)
    fwd |= (f16[t : t + n] & np.uint32((1 << (2 * t)) - 1)).astype(U64)
    rev = (r16[t : t + n] >> np.uint32(2 * (16 - t))).astype(U64) << U64(32)
    rev |= r16[:n].astype(U64)
    return fwd, rev


KRAKEN2_DEFAULTS = MinimizerSpec()
"""Kraken 2's defaults: k 35, l 31, 7 spaced positions, its toggle mask."""


def kmer_minimizers(seq: np.ndarray, spec: MinimizerSpec = KRAKEN2_DEFAULTS) -> tuple[np.ndarray, np.ndarray]:
    """The minimizer of every k-mer of ``seq`` and whether the k-mer is ambiguous.

    ``seq`` is uint8 ASCII, shape ``(n,)``, possibly many sequences joined by non-ACGT separators
    (a k-mer that spans a separator is ambiguous). Returns ``(minimizers, ambiguous)``, both of shape
    ``(n - k + 1,)``: minimizer ``i`` belongs to the k-mer starting at ``i`` (uint64, Kraken 2's value:
    the canonical, spaced-seed-masked l-mer), and ``ambiguous[i]`` is True when that k-mer holds a
    non-ACGT character (Kraken 2 then counts it as an ambiguous span, not a lookup).
    """
    codes = ENCODE[seq]
    n_kmers = len(seq) - spec.k + 1
    if n_kmers <= 0:
        return np.zeros(0, dtype=U64), np.zeros(0, dtype=bool)
    fwd, rev = lmer_values(codes, spec.l)
    candidate = np.minimum(fwd, rev, out=fwd)
    del rev
    candidate &= U64(spec.spaced_seed_mask)
    candidate ^= U64(spec.toggle_mask & spec.lmer_mask)
    # ambiguity: count non-ACGT characters per window through one cumulative sum; it may wrap around
    # in uint16, but a difference over a window shorter than 65,536 bases is still exact
    bad = np.zeros(len(codes) + 1, dtype=np.uint16)
    np.cumsum(codes == AMBIGUOUS, out=bad[1:], dtype=np.uint16)
    ambiguous_lmer = bad[spec.l :] != bad[: len(bad) - spec.l]
    # an ambiguous l-mer must never be a window's minimum
    candidate[ambiguous_lmer] = U64(np.iinfo(np.uint64).max)
    window = _sliding_minimum(candidate, spec.window)[:n_kmers]
    ambiguous = bad[spec.k : spec.k + n_kmers] != bad[:n_kmers]
    window ^= U64(spec.toggle_mask & spec.lmer_mask)
    return window, ambiguous


def _sliding_minimum(values: np.ndarray, width: int) -> np.ndarray:
    """Minimum of each run of ``width`` consecutive values, shape ``(len(values) - width + 1,)``."""
    if width == 1:
        return values.copy()
    # van Herk/Gil-Werman would be O(n) per pass count independent of width; for Kraken 2's small
    # windows (5) doubling takes ceil(log2 width) + 1 passes and is simpler.
    result = values
    span = 1
    while span * 2 <= width:
        result = np.minimum(result[:-span], result[span:])
        span *= 2
    if span < width:
        result = np.minimum(
            result[: len(values) - width + 1], result[width - span : width - span + len(values) - width + 1]
        )
    return result
