"""Loading flow panels: the demo panel, and every way a panel file can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.errors import ConfigError
from rapidrelease.flow.panel import load_panel

DEMO_PANEL = "config/panels/car_t_phenotype.yaml"
TEMPLATE = "resources/demo/car_t_phenotype.gatingml.xml"


@pytest.fixture(autouse=True)
def _in_project(project_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # panel paths are relative to the working directory, as in a snakemake run
    monkeypatch.chdir(project_root)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "panel.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_panel_defines_the_release_phenotype_metrics():
    panel = load_panel(Path(DEMO_PANEL))
    names = [m.name for m in panel.metrics]
    assert names[:6] == [
        "viability_pct",
        "cd3_pct_live",
        "car_pct_cd3",
        "cd4_pct_car",
        "cd8_pct_car",
        "cd4_cd8_ratio",
    ]
    car = next(m for m in panel.metrics if m.name == "car_pct_cd3")
    assert car.numerator == ("Cells", "Singlets", "Live", "CD3pos", "CARpos")
    assert car.denominator == ("Cells", "Singlets", "Live", "CD3pos")
    assert car.min_events == 100 and car.unit == "%"
    assert panel.template().kind == "gatingml"


def test_a_metric_naming_a_population_the_template_lacks_is_refused(tmp_path: Path):
    path = _write(
        tmp_path,
        f"name: x\nassay: phenotype\ngating_template: {TEMPLATE}\n"
        "metrics:\n  car_pct: {numerator: Cells/Singlets/Live/CD3pos/CAR+, denominator: Cells}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_panel(path)
    assert str(err.value) == (
        f"{path}: metric 'car_pct' names population 'Cells/Singlets/Live/CD3pos/CAR+', "
        "which car_t_phenotype.gatingml.xml does not define."
    )


def test_a_cluster_job_skips_the_template_check_but_not_the_panels_own(tmp_path: Path):
    # what a SLURM job step's parse of the workflow does: the submitting process checked the template
    path = _write(
        tmp_path,
        f"name: x\nassay: phenotype\ngating_template: {TEMPLATE}\n"
        "metrics:\n  car_pct: {numerator: Cells/Singlets/Live/CD3pos/CAR+, denominator: Cells}\n",
    )
    panel = load_panel(path, check_template=False)
    assert [m.name for m in panel.metrics] == ["car_pct"]
    with pytest.raises(ConfigError, match="names population 'Cells/Singlets/Live/CD3pos/CAR\\+'"):
        load_panel(path)
    schema_error = _write(tmp_path, f"name: x\nassay: phenotyp\ngating_template: {TEMPLATE}\nmetrics: {{}}\n")
    with pytest.raises(ConfigError, match="'phenotyp' is not one of"):
        load_panel(schema_error, check_template=False)


def test_a_percent_without_denominator_is_refused(tmp_path: Path):
    path = _write(
        tmp_path,
        f"name: x\nassay: phenotype\ngating_template: {TEMPLATE}\nmetrics:\n  v: {{numerator: Cells}}\n",
    )
    with pytest.raises(ConfigError, match=r"metrics → v: a percent metric needs a denominator population"):
        load_panel(path)


def test_schema_problems_name_the_file_and_the_key(tmp_path: Path):
    path = _write(
        tmp_path,
        f"name: x\nassay: phenotyp\ngating_template: {TEMPLATE}\nmetrics:\n  v: {{numerator: Cells}}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_panel(path)
    assert str(err.value).startswith(
        f"{path}, assay: 'phenotyp' is not one of phenotype, potency, microbial_flow"
    )


def test_a_missing_gating_template_is_named(tmp_path: Path):
    path = _write(
        tmp_path,
        "name: x\nassay: phenotype\ngating_template: nowhere.xml\n"
        "metrics:\n  c: {numerator: A, kind: count}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_panel(path)
    assert (
        str(err.value)
        == f"{path}: its gating template cannot be used: nowhere.xml: gating template not found."
    )


def test_a_missing_panel_file_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"panel\.yaml: file not found"):
        load_panel(tmp_path / "panel.yaml")
