"""What a reviewer, a LIMS and a lab's other tools get from a real run: the report and the index in a
real browser with the network cut off, hostile names shown as text, Snakemake's report archive and
MultiQC's view of the results.

One snakemake run of the demo in which DEMO-001's product and site hold markup, quotes, slashes and
non-ASCII text and its phenotype tube's file name holds quotes, angle brackets and non-ASCII letters.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.browsers import ALL_PLOTS_DRAWN, STATUS_TEXT
from support.workflow import release_of, run_snakemake, site_folder

pytestmark = pytest.mark.slow

HOSTILE_PRODUCT = "<script>alert(\"lot\")</script> 'CAR-T' / Lösung ü"
HOSTILE_SITE = 'SITE "A" / Zürich <b>'
# a file name cannot hold a slash, and Snakemake reads <lower-case name> in a path as a path variable
# (the configuration refuses such a path, tests/unit/release/test_config.py)
HOSTILE_TUBE = "tube \"1\" <B>Größe & 'x'.fcs"
# screenshots are kept for a person to look at after the run (.gitignore'd)
ARTIFACTS = Path(os.environ.get("RAPIDRELEASE_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@pytest.fixture(scope="module")
def hostile_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = site_folder(project_root, tmp_path_factory.mktemp("hostile site"), parts=1)
    tube = workdir / "resources" / "demo" / "DEMO-001" / HOSTILE_TUBE
    (workdir / "resources" / "demo" / "DEMO-001" / "DEMO-001_phenotype.fcs").rename(tube)
    lots = workdir / "config" / "lots.tsv"
    rows = lots.read_text(encoding="utf-8").splitlines()
    rows = [
        "\t".join([f[0], HOSTILE_PRODUCT, f[2], f[3], HOSTILE_SITE, *f[5:]]) if f[0] == "DEMO-001" else row
        for row in rows
        for f in [row.split("\t")]
    ]
    lots.write_text("\n".join(rows) + "\n", encoding="utf-8")
    units = workdir / "config" / "units.tsv"
    text = units.read_text(encoding="utf-8")
    units.write_text(
        text.replace("resources/demo/DEMO-001/DEMO-001_phenotype.fcs", str(tube)), encoding="utf-8"
    )
    done = run_snakemake(project_root, workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def test_hostile_names_reach_release_json_unchanged_and_the_lot_is_still_judged(hostile_run: Path):
    release = release_of(hostile_run, "DEMO-001")
    assert (release["lot"]["product"], release["lot"]["site"]) == (HOSTILE_PRODUCT, HOSTILE_SITE)
    assert release["status"] == "RELEASE_CANDIDATE"
    (pheno,) = [u for u in release["units"] if u["unit_id"] == "PHENO"]
    assert Path(pheno["inputs"][0]["path"]).name == HOSTILE_TUBE


def test_the_audit_names_the_run_the_workflow_commit_and_every_file(project_root: Path, hostile_run: Path):
    audit = release_of(hostile_run, "DEMO-002")["audit"]
    assert "snakemake --snakefile" in audit["run_command"] and "--cores 2" in audit["run_command"]
    head = subprocess.run(
        ["git", "-C", str(project_root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if head:  # a clean clone of the project (CI) or a working checkout
        assert audit["workflow"]["commit"] == head
    assert {f["role"] for f in audit["files"]} == {"config", "lots", "units", "specs", "panel", "metrics"}
    assert all(f["sha256"] and f["size_bytes"] > 0 for f in audit["files"])
    timeline = audit["timeline"]
    assert timeline["analysis_start"] is not None and timeline["analysis_start"] < timeline["analysis_end"]
    assert all(u["analysis_end"] for u in timeline["units"])  # every unit's jobs have benchmark files


@pytest.fixture(scope="module")
def browser():
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian package chromium; CI installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        yield launched
        launched.close()


def _open_offline(browser, path: Path, screenshot: Path):
    """Open ``path`` from file:// with every other request refused; return the page and what it tried."""
    context = browser.new_context(viewport={"width": 1320, "height": 1000}, offline=True)
    seen = {"requests": [], "errors": [], "dialogs": []}
    context.route(lambda url: not url.startswith("file://"), lambda route: route.abort())
    page = context.new_page()
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on(
        "console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function(ALL_PLOTS_DRAWN, timeout=60_000)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    return page, seen


@pytest.mark.parametrize("lot", ["DEMO-001", "DEMO-002"])
def test_each_lot_report_renders_offline_with_every_plot_and_the_decisions_status(hostile_run, browser, lot):
    release = release_of(hostile_run, lot)
    page, seen = _open_offline(
        browser, hostile_run / "results" / lot / "report.html", ARTIFACTS / f"{lot}.png"
    )
    assert seen["errors"] == [] and seen["dialogs"] == []
    # the page itself is the only request: plotly.js and the style are inside it
    assert seen["requests"] == [(hostile_run / "results" / lot / "report.html").as_uri()]
    containers = page.locator(".plotly-graph-div")
    # gate plots as SVG (7 phenotype, 9 + 9 potency, 2 microbial x 2; their events are checked pixel by
    # pixel in test_report_rendering.py); control bars and the timeline as plotly figures
    assert page.locator("svg.gate-plot").count() >= 20
    assert containers.count() >= 2
    assert page.locator(".plotly-graph-div svg.main-svg").count() >= containers.count()
    assert page.locator(".plotly-graph-div:not(:has(svg.main-svg))").count() == 0
    banner = page.locator(".banner")
    assert banner.get_attribute("class") == f"banner {release['status']}"
    assert page.locator(".banner .status").inner_text() == STATUS_TEXT[release["status"]]
    if lot == "DEMO-001":
        lot_line = page.locator(".banner .lot").inner_text()
        assert HOSTILE_PRODUCT in lot_line and HOSTILE_SITE in lot_line
        assert page.locator("script").count() == 1 + containers.count()  # plotly.js and one per figure
        assert HOSTILE_TUBE in page.locator("main").inner_text()
    page.context.close()


def test_the_index_renders_offline_and_lists_both_lots_with_working_links(hostile_run, browser):
    index = hostile_run / "results" / "index.html"
    page, seen = _open_offline(browser, index, ARTIFACTS / "index.png")
    assert seen["errors"] == [] and seen["dialogs"] == [] and seen["requests"] == [index.as_uri()]
    # one control chart per numeric attribute of the demo specification, each drawn
    assert page.locator(".plotly-graph-div").count() == 8
    assert page.locator(".plotly-graph-div:not(:has(svg.main-svg))").count() == 0
    # the demo's synthetic history is listed too (config.yaml trends.archive), before the demo lots
    rows = page.locator("tbody tr", has_text="DEMO-001").first.inner_text()
    assert HOSTILE_PRODUCT in rows
    for link in page.locator("a").all():
        href = link.get_attribute("href")
        assert (index.parent / href).is_file(), href
    page.context.close()


@pytest.fixture(scope="module")
def readme_install(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv holding what README's first command installs, and nothing else.

    The tests' own venv has the test extras too (pytest brings Pygments, which Snakemake's report
    needs), so a report made there would not show that a site's install lacks something.
    """
    first_line = (project_root / "README.md").read_text(encoding="utf-8").split("```\n", 2)[1].splitlines()[0]
    pip_words = re.search(r"\.venv/bin/pip (install [^&]+)", first_line)
    assert pip_words, f"README's first command installs no longer with .venv/bin/pip: {first_line}"
    venv = tmp_path_factory.mktemp("readme-venv") / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # README's pip arguments as written, run in the project root as README runs them; without
    # compiling bytecode at install, most of pip's time here (what is imported compiles when it is)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), *shlex.split(pip_words.group(1))],
        cwd=project_root,
        env=dict(os.environ, PIP_COMPILE="0"),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def test_snakemakes_report_archive_holds_every_lots_decision_report_and_the_index(
    project_root, hostile_run, readme_install
):
    # Snakemake's report as a site makes it: with the snakemake README's first command installs
    done = subprocess.run(
        [
            str(readme_install / "snakemake"),
            "--snakefile",
            str(project_root / "workflow" / "Snakefile"),
            "--directory",
            str(hostile_run),
            "--report",
            "report.zip",
        ],
        cwd=hostile_run,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with zipfile.ZipFile(hostile_run / "report.zip") as archive:
        names = [Path(n).name for n in archive.namelist()]
        page = archive.read("report/report.html").decode("utf-8")
    assert sorted(n for n in names if n != "report.html") == ["index.html", "release.json", "release.json"]
    assert names.count("report.html") == 3  # Snakemake's own page and the two lot reports
    for lot in ("DEMO-001", "DEMO-002"):
        assert f"Machine-readable release decision of lot {lot}" in page
        assert f"Release-candidate report of lot {lot}" in page


def _multiqc() -> str | None:
    return os.environ.get("RAPIDRELEASE_MULTIQC") or shutil.which("multiqc")


@pytest.mark.skipif(
    _multiqc() is None, reason="MultiQC is not installed (.ci/run installs it beside the venv)"
)
def test_multiqc_shows_the_release_table_and_every_sequencing_units_kraken_report(hostile_run, tmp_path):
    done = subprocess.run(
        [
            _multiqc(),
            "-c",
            "config/multiqc_config.yaml",
            "results",
            "-o",
            str(tmp_path),
            "--no-ansi",
            "--data-format",
            "json",
        ],
        cwd=hostile_run,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (data_file,) = tmp_path.glob("*_data/multiqc_data.json")
    data = json.loads(data_file.read_text(encoding="utf-8"))
    table = data["report_saved_raw_data"]["multiqc_rapidrelease_release_table"]
    assert {lot: row["status"] for lot, row in table.items()} == {
        "DEMO-001": "RELEASE_CANDIDATE",
        "DEMO-002": "NOT_RELEASABLE",
    }
    assert table["DEMO-002"]["car_of_cd3 (%)"] == pytest.approx(8.9)
    assert table["DEMO-002"]["car_of_cd3 result"] == "FAIL"
    # config/multiqc_config.yaml colours the results: failures red, passes green
    (page,) = tmp_path.glob("*multiqc_report.html")
    badges = re.findall(
        r'<span class="badge" style="background-color:([^"]*)">([A-Z_]+)</span>',
        page.read_text(encoding="utf-8"),
    )
    assert {("#d9534f", "FAIL"), ("#d9534f", "NOT_RELEASABLE"), ("#5cb85c", "PASS")} <= set(badges)
    kraken = data["report_saved_raw_data"]["multiqc_kraken"]
    units = ("STER", "STER-NC1", "STER-NC2", "STER-PC")
    assert sorted(kraken) == sorted(f"{lot}_{unit}" for lot in ("DEMO-001", "DEMO-002") for unit in units)
