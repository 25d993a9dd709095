"""Potency tubes from a real Aurora panel (SEB-stimulated T cells, CD107a/IFN-γ/TNF-α, spectrally
unmixed): gated with the lab's own FlowJo workspace through the potency assay, every sample's
counts equal FlowJo's."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from rapidrelease.flow.measure import measure_tube

pytestmark = pytest.mark.shared_data

DATA = "fcs/coereba_aurora_seb"


def test_seb_tubes_measured_as_potency_give_flowjos_counts(shared_data: Path, tmp_path: Path):
    panel = tmp_path / "seb.yaml"
    panel.write_text(
        "name: SEB potency (Coereba Aurora)\nassay: potency\n"
        f"gating_template: {shared_data / DATA / 'CytoML.wsp'}\n"
        "min_events: 10\nmetrics:\n  vd2_cells: {kind: count, numerator: Vd2}\n"
    )
    truth = pl.read_csv(shared_data / "fcs/_truth/cmp_coereba_seb.tsv", separator="\t")
    samples = truth["sample"].unique().sort().to_list()
    assert len(samples) == 30
    for sample in samples:
        record = measure_tube(
            lot_id="LOT",
            unit_id="SEB",
            assay="potency",
            role="stimulated",
            fcs_path=shared_data / DATA / sample,
            panel_path=panel,
            out_dir=tmp_path / "out",
        )
        assert record.status == "ok", record.error
        flowjo = dict(truth.filter(pl.col("sample") == sample).select("path", "flowjo").iter_rows())
        fcs_input = record.inputs[0]
        assert fcs_input.role == "fcs" and fcs_input.details["n_events"] == flowjo["(root)"]
        assert record.metrics["vd2_cells"].value == flowjo["Vd2"], sample
