"""Read input: FASTQ/FASTA/SAM/BAM/CRAM into batches, checked against pysam and known reads.

Real files come from ../shared/data (the ``shared_data`` fixture skips without it): the hostile
human NovaSeq 50-pair FASTQs, the qcat ONT lambda FASTQ (989 long reads) and the bcftools chr17
BAMs (coordinate-sorted, paired, some mates outside the region). Every malformed input is written
into ``tmp_path`` at test time, mostly by cutting or editing a real file.
"""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import numpy as np
import pysam
import pytest

from rapidrelease.errors import ReadsError
from rapidrelease.reads import _stream
from rapidrelease.reads import input as read_input
from rapidrelease.reads.input import ReadBatch, iter_read_batches, read_stats

HOST = Path("seq/reads/host")
HOSTILE_R1 = HOST / "hostile_human_ERR3239334_50pairs_R1.fastq.gz"
HOSTILE_R2 = HOST / "hostile_human_ERR3239334_50pairs_R2.fastq.gz"
ONT_LAMBDA = Path("seq/reads/shotgun_real/qcat_ONT_lambda_control_1k.fastq.gz")
CHR17_BAMS = [HOST / f"bcftools_mpileup{i}_1000G_human_chr17_1-4200.bam" for i in (1, 2, 3)]
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def _reads(batches: list[ReadBatch], mate: int = 1) -> list[tuple[str, str]]:
    """(name, sequence) of every read of one mate, in batch order."""
    out = []
    for batch in batches:
        seq, offsets = (batch.seq, batch.offsets) if mate == 1 else (batch.seq2, batch.offsets2)
        assert seq is not None and offsets is not None
        for i, name in enumerate(batch.names):
            out.append((name, seq[offsets[i] : offsets[i + 1]].tobytes().decode()))
    return out


def _fastq(records: list[tuple[str, str]], newline: str = "\n") -> bytes:
    """FASTQ text of (header, sequence) records, quality 'I' (Q40) for every base."""
    lines = []
    for header, seq in records:
        lines += [f"@{header}", seq, "+", "I" * len(seq)]
    return (newline.join(lines) + newline).encode()


def _pysam_fastx(path: Path) -> list[tuple[str, str]]:
    with pysam.FastxFile(str(path)) as fastx:
        return [(r.name.removesuffix("/1").removesuffix("/2"), r.sequence) for r in fastx]


def _lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def _error(path: Path, **options) -> str:
    with pytest.raises(ReadsError) as caught:
        list(iter_read_batches(path, **options))
    return str(caught.value)


KNOWN = [
    ("read1/1 lane:1", "ACGTACGTAC" * 15),
    ("read2 1:N:0:ATCACG", "NNNNACGTRYKM" + "A" * 100),
    ("read3/2", "acgtn" * 30),  # soft-masked, as some exporters write
    ("short_34", "G" * 34),  # shorter than a k-mer of 35: the classifier's business, not ours
    ("short_1", "T"),
    ("trimmed_to_nothing", ""),  # cutadapt keeps emptied reads unless told otherwise
    ("read7\tBC:Z:ACGT", "CCCCGGGGTTTTAAAA"),
]
KNOWN_NAMES = ["read1", "read2", "read3", "short_34", "short_1", "trimmed_to_nothing", "read7"]


# --- FASTQ ----------------------------------------------------------------------------------------


def test_fastq_round_trip_gives_back_the_written_reads(tmp_path):
    path = tmp_path / "known.fastq"
    path.write_bytes(_fastq(KNOWN))
    batches = list(iter_read_batches(path))
    assert _reads(batches) == [(n, s) for n, (_, s) in zip(KNOWN_NAMES, KNOWN, strict=True)]
    assert batches[0].seq.dtype == np.uint8 and batches[0].offsets.dtype == np.int64
    assert batches[0].seq2 is None and batches[0].first_record == 1


def test_ids_are_cut_the_same_way_beside_a_huge_header_comment(tmp_path):
    fastq, fasta = tmp_path / "huge_comment.fastq", tmp_path / "huge_comment.fa"
    records = [*KNOWN, ("read8/1 " + "x" * 300_000, "ACGT")]
    fastq.write_bytes(_fastq(records))
    fasta.write_text("".join(f">{h}\n{s}\n" for h, s in records))
    names = [*KNOWN_NAMES, "read8"]
    assert [n for n, _ in _reads(list(iter_read_batches(fastq)))] == names
    assert [n for n, _ in _reads(list(iter_read_batches(fasta)))] == names


