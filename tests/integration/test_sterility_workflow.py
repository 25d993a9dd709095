"""Sterility by sequencing end to end: a snakemake run on lots built from real genomes and reads.

The lots are a CAR-T sequencing run as a QC lab would have it, from ../shared/data/seq:

- product DNA: reads simulated from human chromosome 22 (20-21 Mb), which the default panel does not
  index (its human sequence is other scaffolds), plus 50 real human read pairs (ERR3239334), so host
  reads mostly go unclassified as real product reads do against a partial human reference;
- a reagent contaminant: E. coli K-12 DNA, as polymerase preparations carry, at about 100 RPM in the
  product samples and 300 RPM in one of the two negative controls (none in the other): background;
- a real contaminant: Klebsiella pneumoniae HS11286, a strain the panel does not hold (it holds
  MGH 78578), at 150 RPM in one lot's product (about 30 reads: against two clean controls of a
  quarter of the test's depth the count test needs 14, 70 RPM);
- a positive control: S. aureus COL (the panel holds NCTC 8325) spiked at 10 CFU/mL, and a failed
  one whose spike never made it into the library.

The truth is what was simulated: the clean lot passes, the contaminated lot fails naming
K. pneumoniae, the lot whose positive control failed is inconclusive.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.config.run import DetectionSettings
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.stats import mean_detected, organisms_detected
from rapidrelease.sterility.calls import detection_threshold
from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

from support.workflow import own_copy, record_of, release_of, run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

TEST_PAIRS = 200_000
CONTROL_PAIRS = 50_000
SPEC = """\
specs:
  STERILITY:
    description: Sterility by sequencing
    attributes:
      sterility: {assay: sterility_reads, metric: contaminant_call, comparison: equals, limit: NOT_DETECTED}
      sterility_lod:
        {assay: sterility_reads, metric: lod, comparison: "<=", limit: 5.0, unit: CFU/mL, validity: true,
         covers: spike}
