"""The committed demo can never drift from the simulator: regenerating it gives the same bytes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from rapidrelease.outputs import sha256_file
from rapidrelease.synthetic.demo.archive import N_ARCHIVED_LOTS
from rapidrelease.synthetic.demo.simulate import write_demo_lots

LOT_FILES = [
    "{lot}_phenotype.fcs",
    "truth.tsv",
    "events_truth.parquet",
    "{lot}_sterility_R1.fastq.gz",
    "{lot}_sterility_R2.fastq.gz",
    "{lot}_sterility_reads_truth.tsv",
    "RunInfo.xml",
    "RTAComplete.txt",
    "{lot}_potency_stimulated.fcs",
    "{lot}_potency_unstimulated.fcs",
    "{lot}_potency_stimulated_events_truth.parquet",
    "{lot}_potency_unstimulated_events_truth.parquet",
    "potency_truth.tsv",
    "{lot}_microbial.fcs",
    "microbial_truth.tsv",
    "{lot}_apheresis.fcs",
    "apheresis_truth.tsv",
]

EXPECTED = [
    *(f"{lot}/{name.format(lot=lot)}" for lot in ("DEMO-001", "DEMO-002") for name in LOT_FILES),
    "SEQ-RUN-01/RunInfo.xml",
    "SEQ-RUN-01/RTAComplete.txt",
    *(
        f"SEQ-RUN-01/SEQ-RUN-01_{control}_{suffix}"
        for control in ("NC1", "NC2", "PC")
        for suffix in ("R1.fastq.gz", "R2.fastq.gz", "reads_truth.tsv")
    ),
    "FLOW-RUN-01/FLOW-RUN-01_medium.fcs",
    "FLOW-RUN-01/FLOW-RUN-01_medium_truth.tsv",
    "car_t_phenotype.gatingml.xml",
    "car_t_potency.gatingml.xml",
    "microbial_flow.gatingml.xml",
    *(f"archive/HIST-{n:03d}/release.json" for n in range(1, N_ARCHIVED_LOTS + 1)),
    "README.md",
]
TEMPLATES = ["car_t_phenotype.gatingml.xml", "car_t_potency.gatingml.xml", "microbial_flow.gatingml.xml"]


def test_write_demo_lots_returns_every_file_it_writes(regenerated: tuple[Path, list[Path]]) -> None:
    out, written = regenerated
    assert [p.relative_to(out).as_posix() for p in written] == EXPECTED
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(EXPECTED)


def test_regenerated_demo_is_byte_identical_to_committed(
    regenerated: tuple[Path, list[Path]], demo_dir: Path
) -> None:
    out, _ = regenerated
    committed = sorted(p.relative_to(demo_dir).as_posix() for p in demo_dir.rglob("*") if p.is_file())
    assert committed == sorted(EXPECTED), "resources/demo holds other files than the simulator writes"
    for name in EXPECTED:
        if name.endswith(".parquet"):
            # Parquet's footer names the writing Polars version, so compare the table, not the bytes.
            assert_frame_equal(pl.read_parquet(out / name), pl.read_parquet(demo_dir / name))
        else:
            assert sha256_file(out / name) == sha256_file(demo_dir / name), (
                f"{name} differs from the simulator's output: run "
                "`rapidrelease simulate-demo --out resources/demo` and commit the result"
            )


def test_another_seed_gives_other_events_but_the_same_template(
    regenerated: tuple[Path, list[Path]], project_root: Path, tmp_path: Path
) -> None:
    out, _ = regenerated
    write_demo_lots(
        tmp_path,
        seed=7,
        reference_dir=project_root / "resources" / "reference",
        specs_path=project_root / "config" / "specs.yaml",
    )
    for name in (
        "DEMO-001/DEMO-001_phenotype.fcs",
        "DEMO-001/DEMO-001_sterility_R1.fastq.gz",
        "DEMO-001/DEMO-001_potency_stimulated.fcs",
        "DEMO-001/DEMO-001_potency_unstimulated.fcs",
        "DEMO-001/DEMO-001_microbial.fcs",
        "FLOW-RUN-01/FLOW-RUN-01_medium.fcs",
    ):
        assert sha256_file(tmp_path / name) != sha256_file(out / name)
    for template in TEMPLATES:
        assert sha256_file(tmp_path / template) == sha256_file(out / template)