def test_reads_shorter_than_a_kmer_come_through_intact(tmp_path):
    path = tmp_path / "short.fastq.gz"
    path.write_bytes(
        gzip.compress(_fastq([("a", "ACGT" * 8 + "AC"), ("b", "T"), ("c", ""), ("d", "G" * 35)]))
    )
    (batch,) = iter_read_batches(path)
    assert np.diff(batch.offsets).tolist() == [34, 1, 0, 35]
    assert batch.seq.tobytes() == b"ACGT" * 8 + b"AC" + b"T" + b"G" * 35
    assert read_stats(path).min_length == 0


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path):
    path = tmp_path / "reads.txt"
    path.write_bytes(gzip.compress(_fastq(KNOWN)))
    assert [n for n, _ in _reads(list(iter_read_batches(path)))] == KNOWN_NAMES


def test_windows_line_endings_read_as_unix_ones(tmp_path):
    unix, windows = tmp_path / "unix.fastq", tmp_path / "windows.fastq"
    unix.write_bytes(_fastq(KNOWN))
    windows.write_bytes(_fastq(KNOWN, newline="\r\n"))
    assert _reads(list(iter_read_batches(windows))) == _reads(list(iter_read_batches(unix)))


def test_batch_boundaries_never_change_the_reads(tmp_path, monkeypatch, shared_data):
    path = tmp_path / "mixed.fastq"
    ont = _pysam_fastx(shared_data / ONT_LAMBDA)[:40]
    path.write_bytes(_fastq(KNOWN * 3 + ont, newline="\r\n"))
    expected = _reads(list(iter_read_batches(path, batch_reads=10**6)))
    assert len(expected) == 3 * len(KNOWN) + 40
    # 5-byte blocks also split every line, \r\n and record across reads of the file
    monkeypatch.setattr(_stream, "BLOCK_BYTES", 5)
    for batch_reads in (1, 7, 10**6):
        batches = list(iter_read_batches(path, batch_reads=batch_reads))
        assert _reads(batches) == expected
        assert all(b.n_reads <= batch_reads for b in batches)
        assert [b.first_record for b in batches] == np.cumsum(
            [1] + [b.n_reads for b in batches[:-1]]
        ).tolist()


def test_last_line_without_line_break_and_trailing_blank_lines_are_accepted(tmp_path):
    text = _fastq(KNOWN)
    for name, content in (("unterminated", text[:-1]), ("blank_lines", text + b"\n\r\n\n")):
        path = tmp_path / f"{name}.fastq"
        path.write_bytes(content)
        assert len(_reads(list(iter_read_batches(path)))) == len(KNOWN)


def test_an_empty_read_at_the_end_of_the_file_is_a_read_not_padding(tmp_path):
    # Found by the batch-size property test: the empty quality line of a last, emptied read was
    # dropped as a trailing blank line, and the file refused as truncated inside that record.
    path = tmp_path / "trimmed.fastq"
    path.write_bytes(_fastq([("read1", "ACGT"), ("trimmed_to_nothing", "")]) + b"\n\n")
    assert _reads(list(iter_read_batches(path))) == [("read1", "ACGT"), ("trimmed_to_nothing", "")]
    cut = tmp_path / "cut.fastq"
    cut.write_bytes(b"@read1\nACGT\n+\n\n")  # a real read whose quality line is missing
    assert _error(cut) == f"{cut}: record 1 (line 4) has 0 quality values for 4 bases."


def test_empty_file_gives_no_batches(tmp_path):
    empty, empty_gz = tmp_path / "empty.fastq", tmp_path / "empty.fastq.gz"
    empty.write_bytes(b"")
    empty_gz.write_bytes(gzip.compress(b""))
    assert list(iter_read_batches(empty)) == []
    assert list(iter_read_batches(empty_gz)) == []
    assert list(iter_read_batches(empty, empty_gz)) == []
    assert read_stats(empty).n_reads == 0


