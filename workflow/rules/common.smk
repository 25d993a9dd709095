# The only place that reads the configuration: config.yaml, the lot and unit sheets, the
# specifications and the flow panels are validated here, before any job runs.
import shlex
import sys
from pathlib import Path

from rapidrelease.errors import ConfigError
from rapidrelease.flow.panel import load_panel
from rapidrelease.release.config import run_config_from_dict
from rapidrelease.release.schemas import SAFE_ID_PATTERN


def _refuse(problem):
    # One plain message, no traceback: the configuration is refused before any job runs.
    sys.stderr.write(f"rapidrelease: the configuration is refused.\n{problem}\n")
    raise SystemExit(1)


try:
    RUN = run_config_from_dict(config, source=Path(workflow.configfiles[0]))
    PANELS = {
        unit.template: load_panel(unit.template)
        for unit in RUN.units
        if unit.assay in ("phenotype", "potency", "microbial_flow")
        and unit.template is not None
    }
except ConfigError as problem:
    _refuse(problem)

RESULTS = str(RUN.results_dir)

# Rules run the rapidrelease command. Under --sdm conda it comes from each rule's environment;
# otherwise from the environment snakemake itself runs in, whose bin folder every job's shell puts
# first on PATH (that environment need not be activated, e.g. `.venv/bin/snakemake`).
if "conda" not in {
    str(m).lower() for m in workflow.deployment_settings.deployment_method
}:
    _bin = Path(sys.executable).parent
    if not (_bin / "rapidrelease").exists():
        _refuse(
            f"rapidrelease is not installed beside the snakemake that runs this workflow ({_bin}); "
            "install it there (see README.md) or run with --sdm conda."
        )
    shell.prefix(f'set -euo pipefail; export PATH={shlex.quote(str(_bin))}:"$PATH"; ')

_ID = SAFE_ID_PATTERN.removeprefix("^").removesuffix("$")


wildcard_constraints:
    lot=_ID,
    unit=_ID,


def get_unit(wildcards):
    return next(u for u in RUN.units_of(wildcards.lot) if u.unit_id == wildcards.unit)


def get_unit_inputs(wildcards):
    """The unit's data file and panel (with its gating template) when they exist.

    A missing data file is not an input snakemake would refuse the whole run for: the measuring step
    records it as this unit's error, and only this lot becomes INCONCLUSIVE.
    """
    unit = get_unit(wildcards)
    files = {}
    if unit.path is not None and unit.path.is_file():
        files["data"] = str(unit.path)
    if unit.template is not None and unit.template.is_file():
        files["panel"] = str(unit.template)
        panel = PANELS.get(unit.template)
        if panel is not None and panel.template_path.is_file():
            files["gating_template"] = str(panel.template_path)
    return files


def get_lot_unit_results(wildcards):
    return [
        f"{RESULTS}/{wildcards.lot}/units/{u.unit_id}/metrics.json"
        for u in RUN.units_of(wildcards.lot)
    ]


def get_lot_unit_dirs(wildcards):
    return [
        f"{RESULTS}/{wildcards.lot}/units/{u.unit_id}"
        for u in RUN.units_of(wildcards.lot)
    ]


def get_config_files(wildcards):
    """Files whose change must re-evaluate every lot: config.yaml, both sheets, the specifications."""
    files = [str(f) for f in workflow.configfiles]
    for key in ("lots", "units", "specs"):
        files.append(str(RUN.settings[key]))
    return files


def get_final_output():
    lots = sorted(RUN.lots)
    return [f"{RESULTS}/{lot}/release.json" for lot in lots] + [
        f"{RESULTS}/{lot}/report.html" for lot in lots
    ]
