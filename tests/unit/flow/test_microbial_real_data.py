"""Microbial flow on real data: counts and concentrations against independent counts.

- Drinking water stained with SYBR Green (total cells) and SYBR Green + PI (intact cells),
  Accuri C6, 162 files: the "Total Cells" polygon of the authors' flowCore analysis. Counts and
  cells per mL (from $VOL, nanolitres) must equal flowCore's exactly.
- Candida glabrata after H2O2, FungaLight SYTO 9 / PI, Attune NxT, 12 files: singlet, live and
  intermediate counts must equal flowWorkspace's.
- Bacillus subtilis two-fold dilution series, NovoCyte, 2 × 7 files: cells per mL must be linear in
  the dilution.

The templates are the data sets' own (../shared/data, not copied into the project); their gate ids
are made valid GatingML (xs:ID) in a temporary copy, as GatingML 2.0 and FlowKit require.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rapidrelease.flow.measure import measure_tube
from rapidrelease.records import Metric

pytestmark = pytest.mark.shared_data

REALTIME = "fcs/realtime_cont_drinkingwater_sgpi"
FUNGALIGHT = "fcs/fungalight_attune_yeast"
NOVOCYTE = "fcs/lennonlab_bacteria_novocyte"


def _panel(folder: Path, template: Path, assay: str, metrics: str) -> Path:
    panel = folder / "panel.yaml"
    panel.write_text(
        f"name: test panel\nassay: {assay}\ngating_template: {template}\nmin_events: 1\nmetrics:\n{metrics}"
    )
    return panel


def _measure(fcs: Path, panel: Path, out: Path, assay: str = "microbial_flow") -> dict[str, Metric]:
    record = measure_tube(
        lot_id="LOT", unit_id="U", assay=assay, role="test", fcs_path=fcs, panel_path=panel, out_dir=out
    )
    assert record.status == "ok", record.error
    return dict(record.metrics)


@pytest.fixture(scope="module")
def realtime(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("realtime")
    gate = (shared_data / REALTIME / "total_cells_gate_DERIVED.gatingml.xml").read_text()
    template = folder / "total_cells.gatingml.xml"
    template.write_text(gate.replace('gating:id="Total Cells"', 'gating:id="TotalCells"'))
    metrics = (
        "  total_cells_per_ml: {kind: concentration, numerator: TotalCells}\n"
        "  total_cells: {kind: count, numerator: TotalCells}\n"
    )
    return folder, _panel(folder, template, "microbial_flow", metrics)


def test_drinking_water_cells_per_ml_equal_flowcore_in_all_162_files(realtime, shared_data: Path):
    folder, panel = realtime
    truth = pl.read_csv(shared_data / REALTIME / "flowcore_total_cells_counts_DERIVED.tsv", separator="\t")
    assert truth.height == 162
    from rapidrelease.fcs.reader import read_fcs

    intact_per_ml, total_per_ml = [], []
    for row in truth.iter_rows(named=True):
        fcs = shared_data / REALTIME / "fcs" / row["file"]
        metrics = _measure(fcs, panel, folder / "out")
        volume_nl = float(read_fcs(fcs).keywords["$VOL"])
        assert metrics["total_cells"].value == row["total_cells_gate_count"], row["file"]
        per_ml = metrics["total_cells_per_ml"]
        assert per_ml.value == row["total_cells_gate_count"] / (volume_nl / 1e6), row["file"]
        assert per_ml.evidence["volume"] == {"ml": volume_nl / 1e6, "source": "$VOL"}
        lo, hi = per_ml.ci95
        assert lo < per_ml.value < hi
        (intact_per_ml if "_SGPI" in row["file"] else total_per_ml).append(per_ml.value)
    assert len(intact_per_ml) == len(total_per_ml) == 81
    # PI enters membrane-damaged cells and moves them out of the SYBR gate: fewer intact than total
    assert np.median(intact_per_ml) < np.median(total_per_ml)


@pytest.fixture(scope="module")
def fungalight(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fungalight")
    gates = (shared_data / FUNGALIGHT / "fungalight_gates_DERIVED.gatingml.xml").read_text()
    template = folder / "fungalight.gatingml.xml"
    template.write_text(gates.replace('"-outlier"', '"NotOutlier"'))
    metrics = "".join(
        f"  {name}: {{kind: count, numerator: {path}}}\n"
        for name, path in (
            ("singlet", "NotOutlier/singlet"),
            ("live", "NotOutlier/singlet/live"),
            ("intermediate", "NotOutlier/singlet/intermediate"),
        )
    )
    metrics += "  live_pct: {numerator: NotOutlier/singlet/live, denominator: NotOutlier/singlet}\n"
    metrics += "  live_per_ml: {kind: concentration, numerator: NotOutlier/singlet/live}\n"
    return folder, _panel(folder, template, "microbial_flow", metrics)


def test_yeast_live_dead_counts_equal_flowworkspace(fungalight, shared_data: Path):
    folder, panel = fungalight
    truth = pl.read_csv(shared_data / "fcs/_truth/cmp_fungalight.tsv", separator="\t")
    assert truth.height == 36
    for sample in truth["sample"].unique().sort():
        day, dose = sample.split("_")
        # 20240405_100mM is 040524_100+_Experiment_Plate_100.fcs (month, day, year; then the dose)
        name = f"{day[4:6]}{day[6:8]}{day[2:4]}_100+_Experiment_Plate_{dose.removesuffix('mM')}.fcs"
        fcs = shared_data / FUNGALIGHT / "fcs" / name
        metrics = _measure(fcs, panel, folder / "out")
        expected = dict(truth.filter(pl.col("sample") == sample).select("pop", "flowworkspace").iter_rows())
        assert {pop: metrics[pop].value for pop in expected} == expected, sample
        singlet, live = expected["singlet"], expected["live"]
        assert metrics["live_pct"].value == pytest.approx(100 * live / singlet)
        assert metrics["live_per_ml"].evidence["volume"]["source"] == "$VOL"


def test_bacterial_dilution_series_is_linear(shared_data: Path, tmp_path: Path):
    # cells: FSC-H and SSC-H above the instrument noise (a threshold gate; NovoExpress's own gate
    # geometry is not published)
    template = tmp_path / "cells.gatingml.xml"
    template.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML '
        'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
        'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">\n'
        '<gating:RectangleGate gating:id="Cells">\n'
        '<gating:dimension gating:compensation-ref="uncompensated" gating:min="9350">'
        '<data-type:fcs-dimension data-type:name="FSC-H"/></gating:dimension>\n'
        '<gating:dimension gating:compensation-ref="uncompensated" gating:min="1250">'
        '<data-type:fcs-dimension data-type:name="SSC-H"/></gating:dimension>\n'
        "</gating:RectangleGate>\n</gating:Gating-ML>\n"
    )
    panel = _panel(
        tmp_path, template, "microbial_flow", "  cells_per_ml: {kind: concentration, numerator: Cells}\n"
    )
    fits = {}
    for series in ("T3_CalCurve", "T9_CalCurve"):
        k = np.arange(7)
        files = [shared_data / NOVOCYTE / series / f"{series}_2e{i}.fcs" for i in k]
        per_ml = np.array([_measure(f, panel, tmp_path / "out")["cells_per_ml"].value for f in files])
        relative = 2.0**-k  # 2e<k>: k two-fold dilutions
        slope, intercept = np.polyfit(relative, per_ml, 1)
        r2 = 1 - np.sum((per_ml - (slope * relative + intercept)) ** 2) / np.sum(
            (per_ml - per_ml.mean()) ** 2
        )
        log_slope = np.polyfit(np.log2(relative), np.log2(per_ml), 1)[0]
        fits[series] = (slope, intercept, r2, log_slope)
        print(f"\n{series}: cells/mL = {slope:.4g} × dilution + {intercept:.3g}", end="")
        print(f", R² {r2:.4f}, log-log slope {log_slope:.3f}")
    t3, t9 = fits["T3_CalCurve"], fits["T9_CalCurve"]
    assert t3[2] > 0.998 and abs(t3[3] - 1) < 0.03
    assert t9[2] > 0.98 and abs(t9[3] - 1) < 0.05
    assert math.isclose(t3[0], 1.9e7, rel_tol=0.05)
