"""The lot report: decision first, evidence drawn, self-contained, and rendered by a real browser offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

from rapidrelease.flow.measure import measure_unit
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
            evaluate_lot_files(run, lot, [unit_dir / "metrics.json"], out / lot / "release.json")
            write_lot_report(out / lot / "release.json", [unit_dir], out / lot / "report.html")
            made[lot] = out / lot / "report.html"
    return made


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
