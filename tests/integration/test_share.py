"""Issue 19 end to end: a site's de-identified package leaks none of the site's identifying strings,
and three programs' packages combine into a benchmark page that draws offline in Chromium."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest

from rapidrelease.cli import main
from rapidrelease.config.run import load_run_config
from rapidrelease.config.vocabulary import FLOW_ASSAYS
from rapidrelease.fcs.reader import read_fcs
from rapidrelease.records import read_release
from rapidrelease.share.package import read_package

from support.browsers import ALL_PLOTS_DRAWN, ChromiumTab, chromium_session, executable
from support.programs import PROGRAMS, write_program

pytestmark = pytest.mark.slow

# what a site's instrument writes about the sample, the operator and itself (FCS 3.1 TEXT segment)
IDENTIFYING_KEYWORDS = ("$OP", "$CYTSN", "$FIL", "$SRC", "$INST", "$SMNO")


def identifying_strings(site: Path) -> set[str]:
    """Every string the site holds that names a product, site, lot, operator, instrument or file."""
    run = load_run_config(site / "config" / "config.yaml")
    found = {str(site), str(site.resolve())}
    for lot in run.lots.values():
        found |= {lot.lot_id, lot.product, lot.site}
    for path in sorted((site / "resources" / "demo" / "archive").glob("*/release.json")):
        archived = read_release(path).lot
        found |= {archived.lot_id, archived.product, archived.site}
    for unit in run.units:
        for path in (unit.path, unit.path2):
            if path is not None:
                found |= {str(path), path.name, path.stem, str(path.parent)}
        # a panel's file stem is the assay's name (microbial_flow.yaml), which attributes share
        if unit.template is not None:
            found |= {str(unit.template), unit.template.name}
        if unit.assay in FLOW_ASSAYS:
            keywords = read_fcs(site / unit.path).keywords
            found |= {keywords[k] for k in IDENTIFYING_KEYWORDS if keywords.get(k)}
    for name in ("lots", "units", "specs"):
        found.add(str(run.settings[name]))
    # a string of one to three characters (".", "-") would be found anywhere by chance
    return {s for s in found if len(s) >= 4}


def package_texts(package: Path) -> dict[str, bytes]:
    """Every file of the package as stored, and each table decompressed by reading it and written
    out again as plain CSV (the Parquet pages are zstd-compressed on disk)."""
    texts = {}
    for path in sorted(package.iterdir()):
        texts[path.name] = path.read_bytes()
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            out = io.StringIO()
            frame.write_csv(out)
            texts[f"{path.name} (read)"] = (",".join(frame.columns) + "\n" + out.getvalue()).encode()
    return texts


def test_a_demo_export_holds_no_identifying_string(demo_run: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(demo_run)
    (demo_run / "share.key").write_bytes(b"the demo site's secret, 32 bytes")
    package = demo_run / "pkg"
    assert (
        main(
            [
                "share",
                "export",
                "--out",
                str(package),
                "--min-lots",
                "2",
                "--lot-rows",
                "--key-file",
                "share.key",
            ]
        )
        == 0
    )
    read = read_package(package)
    # not vacuous: the demo's own platform (its two lots) and the archive's are both in it, values too
    summaries = read.tables["summaries"]
    assert set(summaries["platform"]) == {
        "T cell · lentiviral · 4-1BB · 7 d · central",
        "unspecified · unspecified · unspecified · unspecified · unspecified",
    }
    demo_car = summaries.filter(
        platform="T cell · lentiviral · 4-1BB · 7 d · central", attribute="car_of_cd3"
    )
    assert demo_car.select("n_lots", "n_pass", "n_fail").row(0) == (2, 1, 1)
    assert read.tables["lots"].height > 0
    assert read.tables["organisms"]["organism"].to_list() == ["Staphylococcus epidermidis"]

    strings = identifying_strings(demo_run)
    assert {
        "DEMO-001",
        "HIST-019",
        "SITE-A",
        "qc.analyst1",
        "SIM-LSRF-0001",
        "DEMO-001_phenotype.fcs",
    } <= strings
    leaks = [
        (name, s)
        for name, data in package_texts(package).items()
        for s in strings
        if s.encode() in data or s.casefold().encode() in data.lower()
    ]
    assert leaks == []


def test_three_programs_combine_into_a_benchmark_drawn_offline(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
):
    if executable("chromium") is None:
        pytest.skip("chromium is not installed (Debian package chromium; .ci/run installs it)")
    monkeypatch.chdir(project_root)
    packages = []
    for i, program in enumerate(PROGRAMS):
        releases = write_program(program, tmp_path / program.prefix)
        package = tmp_path / f"pkg-{i}"
        args = [
            "share",
            "export",
            "--out",
            str(package),
            "--min-lots",
            "5",
            "--releases",
            *map(str, releases),
        ]
        # the second program shares under a differential-privacy budget, one generous enough
        # (count noise of scale 0.05 lots) that its counts round to the true ones
        assert main(args + (["--epsilon", "600"] if i == 1 else [])) == 0
        packages.append(str(package))
    out = tmp_path / "network"
    assert main(["share", "combine", *packages, "--out", str(out), "--margin", "viability=5"]) == 0

    page = (out / "benchmark.html").read_text(encoding="utf-8")
    for program in PROGRAMS:
        assert program.site not in page and program.product not in page and program.prefix not in page
    pooled = pl.read_parquet(out / "benchmark.parquet")
    lenti = pooled.filter(platform="T cell · lentiviral · 4-1BB · 7 d · central", attribute="viability")
    # Orion and Vega (8 lots each) on one platform; Lyra alone on the gammaretroviral one
    assert lenti.select("programs", "n_lots").row(0) == (2, 16)
    assert set(pooled["platform"]) == {
        "T cell · lentiviral · 4-1BB · 7 d · central",
        "T cell · gammaretroviral · CD28 · 10 d · point-of-care",
    }
    assert "Program A" in page and "equivalent" in page
    assert "<i>Staphylococcus epidermidis</i>" in page

    with chromium_session() as browser:
        tab = ChromiumTab(browser, out / "benchmark.html")
        try:
            tab.wait_for(ALL_PLOTS_DRAWN)
            plots = tab.evaluate("document.querySelectorAll('.plotly-graph-div').length")
            drawn = tab.evaluate(
                "[...document.querySelectorAll('.plotly-graph-div')]"
                ".filter(d => d.querySelector('svg.main-svg g.trace path')).length"
            )
            console, requests = list(tab.console), list(tab.requests)
        finally:
            tab.close()
    # per platform a pass-rate chart and a position chart per numeric attribute (8 and the time to
    # result), and the contaminants across the network (Staphylococcus epidermidis in Lyra's lot)
    assert plots == 2 * (1 + 9) + 1
    # every figure drew marks (its bars, points or error bars), not only its axes
    assert drawn == plots
    assert [text for level, text in console if level == "error"] == []
    assert [url for url in requests if not url.startswith("file://")] == []
