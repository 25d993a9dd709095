"""The classification part (:mod:`rapidrelease.reads.parts`): the ``.npz`` parallel classify jobs save
and the gather step adds up, in its documented layout."""

from __future__ import annotations

import numpy as np

from rapidrelease.reads.classify import classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.kraken_outputs import taxon_table
from rapidrelease.reads.parts import load_parts, part_error, save_failed_part, save_part

from support.reads import PANEL


def test_saved_parts_add_up_to_the_whole_run_in_the_documented_layout(small_index, tmp_path):
    phix = next(iter_fasta(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa"))[1].tobytes().decode()
    reads = tmp_path / "phix.fq"
    reads.write_text(
        "".join(f"@r{i}\n{phix[s : s + 150]}\n+\n{'I' * 150}\n" for i, s in enumerate(range(0, 5000, 50)))
    )
    whole = classify_reads(small_index, reads, batch_reads=10, count_distinct=True)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i + 1}.npz")
        save_part(
            paths[-1],
            classify_reads(small_index, reads, batch_reads=10, part=(i, 3), count_distinct=True),
            small_index,
        )
    with np.load(paths[0]) as part:
        assert part.files == ["counts", "direct_reads", "kmer_hits", "seen_cells", "index_id"]
        assert part["counts"].dtype == np.int64 and part["counts"].shape == (3,)
        cells = part["seen_cells"]  # the cells hit, sorted and unique: as many as distinct minimizers
        assert cells.dtype == np.uint32 and np.all(np.diff(cells.astype(np.int64)) > 0)
        assert 0 < len(cells) < len(whole.seen_cells.cells()), "a third of the reads hit fewer cells"
        assert len(part["index_id"].tobytes().decode()) == 64  # the manifest's SHA-256, hex
    summed = load_parts(paths, small_index)
    assert (summed.reads, summed.classified, summed.too_short) == (
        whole.reads,
        whole.classified,
        whole.too_short,
    )
    assert np.array_equal(summed.direct_reads, whole.direct_reads)
    assert np.array_equal(summed.kmer_hits, whole.kmer_hits)
    assert np.array_equal(summed.seen_cells.cells(), whole.seen_cells.cells())
    # the breadth evidence: each taxon's distinct minimizers, from the parts as from the whole run
    summed_taxa, whole_taxa = taxon_table(small_index, summed), taxon_table(small_index, whole)
    assert summed_taxa["distinct_minimizers"].sum() > 0
    for column in ("taxid", "distinct_minimizers", "distinct_minimizers_clade", "breadth"):
        assert np.array_equal(summed_taxa[column], whole_taxa[column])
    assert part_error(paths) is None


def test_a_failed_part_keeps_its_sentence_for_the_gather_step(small_index, tmp_path):
    good, failed = tmp_path / "1.npz", tmp_path / "2.npz"
    save_part(good, classify_reads(small_index, tmp_path / "none.fq", batches=[]), small_index)
    save_failed_part(failed, "r2.fq.gz: is truncated inside record 7 (an incomplete download or copy?).")
    assert (
        part_error([good, failed])
        == "r2.fq.gz: is truncated inside record 7 (an incomplete download or copy?)."
    )