def test_concatenated_gzip_members_read_as_one_file(tmp_path):
    path = tmp_path / "members.fastq.gz"
    path.write_bytes(gzip.compress(_fastq(KNOWN[:3])) + gzip.compress(_fastq(KNOWN[3:])) + b"\0" * 512)
    assert [n for n, _ in _reads(list(iter_read_batches(path)))] == KNOWN_NAMES


def test_sequence_and_quality_of_different_lengths_name_the_record_and_line(tmp_path):
    path = tmp_path / "bad_quality.fastq"
    lines = _fastq(KNOWN).splitlines(keepends=True)
    lines[7] = lines[7][1:]  # record 2 loses one quality value
    path.write_bytes(b"".join(lines))
    message = _error(path)
    assert message.startswith(f"{path}: record 2 (line 8) has 111 quality values for 112 bases")


def test_missing_plus_line_names_the_record_and_line(tmp_path):
    path = tmp_path / "no_plus.fastq"
    lines = _fastq(KNOWN).splitlines(keepends=True)
    del lines[6]  # record 2's '+' line
    path.write_bytes(b"".join(lines))
    assert _error(path) == (
        f"{path}: record 2 (line 7) should be the '+' separator line but starts with 'I'."
    )


def test_record_cut_short_at_the_end_of_a_plain_file(tmp_path):
    path = tmp_path / "cut.fastq"
    text = _fastq(KNOWN)
    path.write_bytes(text[: text.index(b"@read3")] + b"@read3\nACGT\n")
    assert _error(path) == (
        f"{path}: is truncated inside record 3: the file ends after line 10, 2 lines into a "
        "four-line FASTQ record."
    )
    path.write_bytes(text[: text.index(b"@read3")] + b"@read3\nACGT\n+\nII")
    assert "record 3 (line 12) is cut short: the file ends after 2 of its 4 quality values" in _error(path)


def test_every_cut_of_a_real_fastq_is_read_whole_or_refused(tmp_path, shared_data):
    text = b"".join(_lines(shared_data / HOSTILE_R1)[:12])  # three real NovaSeq records
    boundaries = [i + 1 for i in range(len(text)) if text[i] == ord("\n")][3::4]
    # whole records: cut at a record's end, or just before its final line break
    complete = {0: 0} | {b - d: k + 1 for k, b in enumerate(boundaries) for d in (0, 1)}
    path = tmp_path / "cut.fastq"
    for cut in range(len(text) + 1):
        path.write_bytes(text[:cut])
        if cut in complete:
            assert len(_reads(list(iter_read_batches(path)))) == complete[cut]
        else:
            with pytest.raises(ReadsError, match=r"record [123] .*(truncated|cut short)|is truncated inside"):
                list(iter_read_batches(path))


def test_empty_read_name_is_an_error(tmp_path):
    path = tmp_path / "no_name.fastq"
    path.write_bytes(_fastq([("ok", "ACGT"), (" comment only", "ACGT")]))
    assert _error(path) == f"{path}: record 2 (line 5) has an empty read name."


def test_non_printing_byte_in_a_sequence_is_an_error(tmp_path):
    path = tmp_path / "nul.fastq"
    path.write_bytes(_fastq([("ok", "ACGT"), ("bad", "AC\0T")]))
    assert _error(path) == f"{path}: record 2 (line 6) has the byte b'\\x00' at base 3, which is not a base."


def test_truncated_gzip_fastq_names_the_record_and_keeps_the_reads_before(tmp_path, shared_data):
    real = shared_data / ONT_LAMBDA
    cut = tmp_path / "cut.fastq.gz"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    expected = _pysam_fastx(real)
    got: list[tuple[str, str]] = []
    with pytest.raises(ReadsError) as caught:
        for batch in iter_read_batches(cut, batch_reads=50):
            got += _reads([batch])
    message = str(caught.value)
    assert message.startswith(f"{cut}: is truncated inside record ")
    record = int(message.split("inside record ")[1].split(" ")[0].replace(",", ""))
    # every batch yielded before the cut is the real file's reads; the cut lies after them
    assert got == expected[: len(got)] and len(got) > 0
    assert len(got) < record < len(expected)


