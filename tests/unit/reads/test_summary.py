"""A sequencing unit gathered from parallel parts: the same result as one run, and every bad part an error."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rapidrelease.reads.classify import ClassificationTotals, classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.index import build_index
from rapidrelease.reads.parts import save_part
from rapidrelease.reads.summary import gather_reads
from rapidrelease.records import read_unit_record, to_json
from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

from support.configs import write_project
from support.reads import PANEL

SOURCES = {  # simulated sample: (panel file, taxid, share of pairs)
    "hs": ("Homo_sapiens_TPA_scaffolds_1Mb.fa.gz", 9606, 0.90),
    "sa": ("Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz", 93061, 0.04),
    "kp": ("Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz", 272620, 0.02),
    "vec": ("pCMVR8.74_lentiviral_packaging_addgene.fa", 29278, 0.03),
    "phix": ("phiX174_sequana_NC_001422.1.fa", 10847, 0.01),
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    """6,000 simulated pairs of a contaminated product sample: R1, R2 and pairs per source."""
    folder = tmp_path_factory.mktemp("sample")
    genomes = [
        SourceGenome.from_records(name, taxid, [s for _, s in iter_fasta(PANEL / "panel" / file)])
        for name, (file, taxid, _) in SOURCES.items()
    ]
    reads = simulate_reads(genomes, 6_000, weights=[s[2] for s in SOURCES.values()], paired=True, seed=11)
    write_fastq(reads, folder / "r1.fq.gz", folder / "r2.fq.gz", gzip=True)
    counts = np.bincount(reads.genome_index, minlength=len(SOURCES))
    return folder / "r1.fq.gz", folder / "r2.fq.gz", dict(zip(SOURCES, counts.tolist(), strict=True))


def _gather(index, parts: list[Path], out: Path, reads: list[Path]) -> dict:
    record = gather_reads(index.folder, parts, out, "LOT-1", "STER", "sterility_reads", "test", reads)
    assert read_unit_record(out / "reads.json", "gather", "LOT-1", "STER") == record
    data = to_json(record)
    assert isinstance(data, dict)
    return data


def test_parts_gather_to_exactly_the_whole_run(small_index, sample, tmp_path):
    r1, r2, pairs = sample
    whole = classify_reads(
        small_index, r1, r2, report_path=tmp_path / "whole.kreport", taxa_path=tmp_path / "whole.tsv",
        batch_reads=500,
    )  # fmt: skip
    parts = []
    for i in range(3):
        part = classify_reads(small_index, r1, r2, batch_reads=500, part=(i, 3), count_distinct=True)
        assert 0 < part.reads < whole.reads
        parts.append(tmp_path / f"{i + 1}.npz")
        save_part(parts[-1], part, small_index)
    record = _gather(small_index, parts, tmp_path / "unit", [r1, r2])
    assert record["status"] == "ok" and record["error"] is None
    assert (tmp_path / "unit" / "reads.kreport").read_bytes() == (tmp_path / "whole.kreport").read_bytes()
    assert (tmp_path / "unit" / "taxa.tsv").read_bytes() == (tmp_path / "whole.tsv").read_bytes()
    metrics = record["metrics"]
    assert metrics["fragments_total"]["value"] == 6_000 == whole.reads
    # the shares a QC reviewer reads off the report, against the simulation's truth (pairs per source)
    share = {name: 100 * n / 6_000 for name, n in pairs.items()}
    assert metrics["host_pct"]["value"] == pytest.approx(share["hs"], abs=0.3)
    assert metrics["spike_in_pct"]["value"] == pytest.approx(share["phix"], abs=0.1)
    assert metrics["vector_pct"]["value"] == pytest.approx(share["vec"], abs=0.3)
    assert metrics["contaminant_pct"]["value"] == pytest.approx(share["sa"] + share["kp"], abs=0.2)
    assert metrics["bacteria_pct"]["value"] == metrics["contaminant_pct"]["value"]
    assert [(i["role"], i["path"]) for i in record["inputs"]] == [
        ("reads", str(r1)),
        ("reads", str(r2)),
        ("index", str(small_index.folder / "manifest.json")),
    ]
    assert all(len(i["sha256"]) == 64 for i in record["inputs"])
    taxa = pl.read_parquet(tmp_path / "unit" / "taxa.parquet")
    aureus = taxa.filter(pl.col("taxid") == 1280).row(0, named=True)  # S. aureus, the species
    assert aureus["category"] == "bacteria" and aureus["reads_clade"] >= 0.98 * pairs["sa"]
    # the record seals the tables written with it, so a later stage reads exactly these
    written = {Path(o["path"]).name: o["sha256"] for o in record["outputs"]}
    assert (
        written["taxa.parquet"]
        == hashlib.sha256((tmp_path / "unit" / "taxa.parquet").read_bytes()).hexdigest()
    )


def _cli_part(index, reads: list[Path], out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rapidrelease", "classify", "--db", str(index.folder), "--part", "1/2",
         "--out-partial", str(out), *map(str, reads)],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("damage", ["missing", "truncated gzip"])
def test_a_part_that_cannot_read_its_input_makes_the_unit_an_error_naming_the_file(
    small_index, sample, tmp_path, damage
):
    r1, _, _ = sample
    bad = tmp_path / "bad_R1.fq.gz"
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated gzip":
        data = r1.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    done = _cli_part(small_index, [bad], tmp_path / "1.npz")
    assert done.returncode == 0, "in the workflow a bad input is the unit's evidence, not a failed job"
    assert done.stderr.count("\n") == 1 and "bad_R1.fq.gz" in done.stderr
    good = classify_reads(small_index, r1, part=(1, 2), count_distinct=True)
    save_part(tmp_path / "2.npz", good, small_index)
    record = _gather(small_index, [tmp_path / "1.npz", tmp_path / "2.npz"], tmp_path / "unit", [bad])
    assert record["status"] == "error" and record["metrics"] == {}
    assert "bad_R1.fq.gz" in record["error"] and record["error"].count("\n") == 0
    assert (tmp_path / "unit" / "reads.kreport").read_text() == ""
    assert pl.read_parquet(tmp_path / "unit" / "taxa.parquet").height == 0


def test_a_missing_part_or_a_part_of_another_index_is_an_error(small_index, sample, tmp_path):
    r1, _, _ = sample
    part = classify_reads(small_index, r1, part=(0, 1), count_distinct=True)
    save_part(tmp_path / "1.npz", part, small_index)
    record = _gather(small_index, [tmp_path / "1.npz", tmp_path / "2.npz"], tmp_path / "a", [r1])
    assert record["status"] == "error" and "2.npz" in record["error"]
    phix = tmp_path / "phix.fa"
    phix.write_text(
        ">phix|kraken:taxid|10847\n"
        + next(iter_fasta(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa"))[1].tobytes().decode()
        + "\n"
    )
    other = build_index([phix], PANEL / "taxonomy.tsv", tmp_path / "other")
    record = _gather(other, [tmp_path / "1.npz"], tmp_path / "b", [r1])
    assert record["status"] == "error"
    assert record["error"] == f"{tmp_path / '1.npz'}: classified against another index than {other.folder}."


def test_a_unit_whose_read_files_hold_no_reads_is_an_error(small_index, tmp_path):
    save_part(tmp_path / "1.npz", ClassificationTotals.empty(small_index), small_index)
    empty = tmp_path / "empty_R1.fq.gz"
    record = _gather(small_index, [tmp_path / "1.npz"], tmp_path / "unit", [empty])
    assert (record["status"], record["metrics"]) == ("error", {})
    assert record["error"] == f"{empty}: no reads to classify (empty read file)."


@pytest.mark.parametrize(
    ("part", "message"),
    [("0/4", "--part 0/4: I must be between 1 and N."), ("two", "--part takes I/N (e.g. 2/4), not 'two'.")],
)
def test_a_part_that_does_not_exist_is_refused_in_one_line(small_index, sample, tmp_path, part, message):
    done = subprocess.run(
        [sys.executable, "-m", "rapidrelease", "classify", "--db", str(small_index.folder), "--part", part,
         "--out-partial", str(tmp_path / "p.npz"), str(sample[0])],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and done.stderr == f"rapidrelease: {message}\n"
    assert not (tmp_path / "p.npz").exists()


def test_gathering_a_unit_that_is_not_sequenced_is_refused_in_one_line(project, tmp_path):
    write_project(project)
    done = subprocess.run(
        [sys.executable, "-m", "rapidrelease", "gather", "--lot", "DEMO-001", "--unit", "PHENO",
         "--db", str(tmp_path / "db"), str(tmp_path / "1.npz")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr == (
        "rapidrelease: config/units.tsv: unit PHENO of lot DEMO-001 is a phenotype unit, not one of "
        "sterility_reads, mycoplasma_reads; see `rapidrelease gather --help`.\n"
    )
    assert not (project / "results").exists()


def test_a_damaged_part_is_an_error_naming_it(small_index, sample, tmp_path):
    r1, _, _ = sample
    damaged = tmp_path / "1.npz"
    damaged.write_bytes(b"not a saved part\n")  # e.g. a file system that lost the job's output
    record = _gather(small_index, [damaged], tmp_path / "unit", [r1])
    assert record["status"] == "error" and record["metrics"] == {}
    assert record["error"].startswith(f"{damaged}: a classification part cannot be read (")
    assert record["error"].count("\n") == 0
