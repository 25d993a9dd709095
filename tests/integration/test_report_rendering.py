"""Every gate plot of the demo reports drawn with its events, read from the pixels real browsers make:
headless Chromium and Firefox on screen, and Chromium's print to PDF (``rapidrelease report --pdf``)
as a reviewer files it.

Events are told from the rest of a plot by drawing the page twice, once as it is and once with the
plots' event layers hidden: the pixels that differ are the events, and they must fall inside the
plot's area and, for a density plot, cover the bins the report says it painted. Screenshots and
printed pages are kept in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from rapidrelease.report.gate_plots import BIN_PX
from rapidrelease.report.pdf import print_pdf

from support.browsers import (
    ALL_PLOTS_DRAWN,
    BROWSERS,
    STATUS_TEXT,
    ChromiumTab,
    FirefoxSession,
    FirefoxTab,
    chromium_session,
    executable,
)
from support.workflow import BIN, release_of

pytestmark = pytest.mark.slow

LOTS = ("DEMO-001", "DEMO-002")
ARTIFACTS = Path(os.environ.get("RAPIDRELEASE_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
DEBIAN_PACKAGE = {"chromium": "chromium", "firefox": "firefox-esr"}

# each gate plot: its id, its box and its plot area's box in page pixels, and what it says it drew
GATE_PLOTS = """[...document.querySelectorAll('svg.gate-plot')].map(svg => {
  const box = e => {
    const r = e.getBoundingClientRect();
    return [r.left + scrollX, r.top + scrollY, r.width, r.height];
  };
  return {id: svg.id, svg: box(svg), area: box(svg.querySelector('rect.area')),
          bins: Number(svg.dataset.paintedBins), events: Number(svg.dataset.events),
          density: svg.querySelector('image.events') !== null,
          canvases: svg.querySelectorAll('canvas').length};
})"""
HIDE_EVENTS = "svg.gate-plot .events{visibility:hidden}"
# the plot areas alone, filled magenta: where each one is on a printed page
MARK_AREAS = (
    "svg.gate-plot rect.area{fill:#ff00ff!important;stroke:none!important}"
    " svg.gate-plot rect.area~*{visibility:hidden}"
)


def _add_style(css: str) -> str:
    """A JavaScript expression that adds ``css`` to the page and lays it out again."""
    return (
        f"(() => {{ const s = document.createElement('style'); s.textContent = {json.dumps(css)};"
        " document.head.append(s); return document.body.offsetHeight; })()"
    )


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where two renderings of one page differ, (height, width) bool; the shorter one padded white."""
    height = max(a.shape[0], b.shape[0])
    a, b = (np.pad(x, ((0, height - x.shape[0]), (0, 0), (0, 0)), constant_values=255) for x in (a, b))
    return np.abs(a - b).sum(axis=2) > 24


def _span(start: float, length: float) -> slice:
    """The pixels from ``start`` over ``length`` page pixels and one more on each side: a fractional
    page offset may round an edge either way."""
    return slice(int(start) - 1, int(np.ceil(start + length)) + 1)


def _expected_gate_plots(run: Path, lot: str) -> dict[str, int]:
    """Each gate plot's element id in the lot's report and the events it plots, from the flow units'
    gate_plots.json (NaN coordinates are not plotted)."""
    expected = {}
    for path in sorted((run / "results" / lot / "flow").glob("*/gate_plots.json")):
        for i, plot in enumerate(json.loads(path.read_text(encoding="utf-8"))["plots"]):
            coordinates = [plot["x"], *([plot["y"]] if "y" in plot else [])]
            finite = np.all([np.isfinite(np.array(c, dtype=np.float64)) for c in coordinates], axis=0)
            expected[f"unit-{path.parent.name}-gate-{i}"] = int(finite.sum())
    return expected


@pytest.fixture(scope="module", params=BROWSERS)
def open_tab(request: pytest.FixtureRequest):
    """A function that opens a page from file:// in the system's Chromium or Firefox, headless."""
    name = request.param
    if executable(name) is None:
        pytest.skip(f"{name} is not installed (Debian package {DEBIAN_PACKAGE[name]}; .ci/run installs it)")
    if name == "chromium":
        with chromium_session() as browser:
            yield lambda path: ChromiumTab(browser, path)
    else:
        session = FirefoxSession()
        try:
            yield lambda path: FirefoxTab(session, path)
        finally:
            session.close()