def test_corrupt_gzip_data_is_an_error(tmp_path, shared_data):
    data = bytearray((shared_data / HOSTILE_R1).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    path = tmp_path / "corrupt.fastq.gz"
    path.write_bytes(bytes(data))
    assert "its gzip data are corrupt after" in _error(path)


@pytest.mark.parametrize("compress", [False, True])
def test_binary_garbage_is_not_read_as_reads(tmp_path, compress):
    garbage = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    garbage = b"\x89PNG" + garbage  # a byte no read format starts with
    path = tmp_path / "garbage.fastq"
    path.write_bytes(gzip.compress(garbage) if compress else garbage)
    kind = "gzip-compressed data" if compress else "a file"
    assert (
        _error(path)
        == f"{path}: is not FASTQ, FASTA, SAM, BAM or CRAM ({kind} starting with {garbage[:12]!r})."
    )


def test_xz_compression_is_named(tmp_path):
    path = tmp_path / "reads.fastq.xz"
    path.write_bytes(lzma.compress(_fastq(KNOWN)))
    assert "is compressed with xz, which is not read here" in _error(path)


def test_missing_file_is_a_reads_error(tmp_path):
    assert _error(tmp_path / "absent.fastq") == f"{tmp_path / 'absent.fastq'}: file not found."


# --- real FASTQ ------------------------------------------------------------------------------------


def test_hostile_pairs_read_as_50_pairs_of_150_bp(shared_data):
    r1, r2 = shared_data / HOSTILE_R1, shared_data / HOSTILE_R2
    batches = list(iter_read_batches(r1, r2))
    assert sum(b.n_reads for b in batches) == 50 and all(b.paired for b in batches)
    assert _reads(batches, 1) == _pysam_fastx(r1)
    assert _reads(batches, 2) == _pysam_fastx(r2)
    assert batches[0].names[0] == "ERR3239334.1"  # '/1' and the comment cut off
    stats = read_stats(r1, r2)
    assert (stats.n_reads, stats.n_mates, stats.n_bases, stats.min_length, stats.max_length) == (
        50,
        100,
        15_000,
        150,
        150,
    )


def test_ont_long_reads_of_variable_length(shared_data):
    path = shared_data / ONT_LAMBDA
    batches = list(iter_read_batches(path, batch_reads=100))
    expected = _pysam_fastx(path)
    assert _reads(batches) == expected
    lengths = np.concatenate([np.diff(b.offsets) for b in batches])
    assert len(lengths) == 989
    assert lengths.sum() == sum(len(s) for _, s in expected) == 3_883_273
    assert (lengths.min(), lengths.max()) == (275, 24_336)


def test_long_reads_over_the_byte_cap_stay_paired(tmp_path, monkeypatch, shared_data):
    ont = _pysam_fastx(shared_data / ONT_LAMBDA)[:60]
    r1, r2 = tmp_path / "r1.fastq", tmp_path / "r2.fastq"
    r1.write_bytes(_fastq([(f"{n}/1", s) for n, s in ont]))
    # mate 2: other lengths and longer headers, so the byte cap cuts its batches elsewhere
    r2.write_bytes(_fastq([(f"{n}/2 {'x' * 500}", s[: len(s) // 3]) for n, s in ont]))
    monkeypatch.setattr(read_input, "_MAX_BATCH_BYTES", 100_000)
    batches = list(iter_read_batches(r1, r2, batch_reads=1000))
    assert len(batches) > 3 and all(b.n_reads < 1000 for b in batches)
    assert _reads(batches, 1) == ont
    assert _reads(batches, 2) == [(n, s[: len(s) // 3]) for n, s in ont]


def test_a_line_without_end_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    # Found by fuzzing: a 1 MB gzip of '@r1\n' and one line of 1 GiB grew the buffer to 2 GiB
    # (a few more MB of gzip and the process runs out of memory). A record is capped instead;
    # the cap is lowered here so the test stays small.
    monkeypatch.setattr(read_input, "_MAX_RECORD_BYTES", 64 * 1024)
    monkeypatch.setattr(read_input, "_MAX_BATCH_BYTES", 48 * 1024)
    monkeypatch.setattr(_stream, "BLOCK_BYTES", 4096)
    good = _fastq([("r1", "ACGT" * 5000)])  # a 20-kb read, 40 kB of record: under the cap
    bomb = tmp_path / "one_line.fastq.gz"
    bomb.write_bytes(gzip.compress(good + b"@r2\n" + b"A" * 200_000))
    assert _error(bomb) == (
        f"{bomb}: record 2 runs past 0.0625 MiB with line 6 still unfinished, far longer than any read; "
        "the file is corrupt or not FASTQ."
    )
    first = tmp_path / "first_record.fastq"
    first.write_bytes(b"@r1\n" + b"A" * 200_000)
    assert _error(first).startswith(f"{first}: record 1 runs past 0.0625 MiB with line 2 still unfinished")
    fine = tmp_path / "long_read.fastq"
    fine.write_bytes(good)
    assert _reads(list(iter_read_batches(fine))) == [("r1", "ACGT" * 5000)]


# --- paired and interleaved FASTQ -------------------------------------------------------------------


def test_paired_files_of_different_lengths_name_both_files(tmp_path, shared_data):
    r1 = shared_data / HOSTILE_R1
    r2 = tmp_path / "R2_short.fastq"
    r2.write_bytes(b"".join(_lines(shared_data / HOSTILE_R2)[: 4 * 49]))
    for batch_reads in (20_000, 7):
        with pytest.raises(ReadsError) as caught:
            list(iter_read_batches(r1, r2, batch_reads=batch_reads))
        assert str(caught.value) == (
            f"{r1} and {r2}: {r2} has no record 50 but {r1} has; paired files must hold the same "
            "reads in the same order."
        )


def test_paired_files_whose_ids_disagree_name_the_pair(tmp_path, shared_data):
    lines = _lines(shared_data / HOSTILE_R2)
    lines[4 * 9], lines[4 * 10] = lines[4 * 10], lines[4 * 9]  # headers of pairs 10 and 11 swapped
    r2 = tmp_path / "R2_swapped.fastq"
    r2.write_bytes(b"".join(lines))
    r1 = shared_data / HOSTILE_R1
    message = _error(r1, path2=r2)
    assert message == (
        f"{r1} and {r2}: pair 10 has read ids 'ERR3239334.10' and 'ERR3239334.11' in the two files; "
        "mates must have the same id (apart from /1 and /2)."
    )


def test_interleaved_fastq_reads_as_the_two_files(tmp_path, shared_data):
    l1, l2 = _lines(shared_data / HOSTILE_R1), _lines(shared_data / HOSTILE_R2)
    path = tmp_path / "interleaved.fastq"
    path.write_bytes(b"".join(b"".join(l1[i : i + 4] + l2[i : i + 4]) for i in range(0, len(l1), 4)))
    expected = list(iter_read_batches(shared_data / HOSTILE_R1, shared_data / HOSTILE_R2))
    for batch_reads in (3, 50):
        batches = list(iter_read_batches(path, batch_reads=batch_reads, interleaved=True))
        assert _reads(batches, 1) == _reads(expected, 1)
        assert _reads(batches, 2) == _reads(expected, 2)
        assert batches[-1].first_record + batches[-1].n_reads - 1 == 50
    odd = tmp_path / "odd.fastq"
    odd.write_bytes(path.read_bytes() + b"".join(l1[:4]))
    assert _error(odd, interleaved=True).startswith(f"{odd}: record 101 has no mate")


def test_fasta_reads_single_and_paired(tmp_path):
    r1, r2 = tmp_path / "r1.fa", tmp_path / "r2.fa.gz"
    r1.write_text(">p1/1 sample=A\nACGTACGT\nAC\n>p2/1\nGGGG\n")
    r2.write_bytes(gzip.compress(b">p1/2\nTTTT\n>p2/2\nCC\nCC\n"))
    (batch,) = iter_read_batches(r1, r2)
    assert _reads([batch], 1) == [("p1", "ACGTACGTAC"), ("p2", "GGGG")]
    assert _reads([batch], 2) == [("p1", "TTTT"), ("p2", "CCCC")]


# --- SAM / BAM / CRAM ----------------------------------------------------------------------------


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
        for name, seq in _reads([batch], 1):
            got[(name, 1 if batch.paired else 0)] = seq
        if batch.paired:
            for name, seq in _reads([batch], 2):
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
    r1, r2 = _pysam_fastx(shared_data / HOSTILE_R1), _pysam_fastx(shared_data / HOSTILE_R2)
    records = []
    for (name, s1), (_, s2) in zip(r1, r2, strict=True):
        records += [{"name": name, "flag": 77, "seq": s1}, {"name": name, "flag": 141, "seq": s2}]
    bam = tmp_path / "unaligned.bam"
    _write_bam(bam, records)
    batches = list(iter_read_batches(bam, batch_reads=20))
    assert [b.n_reads for b in batches] == [20, 20, 10] and all(b.paired for b in batches)
    assert _reads(batches, 1) == r1 and _reads(batches, 2) == r2


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
    got1, got2 = dict(_reads(batches, 1)), dict(_reads(batches, 2))
    for spec in records:
        seq = spec["seq"].translate(COMPLEMENT)[::-1] if spec["flag"] & 0x10 else spec["seq"]
        assert (got1 if spec["flag"] & 0x40 else got2)[spec["name"]] == seq
    monkeypatch.setattr(read_input, "MAX_PENDING_MATES", 5)
    message = _error(bam)
    assert message.startswith(f"{bam}: at record ") and "more than 5 reads wait for their mates" in message
    assert "samtools collate" in message


def test_repeated_mate_in_a_bam_is_an_error(tmp_path):
    bam = tmp_path / "twice.bam"
    _write_bam(bam, [{"name": "q", "flag": 77, "seq": "ACGT"}, {"name": "q", "flag": 77, "seq": "ACGT"}])
    assert _error(bam) == (
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
    assert _error(plain) == (
        f"{plain}: is BAM compressed with plain gzip, not in the BGZF blocks of SAM v1 §4.1 that htslib "
        "needs; recompress it with bgzip (or samtools view -b)."
    )


def test_sam_text_is_read_through_pysam(tmp_path):
    sam = tmp_path / "reads.sam"
    _write_bam(
        sam, [{"name": "s1", "flag": 4, "seq": "ACGTT"}, {"name": "s2", "flag": 20, "seq": "AACC"}], mode="w"
    )
    assert _reads(list(iter_read_batches(sam))) == [("s1", "ACGTT"), ("s2", "GGTT")]


def test_text_file_named_bam_is_not_read(tmp_path):
    fake = tmp_path / "sample.bam"
    fake.write_text("sample\tpath\nlot1\t/data/lot1.fcs\n")
    assert (
        _error(fake)
        == f"{fake}: is not FASTQ, FASTA, SAM, BAM or CRAM (a file starting with b'sample\\tpath\\n')."
    )


def test_truncated_bam_names_the_record(tmp_path, shared_data):
    real = shared_data / CHR17_BAMS[0]
    cut = tmp_path / "cut.bam"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    message = _error(cut)
    assert message.startswith(f"{cut}: BAM record ") and "the file is truncated or damaged" in message
    record = int(message.split("BAM record ")[1].split(" ")[0].replace(",", ""))
    assert 1 < record < 600  # past the header, before the 600 records of the whole file
    header_only = tmp_path / "header_cut.bam"
    header_only.write_bytes(real.read_bytes()[:300])
    assert _error(header_only).startswith(f"{header_only}: cannot be opened as BAM")
    # cut at a BGZF block boundary: every record left decodes, only the end-of-file marker is gone
    no_marker = tmp_path / "no_eof_marker.bam"
    no_marker.write_bytes(real.read_bytes()[:-28])
    assert _error(no_marker) == (
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
    assert dict(_reads(batches, 1))["pair0"] == pair0["seq"]
    cut = tmp_path / "cut.cram"
    cut.write_bytes(cram.read_bytes()[:-38])  # without the end-of-file container
    assert _error(cut, reference=fasta).startswith(
        f"{cut}: is truncated after record 60: the end-of-file container of CRAM v3.1 §9 is missing"
    )
    fasta.rename(tmp_path / "moved.fa")
    fasta.with_suffix(".fa.fai").unlink(missing_ok=True)
    message = _error(cram)
    assert message.startswith(f"{cram}: CRAM record 1 cannot be decoded")
    assert "reference FASTA it was compressed against" in message


def test_bam_with_a_mate_file_is_refused(tmp_path, shared_data):
    bam = shared_data / CHR17_BAMS[1]
    message = _error(bam, path2=shared_data / HOSTILE_R2)
    assert message.startswith(f"{bam} and {shared_data / HOSTILE_R2}: {bam} is BAM")
