"""A demo lot decided against a lab's own Kraken 2 database, read as kraken2-build wrote it.

The database (tests/support/kraken2.py) holds what the demo's sequencing reads come from (human
scaffolds, the packaging plasmid, phiX, the positive control's S. aureus) and the rRNA genes of the
compendial organisms; not E. coli, a negative control's reagent background. The run is DEMO-001's
whole lot (flow, reads, decision, report) and DEMO-002's sterility calls only: its decision rests
on its flow data, which this test is not about.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.kraken2 import kraken2_database, needs_kraken2
from support.reads import read_table
from support.workflow import record_of, release_of, run_snakemake, site_folder

pytestmark = [pytest.mark.slow, needs_kraken2]


@pytest.fixture(scope="module")
def kraken2_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    db = kraken2_database(tmp_path_factory.getbasetemp())
    workdir = site_folder(project_root, tmp_path_factory.mktemp("kraken2_site"), index=db, parts=1)
    targets = ("results/DEMO-001/report.html", "results/DEMO-002/reads/STER/metrics.json")
    done = run_snakemake(project_root, workdir, *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir, db


def test_a_demo_lot_is_decided_on_a_kraken2_database(kraken2_run: tuple[Path, Path]) -> None:
    workdir, db = kraken2_run
    release = release_of(workdir, "DEMO-001")
    assert release["status"] == "RELEASE_CANDIDATE"
    assert [a["result"] for a in release["attributes"]] == ["PASS"] * 10
    for lot in ("DEMO-001", "DEMO-002"):
        reads = record_of(workdir, lot, "STER")
        assert reads["status"] == "ok" and reads["metrics"]["fragments_total"]["value"] == 2_500
        # the simulated composition (resources/demo/<lot>/*_truth.tsv): 96.52 % human, 2.48 %
        # packaging plasmid, 1 % phiX, each read pair called into its category by this database
        shares = {c: reads["metrics"][f"{c}_pct"]["value"] for c in ("host", "vector", "spike_in")}
        assert shares == {"host": 96.52, "vector": 2.48, "spike_in": 1.0}
        assert reads["metrics"]["contaminant_call"]["value"] == "NOT_DETECTED"
        # LOD95 from the positive control's 112 S. aureus pairs, as on the default panel (9.874)
        assert reads["metrics"]["lod"]["value"] == pytest.approx(9.874, abs=1e-3)
        checklist = {e["organism"]: e for e in reads["checklist"]}
        assert [e["status"] for e in checklist.values()] == ["NOT_DETECTED"] * 6
        # the minimizers held come from one scan of the Kraken 2 table: a genome for S. aureus,
        # a few rRNA genes for the others (A. brasiliensis under its former taxid, A. niger)
        assert checklist["Staphylococcus aureus"]["reference_minimizers"] > 500_000
        assert 0 < checklist["Clostridium sporogenes"]["reference_minimizers"] < 5_000
        assert checklist["Aspergillus brasiliensis"]["taxid"] == 5061
        # the kreport lies where the lot's reads were gathered (results/_measured/reads/<key>)
        gathered = next(i["path"] for i in reads["inputs"] if i["role"] == "gathered reads (test STER)")
        kreport = read_table(workdir / Path(gathered).parent / "reads.kreport")
        human = next(row for row in kreport if row[-1].strip() == "Homo sapiens")
        assert (human[0].strip(), human[3], human[4]) == ("96.52", "S", "9606")
    # the record names the database by its options and taxonomy files; the report shows the checklist
    gathered = record_of(workdir, "DEMO-001", "STER")["inputs"]
    assert {Path(i["path"]).name for i in gathered if i["role"] == "index"} == {
        "opts.k2d",
        "taxo.k2d",
        "hash.k2d",
    }
    assert "Aspergillus brasiliensis" in (workdir / "results" / "DEMO-001" / "report.html").read_text()
    # the compact copy of the table and the per-taxon counts were cached beside the run, once for
    # all the run's jobs, and the database folder was left as it was
    (copy,) = (workdir / ".rapidrelease_cache").glob("kraken2_*/")
    assert sorted(p.name for p in copy.iterdir()) == [
        "compact.json",
        "occupied.bin",
        "packed.bin",
        "per_taxon.npy",
        "rank.bin",
    ]
    assert sorted(p.name for p in db.iterdir()) == ["hash.k2d", "opts.k2d", "taxo.k2d"]