@pytest.mark.parametrize("lot", LOTS)
def test_every_gate_plot_shows_its_parents_events_inside_its_plot_area(demo_run, open_tab, lot, request):
    browser = request.node.callspec.params["open_tab"]
    report = demo_run / "results" / lot / "report.html"
    tab = open_tab(report)
    try:
        tab.wait_for(ALL_PLOTS_DRAWN)
        plots = tab.evaluate(GATE_PLOTS)
        shown = tab.screenshot()
        tab.evaluate(_add_style(HIDE_EVENTS))
        hidden = tab.screenshot()
        console, requests = list(tab.console), list(tab.requests)
    finally:
        tab.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"gates-{browser}-{lot}.png").write_bytes(shown)

    # no error, and no WebGL context asked for (let alone lost): gate plots are SVG and images
    assert [text for level, text in console if level == "error"] == []
    assert not [text for _, text in console if "webgl" in text.lower()]
    # nothing asked of the network: the page itself at most, and its images as data: URIs
    assert {url for url in requests if not url.startswith("data:")} <= {report.as_uri()}
    expected = _expected_gate_plots(demo_run, lot)
    assert {p["id"]: p["events"] for p in plots} == expected
    assert len(expected) >= 20  # phenotype, potency (two tubes) and microbial gates
    assert all(p["canvases"] == 0 for p in plots)

    changed = _changed(_pixels(shown), _pixels(hidden))
    wrong = []
    for plot in plots:
        x, y, width, height = plot["area"]
        sx, sy, sw, sh = plot["svg"]
        # the area's frame included
        inside = int(changed[_span(y, height), _span(x, width)].sum())
        whole = changed[_span(sy, sh), _span(sx, sw)]
        outside = int(whole.sum()) - inside
        if plot["events"] == 0:
            # a gate whose parent holds no events (the starting material has no CAR+ cells): its plot
            # must draw none, not a stray bin
            if plot["bins"] or inside or outside:
                wrong.append((plot["id"], 0, plot["bins"] * BIN_PX**2, inside, outside))
            continue
        if plot["density"]:
            # every painted bin is BIN_PX × BIN_PX pixels; the gate's outline is drawn over a few
            painted = plot["bins"] * BIN_PX**2
            drawn = painted > 0 and 0.9 * painted <= inside <= 1.02 * painted
        else:  # a histogram: the parent's events as a filled outline
            drawn = inside >= 0.005 * width * height
        if not drawn or outside:
            wrong.append((plot["id"], plot["events"], plot["bins"] * BIN_PX**2, inside, outside))
    assert wrong == [], f"{browser}: (plot, events, painted pixels, changed inside, changed outside)"


def _pdf_pages(pdf: Path, out: Path, prefix: str) -> list[np.ndarray]:
    """The PDF's pages as RGB arrays at 72 dpi (one pixel a point), written as PNG to ``out``."""
    subprocess.run(["pdftoppm", "-r", "72", "-png", str(pdf), str(out / prefix)], check=True, timeout=120)
    from PIL import Image

    return [
        np.asarray(Image.open(p).convert("RGB")).astype(np.int16) for p in sorted(out.glob(f"{prefix}-*.png"))
    ]


def _restyled(report: Path, css: str, out: Path) -> Path:
    """A copy of ``report`` with ``css`` appended to its style (which changes no layout)."""
    text = report.read_text(encoding="utf-8")
    at = text.index("</style>")
    out.write_text(text[:at] + css + text[at:], encoding="utf-8")
    return out


@pytest.mark.skipif(
    shutil.which("pdftoppm") is None,
    reason="pdftoppm is not installed (Debian package poppler-utils; .ci/run installs it)",
)
def test_report_pdf_heads_every_page_and_prints_every_gate_plot_with_its_events(demo_run, tmp_path):
    if executable("chromium") is None:
        pytest.skip("chromium is not installed (Debian package chromium; .ci/run installs it)")
    lot = "DEMO-001"
    release = release_of(demo_run, lot)
    out = tmp_path / "report.html"
    done = subprocess.run(
        [
            str(BIN / "rapidrelease"),
            "report",
            "--config",
            "config/config.yaml",
            "--lot",
            lot,
            "--release",
            f"results/{lot}/release.json",
            "--out",
            str(out),
            "--pdf",
        ],
        cwd=demo_run,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pdf = out.with_suffix(".pdf")
    # the same page printed with the gate plots' events hidden, and with only their areas, marked
    print_pdf(_restyled(out, HIDE_EVENTS, tmp_path / "hidden.html"), tmp_path / "hidden.pdf")
    print_pdf(_restyled(out, MARK_AREAS, tmp_path / "marked.html"), tmp_path / "marked.pdf")
    pages = _pdf_pages(pdf, tmp_path, "page")
    hidden = _pdf_pages(tmp_path / "hidden.pdf", tmp_path, "hidden")
    marked = _pdf_pages(tmp_path / "marked.pdf", tmp_path, "marked")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for page in sorted(tmp_path.glob("page-*.png")):
        shutil.copy(page, ARTIFACTS / f"print-{lot}-{page.name}")

    # every page headed with lot, product, status and its number of the whole
    assert len(pages) == len(hidden) == len(marked) >= 2
    header = " · ".join([f"Lot {lot}", release["lot"]["product"], STATUS_TEXT[release["status"]]])
    for number in range(1, len(pages) + 1):
        text = subprocess.run(
            ["pdftotext", "-layout", "-f", str(number), "-l", str(number), str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        first = next(line for line in text.splitlines() if line.strip())
        assert header in first and first.rstrip().endswith(f"page {number} of {len(pages)}"), first

    # every gate plot's area on some page, whole (a plot is never split over two pages), with events in it
    expected = _expected_gate_plots(demo_run, lot)
    areas: list[Any] = []
    for number, (page, empty, mark) in enumerate(zip(pages, hidden, marked, strict=True), start=1):
        magenta = (mark[..., 0] > 200) & (mark[..., 1] < 90) & (mark[..., 2] > 200)
        labels, _ = ndimage.label(magenta)
        for region in ndimage.find_objects(labels):
            rows, columns = region
            if (rows.stop - rows.start) * (columns.stop - columns.start) < 2000:
                continue  # not a plot area (a plot area is about 209 × 172 points)
            events = int(_changed(page[region], empty[region]).sum())
            areas.append((number, rows.stop - rows.start, columns.stop - columns.start, events))
    assert len(areas) == len(expected), areas
    # a plot of an empty parent prints no events, every other one at least 50 event pixels
    empty = sum(1 for events in expected.values() if events == 0)
    printed = sorted(events for *_, events in areas)
    assert printed[:empty] == [0] * empty and all(n >= 50 for n in printed[empty:]), areas