"""


def _genome(name: str, taxid: int, path: Path) -> SourceGenome:
    return SourceGenome.from_records(name, taxid, [sequence for _, sequence in iter_fasta(path)])


def _sample(
    folder: Path, stem: str, pairs: int, parts: dict[str, float], genomes: dict, seed: int, real_host: Path
) -> list[str]:
    """Simulated pairs in the given shares (read pairs per million for the minor sources, the rest
    human), with the real human pairs appended as a second gzip member."""
    names = list(parts)
    weights = np.array([parts[n] for n in names], dtype=float) / 1e6
    weights = np.append(weights, 1 - weights.sum())
    reads = simulate_reads([genomes[n] for n in [*names, "human"]], pairs, weights=weights, seed=seed)
    r1, r2 = folder / f"{stem}_R1.fastq.gz", folder / f"{stem}_R2.fastq.gz"
    write_fastq(reads, r1, r2, gzip=True)
    for mate, path in ((1, r1), (2, r2)):
        with open(path, "ab") as out:
            out.write((real_host / f"hostile_human_ERR3239334_50pairs_R{mate}.fastq.gz").read_bytes())
    return [str(r1.relative_to(folder.parent)), str(r2.relative_to(folder.parent))]


@pytest.fixture(scope="module")
def sterility_run(project_root: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("sterility_site")
    shutil.copytree(project_root / "config", workdir / "config")
    (workdir / "resources").mkdir()
    (workdir / "resources" / "reference").symlink_to(project_root / "resources" / "reference")
    seq = shared_data / "seq"
    reference = seq / "reference"
    genomes = {
        "human": _genome(
            "human", 9606, reference / "host_human/Homo_sapiens_chr22_20-21Mb_hisat2_example.fa.gz"
        ),
        "ecoli": _genome(
            "ecoli", 562, reference / "bacteria/Escherichia_coli_K12_MG1655_GCF_000005845.2.fna.gz"
        ),
        "kpneu": _genome(
            "kpneu", 573, reference / "bacteria/Klebsiella_pneumoniae_HS11286_CP003200.1.fna.gz"
        ),
        "saur": _genome("saur", 1280, reference / "bacteria/Staphylococcus_aureus_COL_NC_002951.2.fasta.gz"),
        "phix": _genome(
            "phix", 10847, project_root / "resources/reference/panel/phiX174_sequana_NC_001422.1.fa"
        ),
    }
    data = workdir / "run"
    data.mkdir()
    host = seq / "reads" / "host"
    contaminated = {"ecoli": 100, "kpneu": 150, "phix": 10_000}
    samples = {
        "CLEAN": _sample(data, "CLEAN", TEST_PAIRS, {"ecoli": 100, "phix": 10_000}, genomes, 1, host),
        "CONTAM": _sample(data, "CONTAM", TEST_PAIRS, contaminated, genomes, 2, host),
        "NC1": _sample(data, "NC1", CONTROL_PAIRS, {"ecoli": 300, "phix": 10_000}, genomes, 3, host),
        "NC2": _sample(data, "NC2", CONTROL_PAIRS, {"phix": 10_000}, genomes, 4, host),
        # 10 CFU/mL of S. aureus gives 1,000 read pairs per million in this run
        "PC": _sample(data, "PC", CONTROL_PAIRS, {"saur": 1_000, "phix": 10_000}, genomes, 5, host),
        "PCFAIL": _sample(data, "PCFAIL", CONTROL_PAIRS, {"phix": 10_000}, genomes, 6, host),
    }  # fmt: skip
    lots = {"LOT-CLEAN": ("CLEAN", "PC"), "LOT-CONTAM": ("CONTAM", "PC"), "LOT-BADPC": ("CLEAN", "PCFAIL")}
    header = "lot_id\tunit_id\tassay\trole\tpath\tpath2\tspike_organism\tspike_concentration\tspike_unit"
    rows = [header]
    for lot, (test, positive) in lots.items():
        # LOT-BADPC's sample is LOT-CLEAN's, but a lot's test files serve that lot alone: its own copy
        reads = [own_copy(workdir, r, lot) for r in samples[test]] if lot == "LOT-BADPC" else samples[test]
        rows.append("\t".join([lot, "STER", "sterility_reads", "test", *reads, "", "", ""]))
        for control in ("NC1", "NC2"):
            rows.append(
                "\t".join(
                    [lot, control, "sterility_reads", "negative_control", *samples[control], "", "", ""]
                )
            )
        spike = ["Staphylococcus aureus", "10", "CFU/mL"]
        rows.append("\t".join([lot, "PC", "sterility_reads", "positive_control", *samples[positive], *spike]))
    (workdir / "config" / "units.tsv").write_text("\n".join(rows) + "\n")
    (workdir / "config" / "lots.tsv").write_text(
        "lot_id\tproduct\tspec\tcollected_at\tsite\n"
        + "".join(f"{lot}\tCAR-T\tSTERILITY\t2026-11-24T08:30:00+01:00\tSITE-A\n" for lot in lots)
    )
    (workdir / "config" / "specs.yaml").write_text(SPEC)
    done = run_snakemake(project_root, workdir, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def _metrics(workdir: Path, lot: str, unit: str = "STER") -> dict:
    return record_of(workdir, lot, unit)


def test_clean_lot_passes_and_the_reagent_background_is_discounted(sterility_run: Path) -> None:
    release = release_of(sterility_run, "LOT-CLEAN")
    assert release["status"] == "RELEASE_CANDIDATE", release["status_reason"]
    record = _metrics(sterility_run, "LOT-CLEAN")
    assert record["validity"] == {"valid": True, "problems": []}
    assert [c["name"] for c in record["calls"] if c["call"] == "DETECTED"] == []
    # E. coli is in the sample (about 100 RPM) but also in NC1 (300 RPM; pooled about 150): below 10x
    ecoli = next(c for c in record["calls"] if c["name"] == "Escherichia coli")
    assert ecoli["reads"] >= 10 and ecoli["fold"] < 10 and ecoli["control_reads"] >= 10
    assert ecoli["reason"].startswith("not above background")
    # host reads of sequence the index lacks are unclassified, never called a contaminant
    assert record["metrics"]["unclassified_pct"]["value"] > 95
    assert {e["status"] for e in record["checklist"]} == {"NOT_DETECTED"}


def test_the_lod_comes_from_the_positive_control(sterility_run: Path) -> None:
    record = _metrics(sterility_run, "LOT-CLEAN")
    (spike,) = record["controls"]["positive"]
    assert spike["call"] == "DETECTED" and spike["taxid"] == 1280
    # 1,000 pairs per million simulated from S. aureus COL; most classify to S. aureus
    assert 800 <= spike["rpm"] <= 1_010
    threshold = record["detection_threshold"]
    fragments = record["metrics"]["fragments_total"]["value"]
    controls = [(0, c["fragments"]) for c in record["controls"]["negative"]]
    # the reads a taxon no control holds needs: the count test against the two clean controls
    assert threshold["reads"] == detection_threshold(
        fragments, controls, DetectionSettings(), threshold["taxa_tested"]
    )
    assert 10 <= threshold["reads"] <= 20
    # predicted from the spike's lower 95 % count bound: the 1 mL tested (the default volume) holds
    # Poisson-many organisms, each read Poisson-many times at the test's depth
    per_organism = spike["rpm_per_unit_lower"] * fragments / 1e6
    predicted = organisms_detected(threshold["reads"], per_organism)
    assert record["lod"]["predicted"] == pytest.approx(predicted, rel=1e-6)
    assert record["lod"]["basis"] == "predicted"
    assert record["metrics"]["lod"]["value"] == pytest.approx(predicted, rel=1e-6)
    # at least the 3 CFU/mL the sample alone allows, and more than reads alone would claim
    assert 3.0 < predicted < 5.0
    assert predicted > 1e6 * mean_detected(threshold["reads"]) / fragments / spike["rpm_per_unit_lower"]
    lod = next(
        a for a in release_of(sterility_run, "LOT-CLEAN")["attributes"] if a["name"] == "sterility_lod"
    )
    assert lod["result"] == "PASS"


def test_contaminated_lot_fails_naming_the_organism(sterility_run: Path) -> None:
    release = release_of(sterility_run, "LOT-CONTAM")
    assert release["status"] == "NOT_RELEASABLE"
    sterility = release["attributes"][0]
    assert sterility["result"] == "FAIL"
    assert "Klebsiella pneumoniae" in sterility["reason"]
    record = _metrics(sterility_run, "LOT-CONTAM")
    detected = [c for c in record["calls"] if c["call"] == "DETECTED"]
    assert [c["name"] for c in detected] == ["Klebsiella pneumoniae"]
    (klebsiella,) = detected
    assert 100 <= klebsiella["rpm"] <= 160  # 150 pairs per million simulated, a few stay unclassified
    assert klebsiella["control_reads"] == 0 and klebsiella["p_adjusted"] <= 0.01
    assert klebsiella["kmer_ratio"] > 0.5


def test_failed_positive_control_makes_the_lot_inconclusive(sterility_run: Path) -> None:
    release = release_of(sterility_run, "LOT-BADPC")
    assert release["status"] == "INCONCLUSIVE"
    assert {a["result"] for a in release["attributes"]} == {"INCONCLUSIVE"}
    assert (
        "positive control PC did not detect its spike Staphylococcus aureus"
        in release["attributes"][0]["reason"]
    )
    record = _metrics(sterility_run, "LOT-BADPC")
    assert record["metrics"]["lod"]["value"] is None
    control = _metrics(sterility_run, "LOT-BADPC", "PC")
    assert control["metrics"]["spike_call"]["value"] == "NOT_DETECTED"
