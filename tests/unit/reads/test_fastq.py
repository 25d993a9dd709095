"""The NumPy FASTQ parser and FASTA reads (:mod:`rapidrelease.reads.fastq`), through
:func:`~rapidrelease.reads.input.iter_read_batches`, checked against pysam and known reads.

Real files come from ../shared/data (the ``shared_data`` fixture skips without it); every malformed
input is written into ``tmp_path`` at test time, mostly by cutting or editing a real file.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from rapidrelease.errors import ReadsError
from rapidrelease.reads import _stream, fastq
from rapidrelease.reads.input import iter_read_batches, read_stats

from support.reads import (
    HOSTILE_R1,
    KNOWN,
    KNOWN_NAMES,
    ONT_LAMBDA,
    fastq_bytes,
    gzip_lines,
    pysam_reads,
    reads_error,
    reads_of,
)


def test_fastq_round_trip_gives_back_the_written_reads(tmp_path):
    path = tmp_path / "known.fastq"
    path.write_bytes(fastq_bytes(KNOWN))
    batches = list(iter_read_batches(path))
    assert reads_of(batches) == [(n, s) for n, (_, s) in zip(KNOWN_NAMES, KNOWN, strict=True)]
    assert batches[0].seq.dtype == np.uint8 and batches[0].offsets.dtype == np.int64
    assert batches[0].seq2 is None and batches[0].first_record == 1


def test_ids_are_cut_the_same_way_beside_a_huge_header_comment(tmp_path):
    fastq, fasta = tmp_path / "huge_comment.fastq", tmp_path / "huge_comment.fa"
    records = [*KNOWN, ("read8/1 " + "x" * 300_000, "ACGT")]
    fastq.write_bytes(fastq_bytes(records))
    fasta.write_text("".join(f">{h}\n{s}\n" for h, s in records))
    names = [*KNOWN_NAMES, "read8"]
    assert [n for n, _ in reads_of(list(iter_read_batches(fastq)))] == names
    assert [n for n, _ in reads_of(list(iter_read_batches(fasta)))] == names


def test_reads_shorter_than_a_kmer_come_through_intact(tmp_path):
    path = tmp_path / "short.fastq.gz"
    path.write_bytes(
        gzip.compress(fastq_bytes([("a", "ACGT" * 8 + "AC"), ("b", "T"), ("c", ""), ("d", "G" * 35)]))
    )
    (batch,) = iter_read_batches(path)
    assert np.diff(batch.offsets).tolist() == [34, 1, 0, 35]
    assert batch.seq.tobytes() == b"ACGT" * 8 + b"AC" + b"T" + b"G" * 35
    assert read_stats(path).min_length == 0


def test_windows_line_endings_read_as_unix_ones(tmp_path):
    unix, windows = tmp_path / "unix.fastq", tmp_path / "windows.fastq"
    unix.write_bytes(fastq_bytes(KNOWN))
    windows.write_bytes(fastq_bytes(KNOWN, newline="\r\n"))
    assert reads_of(list(iter_read_batches(windows))) == reads_of(list(iter_read_batches(unix)))


def test_batch_boundaries_never_change_the_reads(tmp_path, monkeypatch, shared_data):
    path = tmp_path / "mixed.fastq"
    # a few real long reads (each split over thousands of 5-byte blocks below) among short ones
    ont = pysam_reads(shared_data / ONT_LAMBDA)[:8]
    path.write_bytes(fastq_bytes(KNOWN * 3 + ont, newline="\r\n"))
    expected = reads_of(list(iter_read_batches(path, batch_reads=10**6)))
    assert len(expected) == 3 * len(KNOWN) + 8
    assert max(len(seq) for _, seq in ont) > 5_000
    # 5-byte blocks also split every line, \r\n and record across reads of the file
    monkeypatch.setattr(_stream, "BLOCK_BYTES", 5)
    for batch_reads in (1, 7, 10**6):
        batches = list(iter_read_batches(path, batch_reads=batch_reads))
        assert reads_of(batches) == expected
        assert all(b.n_reads <= batch_reads for b in batches)
        assert [b.first_record for b in batches] == np.cumsum(
            [1] + [b.n_reads for b in batches[:-1]]
        ).tolist()


def test_last_line_without_line_break_and_trailing_blank_lines_are_accepted(tmp_path):
    text = fastq_bytes(KNOWN)
    for name, content in (("unterminated", text[:-1]), ("blank_lines", text + b"\n\r\n\n")):
        path = tmp_path / f"{name}.fastq"
        path.write_bytes(content)
        assert len(reads_of(list(iter_read_batches(path)))) == len(KNOWN)


def test_an_empty_read_at_the_end_of_the_file_is_a_read_not_padding(tmp_path):
    # Found by the batch-size property test: the empty quality line of a last, emptied read was
    # dropped as a trailing blank line, and the file refused as truncated inside that record.
    path = tmp_path / "trimmed.fastq"
    path.write_bytes(fastq_bytes([("read1", "ACGT"), ("trimmed_to_nothing", "")]) + b"\n\n")
    assert reads_of(list(iter_read_batches(path))) == [("read1", "ACGT"), ("trimmed_to_nothing", "")]
    cut = tmp_path / "cut.fastq"
    cut.write_bytes(b"@read1\nACGT\n+\n\n")  # a real read whose quality line is missing
    assert reads_error(cut) == f"{cut}: record 1 (line 4) has 0 quality values for 4 bases."


def test_sequence_and_quality_of_different_lengths_name_the_record_and_line(tmp_path):
    path = tmp_path / "bad_quality.fastq"
    lines = fastq_bytes(KNOWN).splitlines(keepends=True)
    lines[7] = lines[7][1:]  # record 2 loses one quality value
    path.write_bytes(b"".join(lines))
    message = reads_error(path)
    assert message.startswith(f"{path}: record 2 (line 8) has 111 quality values for 112 bases")


def test_missing_plus_line_names_the_record_and_line(tmp_path):
    path = tmp_path / "no_plus.fastq"
    lines = fastq_bytes(KNOWN).splitlines(keepends=True)
    del lines[6]  # record 2's '+' line
    path.write_bytes(b"".join(lines))
    assert reads_error(path) == (
        f"{path}: record 2 (line 7) should be the '+' separator line but starts with 'I'."
    )


def test_record_cut_short_at_the_end_of_a_plain_file(tmp_path):
    path = tmp_path / "cut.fastq"
    text = fastq_bytes(KNOWN)
    path.write_bytes(text[: text.index(b"@read3")] + b"@read3\nACGT\n")
    assert reads_error(path) == (
        f"{path}: is truncated inside record 3: the file ends after line 10, 2 lines into a "
        "four-line FASTQ record."
    )
    path.write_bytes(text[: text.index(b"@read3")] + b"@read3\nACGT\n+\nII")
    assert "record 3 (line 12) is cut short: the file ends after 2 of its 4 quality values" in reads_error(
        path
    )


def test_every_cut_of_a_real_fastq_is_read_whole_or_refused(tmp_path, shared_data):
    text = b"".join(gzip_lines(shared_data / HOSTILE_R1)[:12])  # three real NovaSeq records
    boundaries = [i + 1 for i in range(len(text)) if text[i] == ord("\n")][3::4]
    # whole records: cut at a record's end, or just before its final line break
    complete = {0: 0} | {b - d: k + 1 for k, b in enumerate(boundaries) for d in (0, 1)}
    path = tmp_path / "cut.fastq"
    for cut in range(len(text) + 1):
        path.write_bytes(text[:cut])
        if cut in complete:
            assert len(reads_of(list(iter_read_batches(path)))) == complete[cut]
        else:
            with pytest.raises(ReadsError, match=r"record [123] .*(truncated|cut short)|is truncated inside"):
                list(iter_read_batches(path))


def test_empty_read_name_is_an_error(tmp_path):
    path = tmp_path / "no_name.fastq"
    path.write_bytes(fastq_bytes([("ok", "ACGT"), (" comment only", "ACGT")]))
    assert reads_error(path) == f"{path}: record 2 (line 5) has an empty read name."


def test_non_printing_byte_in_a_sequence_is_an_error(tmp_path):
    path = tmp_path / "nul.fastq"
    path.write_bytes(fastq_bytes([("ok", "ACGT"), ("bad", "AC\0T")]))
    assert (
        reads_error(path)
        == f"{path}: record 2 (line 6) has the byte b'\\x00' at base 3, which is not a base."
    )


def test_truncated_gzip_fastq_names_the_record_and_keeps_the_reads_before(tmp_path, shared_data):
    real = shared_data / ONT_LAMBDA
    cut = tmp_path / "cut.fastq.gz"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    expected = pysam_reads(real)
    got: list[tuple[str, str]] = []
    with pytest.raises(ReadsError) as caught:
        for batch in iter_read_batches(cut, batch_reads=50):
            got += reads_of([batch])
    message = str(caught.value)
    assert message.startswith(f"{cut}: is truncated inside record ")
    record = int(message.split("inside record ")[1].split(" ")[0].replace(",", ""))
    # every batch yielded before the cut is the real file's reads; the cut lies after them
    assert got == expected[: len(got)] and len(got) > 0
    assert len(got) < record < len(expected)


def test_ont_long_reads_of_variable_length(shared_data):
    path = shared_data / ONT_LAMBDA
    batches = list(iter_read_batches(path, batch_reads=100))
    expected = pysam_reads(path)
    assert reads_of(batches) == expected
    lengths = np.concatenate([np.diff(b.offsets) for b in batches])
    assert len(lengths) == 989
    assert lengths.sum() == sum(len(s) for _, s in expected) == 3_883_273
    assert (lengths.min(), lengths.max()) == (275, 24_336)


def test_a_line_without_end_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    # Found by fuzzing: a 1 MB gzip of '@r1\n' and one line of 1 GiB grew the buffer to 2 GiB
    # (a few more MB of gzip and the process runs out of memory). A record is capped instead;
    # the cap is lowered here so the test stays small.
    monkeypatch.setattr(fastq, "_MAX_RECORD_BYTES", 64 * 1024)
    monkeypatch.setattr(_stream, "BATCH_BASES", 24 * 1024)
    monkeypatch.setattr(_stream, "BLOCK_BYTES", 4096)
    good = fastq_bytes([("r1", "ACGT" * 5000)])  # a 20-kb read, 40 kB of record: under the cap
    bomb = tmp_path / "one_line.fastq.gz"
    bomb.write_bytes(gzip.compress(good + b"@r2\n" + b"A" * 200_000))
    assert reads_error(bomb) == (
        f"{bomb}: record 2 runs past 0.0625 MiB with line 6 still unfinished, far longer than any read; "
        "the file is corrupt or not FASTQ."
    )
    first = tmp_path / "first_record.fastq"
    first.write_bytes(b"@r1\n" + b"A" * 200_000)
    assert reads_error(first).startswith(
        f"{first}: record 1 runs past 0.0625 MiB with line 2 still unfinished"
    )
    fine = tmp_path / "long_read.fastq"
    fine.write_bytes(good)
    assert reads_of(list(iter_read_batches(fine))) == [("r1", "ACGT" * 5000)]


def test_fasta_reads_single_and_paired(tmp_path):
    r1, r2 = tmp_path / "r1.fa", tmp_path / "r2.fa.gz"
    r1.write_text(">p1/1 sample=A\nACGTACGT\nAC\n>p2/1\nGGGG\n")
    r2.write_bytes(gzip.compress(b">p1/2\nTTTT\n>p2/2\nCC\nCC\n"))
    (batch,) = iter_read_batches(r1, r2)
    assert reads_of([batch], 1) == [("p1", "ACGTACGTAC"), ("p2", "GGGG")]
    assert reads_of([batch], 2) == [("p1", "TTTT"), ("p2", "CCCC")]
