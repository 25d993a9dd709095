"""SAM, BAM and CRAM input through pysam (:mod:`rapidrelease.reads.alignments`): primary reads as
sequenced, pairs by FLAG, the mate buffer's bound, and one sentence for every damaged file.

The bcftools chr17 BAMs come from ../shared/data (the ``shared_data`` fixture skips without it); the
other files are written with pysam into ``tmp_path``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pysam
import pytest

from rapidrelease.reads import alignments
from rapidrelease.reads.input import iter_read_batches, read_stats

from support.reads import (
    CHR17_BAMS,
    HOSTILE_R1,
    HOSTILE_R2,
    pysam_reads,
    reads_error,
    reads_of,
)

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def _primary_reads(path: Path) -> dict[tuple[str, int], str]:
    """Independent truth from pysam: (name, mate 0/1/2) → read as sequenced, primary records only."""
    truth = {}
    with pysam.AlignmentFile(str(path), check_sq=False) as bam:
        for r in bam.fetch(until_eof=True):
            if r.is_secondary or r.is_supplementary:
                continue
            mate = 1 if r.is_read1 and r.is_paired else 2 if r.is_read2 and r.is_paired else 0
            truth[(r.query_name, mate)] = r.get_forward_sequence()
    return truth


@pytest.mark.parametrize("bam", CHR17_BAMS, ids=lambda p: p.name[:17])
def test_chr17_bams_give_every_primary_read_as_sequenced(bam, shared_data):
    path = shared_data / bam
    truth = _primary_reads(path)
    batches = list(iter_read_batches(path, batch_reads=64))
    got = {}
    for batch in batches:
        for name, seq in reads_of([batch], 1):
            got[(name, 1 if batch.paired else 0)] = seq
        if batch.paired:
            for name, seq in reads_of([batch], 2):
                got[(name, 2)] = seq
    # single-end reads of the paired file are mates whose partner lies outside chr17:1-4200
    singles = {(n, m) for n, m in truth if m and (n, 3 - m) not in truth}
    expected = {(n, 0 if (n, m) in singles else m): s for (n, m), s in truth.items()}
    assert got == expected
    assert sum(b.n_reads for b in batches) == len({n for n, _ in truth})
    # reverse-strand reads are restored: a known read of HG00100 is stored reverse-complemented
    with pysam.AlignmentFile(str(path)) as f:
        reverse = next(r for r in f if r.is_reverse and not r.is_secondary)
    mate = 1 if reverse.is_read1 else 2
    key = (reverse.query_name, mate if (reverse.query_name, 3 - mate) in truth else 0)
    assert got[key] == reverse.query_sequence.translate(COMPLEMENT)[::-1]


def test_chr17_bam_counts(shared_data):
    stats = read_stats(shared_data / CHR17_BAMS[0])
    # 569 primary records: 259 pairs with both mates in the region and 51 lone mates
    assert (stats.n_reads, stats.n_paired, stats.n_mates) == (310, 259, 569)


def _write_bam(path: Path, records: list[dict], sort_order: str = "unsorted", mode: str = "wb", **kw) -> None:
    header = {"HD": {"VN": "1.6", "SO": sort_order}, "SQ": [{"SN": "chrS", "LN": 5000}]}
    with pysam.AlignmentFile(str(path), mode, header=header, **kw) as out:
        for spec in records:
            a = pysam.AlignedSegment(out.header)
            a.query_name = spec["name"]
            a.flag = spec["flag"]
            a.query_sequence = spec["seq"]
            a.query_qualities = pysam.qualitystring_to_array("I" * len(spec["seq"]))
            if "pos" in spec:
                a.reference_id, a.reference_start = 0, spec["pos"]
                a.cigarstring = f"{len(spec['seq'])}M"
                a.mapping_quality = 60
            out.write(a)


def test_unaligned_paired_bam_reads_like_the_fastq_pair(tmp_path, shared_data):
    r1, r2 = pysam_reads(shared_data / HOSTILE_R1), pysam_reads(shared_data / HOSTILE_R2)
    records = []
    for (name, s1), (_, s2) in zip(r1, r2, strict=True):
        records += [{"name": name, "flag": 77, "seq": s1}, {"name": name, "flag": 141, "seq": s2}]
    bam = tmp_path / "unaligned.bam"
    _write_bam(bam, records)
    batches = list(iter_read_batches(bam, batch_reads=20))
    assert [b.n_reads for b in batches] == [20, 20, 10] and all(b.paired for b in batches)
    assert reads_of(batches, 1) == r1 and reads_of(batches, 2) == r2


def _pair_records(rng: np.random.Generator, reference: str, n: int) -> list[dict]:
    """Aligned pairs (mate 2 on the reverse strand, as Illumina pairs align), coordinate-sorted."""
    records = []
    for i in range(n):
        start = int(rng.integers(0, 4700))
        insert = int(rng.integers(150, 300))
        end = min(start + insert, 5000)
        records.append(
            {
                "name": f"pair{i}",
                "flag": 0x1 | 0x2 | 0x20 | 0x40,
                "seq": reference[start : start + 50],
                "pos": start,
            }
        )
        records.append(
            {
                "name": f"pair{i}",
                "flag": 0x1 | 0x2 | 0x10 | 0x80,
                "seq": reference[end - 50 : end],
                "pos": end - 50,
            }
        )
    return sorted(records, key=lambda r: r["pos"])


def test_coordinate_sorted_pairs_are_restored_and_the_buffer_is_bounded(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    reference = "".join(np.array(list("ACGT"))[rng.integers(0, 4, 5000)])
    records = _pair_records(rng, reference, 200)
    extra = [
        {"name": "pair0", "flag": 0x1 | 0x40 | 0x100, "seq": "A" * 50, "pos": 10},  # secondary
        {"name": "pair1", "flag": 0x1 | 0x40 | 0x800, "seq": "C" * 20, "pos": 20},  # supplementary
    ]
    bam = tmp_path / "sorted.bam"
    _write_bam(bam, sorted(records + extra, key=lambda r: r["pos"]), sort_order="coordinate")
    batches = list(iter_read_batches(bam, batch_reads=64))
    assert sum(b.n_reads for b in batches) == 200 and all(b.paired for b in batches)
    got1, got2 = dict(reads_of(batches, 1)), dict(reads_of(batches, 2))
    for spec in records:
        seq = spec["seq"].translate(COMPLEMENT)[::-1] if spec["flag"] & 0x10 else spec["seq"]
        assert (got1 if spec["flag"] & 0x40 else got2)[spec["name"]] == seq
    monkeypatch.setattr(alignments, "MAX_PENDING_MATES", 5)
    message = reads_error(bam)
    assert message.startswith(f"{bam}: at record ") and "more than 5 reads wait for their mates" in message
    assert "samtools collate" in message


def test_repeated_mate_in_a_bam_is_an_error(tmp_path):
    bam = tmp_path / "twice.bam"
    _write_bam(bam, [{"name": "q", "flag": 77, "seq": "ACGT"}, {"name": "q", "flag": 77, "seq": "ACGT"}])
    assert reads_error(bam) == (
        f"{bam}: record 2 is read 1 of 'q' again (first at record 1); a pair has one READ1 and one "
        "READ2 record."
    )


def test_bam_recompressed_with_plain_gzip_is_refused_in_one_sentence(tmp_path):
    # Found by fuzzing: pysam's NotImplementedError ("seek not implemented in files compressed by
    # method 1") leaked out of iter_read_batches for a BAM gunzipped and gzipped again.
    bgzf = tmp_path / "reads.bam"
    _write_bam(bgzf, [{"name": "q", "flag": 4, "seq": "ACGT"}])
    plain = tmp_path / "regzipped.bam"
    plain.write_bytes(gzip.compress(gzip.decompress(bgzf.read_bytes())))
    assert reads_error(plain) == (
        f"{plain}: is BAM compressed with plain gzip, not in the BGZF blocks of SAM v1 §4.1 that htslib "
        "needs; recompress it with bgzip (or samtools view -b)."
    )


def test_sam_text_is_read_through_pysam(tmp_path):
    sam = tmp_path / "reads.sam"
    _write_bam(
        sam, [{"name": "s1", "flag": 4, "seq": "ACGTT"}, {"name": "s2", "flag": 20, "seq": "AACC"}], mode="w"
    )
    assert reads_of(list(iter_read_batches(sam))) == [("s1", "ACGTT"), ("s2", "GGTT")]


def test_truncated_bam_names_the_record(tmp_path, shared_data):
    real = shared_data / CHR17_BAMS[0]
    cut = tmp_path / "cut.bam"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    message = reads_error(cut)
    assert message.startswith(f"{cut}: BAM record ") and "the file is truncated or damaged" in message
    record = int(message.split("BAM record ")[1].split(" ")[0].replace(",", ""))
    assert 1 < record < 600  # past the header, before the 600 records of the whole file
    header_only = tmp_path / "header_cut.bam"
    header_only.write_bytes(real.read_bytes()[:300])
    assert reads_error(header_only).startswith(f"{header_only}: cannot be opened as BAM")
    # cut at a BGZF block boundary: every record left decodes, only the end-of-file marker is gone
    no_marker = tmp_path / "no_eof_marker.bam"
    no_marker.write_bytes(real.read_bytes()[:-28])
    assert reads_error(no_marker) == (
        f"{no_marker}: is truncated after record 569: the BGZF end-of-file marker of SAM v1 §4.1.2 is "
        "missing from its end (an incomplete download or copy?)."
    )


def test_cram_reads_with_its_reference_and_says_when_it_is_missing(tmp_path, monkeypatch):
    # keep htslib from looking anywhere but the reference given (no REF_PATH download, no cache)
    monkeypatch.setenv("REF_PATH", str(tmp_path / "no_ref_path"))
    monkeypatch.setenv("REF_CACHE", str(tmp_path / "no_ref_cache"))
    rng = np.random.default_rng(5)
    reference = "".join(np.array(list("ACGT"))[rng.integers(0, 4, 5000)])
    fasta = tmp_path / "ref" / "chrS.fa"
    fasta.parent.mkdir()
    fasta.write_text(">chrS\n" + "\n".join(reference[i : i + 60] for i in range(0, 5000, 60)) + "\n")
    records = _pair_records(rng, reference, 30)
    cram = tmp_path / "reads.cram"
    _write_bam(cram, records, sort_order="coordinate", mode="wc", reference_filename=str(fasta))
    batches = list(iter_read_batches(cram, reference=fasta))
    assert sum(b.n_reads for b in batches) == 30
    pair0 = next(r for r in records if r["name"] == "pair0" and r["flag"] & 0x40)
    assert dict(reads_of(batches, 1))["pair0"] == pair0["seq"]
    cut = tmp_path / "cut.cram"
    cut.write_bytes(cram.read_bytes()[:-38])  # without the end-of-file container
    assert reads_error(cut, reference=fasta).startswith(
        f"{cut}: is truncated after record 60: the end-of-file container of CRAM v3.1 §9 is missing"
    )
    fasta.rename(tmp_path / "moved.fa")
    fasta.with_suffix(".fa.fai").unlink(missing_ok=True)
    message = reads_error(cram)
    assert message.startswith(f"{cram}: CRAM record 1 cannot be decoded")
    assert "reference FASTA it was compressed against" in message
