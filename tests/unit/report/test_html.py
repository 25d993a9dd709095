"""The lot report: decision first, evidence drawn, self-contained, and rendered by a real browser offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from rapidrelease.flow.measure import measure_unit
from rapidrelease.outputs import write_json
from rapidrelease.reads.classify import write_taxa
from rapidrelease.release.config import load_run_config
from rapidrelease.release.decision import evaluate_lot_files
from rapidrelease.report.html import write_lot_report

EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I
)


@pytest.fixture(scope="module")
def reports(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports of DEMO-002 as measured, and of DEMO-001 with its tube missing."""
    out = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project_root)
        run = load_run_config(Path("config/config.yaml"))
        made = {}
        for lot, fcs in (
            ("DEMO-002", Path("resources/demo/DEMO-002/DEMO-002_phenotype.fcs")),
            ("DEMO-001", out / "lost.fcs"),
        ):
            unit_dir = out / lot / "units" / "PHENO"
            measure_unit(
                lot, "PHENO", "phenotype", "test", fcs, Path("config/panels/car_t_phenotype.yaml"), unit_dir
            )
            sequenced = _sterility_unit(out / lot / "units" / "STER", lot)
            units = [unit_dir, sequenced]
            evaluate_lot_files(run, lot, [u / "metrics.json" for u in units], out / lot / "release.json")
            write_lot_report(out / lot / "release.json", units, out / lot / "report.html")
            made[lot] = out / lot / "report.html"
    return made


def _sterility_unit(folder: Path, lot: str) -> Path:
    """A gathered sequencing unit as gather_unit writes it: 2,500 pairs of host, vector and phiX."""
    fragments = {"host": 2413, "vector": 57, "spike_in": 25, "other": 5}
    metrics = {"fragments_total": {"value": 2500, "unit": "fragments", "kind": "count", "status": "ok"}}
    for category in (
        "host",
        "vector",
        "spike_in",
        "adapter",
        "bacteria",
        "fungi",
        "mycoplasma",
        "virus",
        "other",
    ):
        share = 100 * fragments.get(category, 0) / 2500
        metrics[f"{category}_pct"] = {"value": share, "unit": "%", "kind": "percent", "status": "ok"}
    record = {"lot_id": lot, "unit_id": "STER", "assay": "sterility_reads", "role": "test", "status": "ok",
              "error": None, "inputs": [], "metrics": metrics}  # fmt: skip
    write_json(folder / "metrics.json", record)
    taxa = {
        "taxid": np.array([9606, 29278, 10847, 1]),
        "name": np.array(["Homo sapiens", "vectors", "Enterobacteria phage phiX174", "root"], dtype=object),
        "rank": np.array(["species", "no rank", "species", "no rank"], dtype=object),
        "category": np.array(["host", "vector", "spike_in", "other"], dtype=object),
        "reads_direct": np.array([2413, 57, 25, 5]),
        "reads_clade": np.array([2413, 57, 25, 2500]),
        "kmer_hits": np.array([260_000, 6_100, 2_700, 2_836]),
        "kmer_hits_clade": np.array([260_000, 6_100, 2_700, 271_636]),
        "distinct_minimizers": np.array([136_633, 1_973, 1_142, 517]),
        "distinct_minimizers_clade": np.array([136_633, 1_973, 1_142, 140_273]),
        "index_minimizers_clade": np.array([335_814, 3_227, 1_771, 5_964_884]),
        "breadth": np.array([0.40687, 0.6114, 0.64483, 0.02352]),
    }
    write_taxa(folder / "taxa.tsv", taxa, 2500)
    return folder


def test_decision_comes_first_and_failures_lead_the_attribute_table(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    assert "<div class='status'>Not releasable</div>" in page
    assert page.index("Not releasable") < page.index("Quality attributes")
    table = page[page.index("Quality attributes") :]
    assert table.index("car_of_cd3") < table.index("<b>viability</b>") < table.index("cd4_cd8_ratio")
    assert "8.9 % &lt; 15 %" in page  # reason text is escaped, never markup
    assert page.count("<div class='plot'>") == 7  # one plot per gate of the demo template
    # whole-file counts on the CAR+ gate plot (inside plotly's JSON, where '<' and '/' are escaped)
    assert "CARpos\\u003c\\u002fb\\u003e 1,807 \\u002f 20,262 (8.9 %)" in page


def test_a_unit_that_could_not_be_measured_is_shown_with_its_sentence(reports: dict[str, Path]):
    page = reports["DEMO-001"].read_text(encoding="utf-8")
    assert "<div class='status'>Inconclusive</div>" in page
    assert "<b>Not measured.</b>" in page and "lost.fcs: file not found." in page
    assert "<div class='plot'>" not in page


def test_a_sequencing_unit_shows_fragments_by_category_and_the_taxa_found(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    section = page[page.index("Unit STER") :]
    assert "2,500 fragments (a read pair counts once)" in section
    assert "<tr><td>host</td><td class='num'>2,413</td><td class='num'>96.520</td></tr>" in section
    assert "<tr><td>bacteria</td><td class='num'>0</td><td class='num'>0.000</td></tr>" in section
    taxa = section[section.index("Taxon (top 15") :]
    # ordered by fragments called to the taxon itself; breadth as a percentage of the clade's minimizers
    assert taxa.index("Homo sapiens") < taxa.index("vectors") < taxa.index("phiX174") < taxa.index("root")
    assert "<td class='num'>136,633</td><td class='num'>40.687</td>" in taxa


def test_the_report_is_one_self_contained_file(reports: dict[str, Path]):
    page = reports["DEMO-002"].read_text(encoding="utf-8")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert page.count(get_plotlyjs()[:200]) == 1, "plotly.js is embedded exactly once"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (CI installs it)")
def test_a_real_browser_draws_every_plot_with_the_network_cut_off(reports: dict[str, Path], tmp_path: Path):
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=15000",
            "--dump-dom",
            reports["DEMO-002"].as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    dom = done.stdout
    assert "Not releasable" in dom
    drawn = dom.count('class="main-svg"')
    assert drawn >= 7, f"plotly drew {drawn} svg layers; stderr: {done.stderr[-500:]}"
    assert dom.count('class="point"') + dom.count("scattergl") > 0
