"""Kraken 2's text outputs and the per-taxon table (:mod:`rapidrelease.reads.kraken_outputs`), written
by a classification run: the per-read line of pairs and of reads without k-mers, and breadth."""

from __future__ import annotations

import numpy as np

from rapidrelease.reads.classify import classify_reads
from rapidrelease.reads.fasta import iter_fasta

from support.reads import PANEL, read_table


def test_pairs_short_reads_and_the_per_read_table(small_index, tmp_path):
    lambda_seq = (
        next(iter_fasta(PANEL / "panel" / "lambda_NC_001416.1_nanolyse.fasta.gz"))[1].tobytes().decode()
    )
    r1, r2 = tmp_path / "r1.fq", tmp_path / "r2.fq"
    pairs = [
        ("long", lambda_seq[1000:1150], lambda_seq[2000:2150]),
        ("short", lambda_seq[5000:5030], "ACGT" * 5),
    ]
    r1.write_text("".join(f"@{n}/1\n{a}\n+\n{'I' * len(a)}\n" for n, a, _ in pairs))
    r2.write_text("".join(f"@{n}/2\n{b}\n+\n{'I' * len(b)}\n" for n, _, b in pairs))
    totals = classify_reads(small_index, r1, r2, reads_path=tmp_path / "out.tsv")
    rows = read_table(tmp_path / "out.tsv")
    assert rows[0][:4] == ["C", "long", "10710", "150|150"]
    assert rows[0][4] == "10710:116 |:| 10710:116"
    assert rows[1] == [
        "U",
        "short",
        "0",
        "30|20",
        "|:|",
    ]  # no k-mer in either mate: Kraken 2 prints only the border
    assert totals.too_short == 1 and totals.classified == 1


def test_distinct_minimizers_separate_a_real_organism_from_a_repeated_hit(small_index, tmp_path):
    # 300 reads spread over phiX versus 300 copies of one read: same read count, very different breadth
    phix = next(iter_fasta(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa"))[1].tobytes().decode()
    starts = np.linspace(0, len(phix) - 151, 300).astype(int)
    spread, repeated = tmp_path / "spread.fq", tmp_path / "repeated.fq"
    spread.write_text("".join(f"@s{i}\n{phix[s : s + 150]}\n+\n{'I' * 150}\n" for i, s in enumerate(starts)))
    repeated.write_text("".join(f"@r{i}\n{phix[100:250]}\n+\n{'I' * 150}\n" for i in range(300)))
    breadth = {}
    for path in (spread, repeated):
        classify_reads(small_index, path, taxa_path=tmp_path / f"{path.stem}.tsv")
        lines = (tmp_path / f"{path.stem}.tsv").read_text().splitlines()
        header = lines[0].split("\t")
        row = dict(zip(header, next(r for r in lines if r.startswith("10847\t")).split("\t"), strict=True))
        assert int(row["reads_clade"]) == 300
        breadth[path.stem] = float(row["breadth"])
    assert breadth["spread"] > 0.95 and breadth["repeated"] < 0.05
