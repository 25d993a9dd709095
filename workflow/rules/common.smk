# The only place that reads the configuration: config.yaml, the lot and unit sheets, the
# specifications and the flow panels are validated here, before any job runs.
import os
import re
import shlex
import sys
from pathlib import Path

from rapidrelease.config.run import run_config_from_dict, unmeasured_metric_problems
from rapidrelease.config.schemas import SAFE_ID_PATTERN
from rapidrelease.config.vocabulary import FLOW_ASSAYS, READS_ASSAYS
from rapidrelease.errors import ConfigError
from rapidrelease.flow.panel import load_panel

# The command that started the run, for each lot's audit block: jobs inherit the environment (also
# through sbatch), and a job's own snakemake process must not replace it with its internal command.
os.environ.setdefault("RAPIDRELEASE_RUN_COMMAND", shlex.join(sys.argv))
# and the workflow's own folder, whose git commit the audit block records (the working directory
# may be a site's folder outside the checkout)
os.environ.setdefault("RAPIDRELEASE_WORKFLOW_DIR", str(workflow.basedir))


def _refuse(problem):
    # One plain message, no traceback: the configuration is refused before any job runs.
    sys.stderr.write(f"rapidrelease: the configuration is refused.\n{problem}\n")
    raise SystemExit(1)


try:
    RUN = run_config_from_dict(config, source=Path(workflow.configfiles[0]))
    # Each cluster job parses the workflow again (twice under SLURM): it checks the panels' files
    # only in the main process, which checked them before submitting anything.
    PANELS = {}
    for unit in RUN.units:
        if unit.assay in FLOW_ASSAYS and unit.template is not None:
            if unit.template in PANELS:
                continue
            try:
                PANELS[unit.template] = load_panel(
                    unit.template, check_template=workflow.is_main_process
                )
            except ConfigError as problem:
                # name the sheet and the first unit that uses the panel, so the lab knows which row to fix
                raise ConfigError(
                    f"{RUN.settings['units']}, column 'template' of lot {unit.lot_id} unit "
                    f"{unit.unit_id}: {problem}"
                ) from None
    # an attribute whose metric no panel reports could never be judged: refused, not INCONCLUSIVE forever
    unmeasured = unmeasured_metric_problems(
        RUN,
        {
            template: [m.name for m in panel.metrics]
            + (["microbial_call", "microbial_lod_per_ml"] if panel.detection else [])
            for template, panel in PANELS.items()
        },
    )
    if unmeasured:
        raise ConfigError("\n".join(unmeasured))
except ConfigError as problem:
    _refuse(problem)

RESULTS = str(RUN.results_dir)
# Snakemake benchmark files of the measuring jobs, beside logs/: the lot's timeline reads each job's
# start and end from them (rapidrelease.release.timeline).
BENCHMARKS = "benchmarks"
REFERENCE = RUN.reference
CLASSIFY = RUN.classify
# The k-mer index: the configured prebuilt folder, or built once from the FASTA files (rule
# build_reference_index) under resources/, as the model workflows keep their genome indices.
REFDB = str(REFERENCE.index) if REFERENCE.index is not None else "resources/refdb"

# Rules run the rapidrelease command. Under --sdm conda it comes from the workflow's own checkout;
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
else:
    # each rule's environment (envs/*.yaml) holds the third-party packages only; `rapidrelease` is a
    # shell function running the package from scripts/, put on PYTHONPATH here because Snakemake
    # clears PYTHONPATH for conda jobs (braces doubled: Snakemake formats the prefix)
    _scripts = Path(workflow.basedir).parent / "scripts"
    shell.prefix(
        f"set -euo pipefail; export PYTHONPATH={shlex.quote(str(_scripts))}; "
        'rapidrelease() {{ python -m rapidrelease "$@"; }}; '
    )

_ID = SAFE_ID_PATTERN.removeprefix("^").removesuffix("$")


def sequenced_folder_pattern():
    """The regex of "<lot>/units/<unit>" for exactly the sheet's sequencing units.

    Snakemake copies a wildcard's constraint into every file pattern that uses it and scans that
    text for each job, so the regex is kept short: by unit id alone when no unit id names a
    sequencing unit in one lot and another assay in another (sites name a lot's units alike in
    every lot), which keeps building the DAG linear in the number of lots; by lot and unit otherwise.
    """
    sequenced = {u.unit_id for u in RUN.units if u.assay in READS_ASSAYS}
    if not sequenced:
        return "(?!)"
    if sequenced.isdisjoint(
        u.unit_id for u in RUN.units if u.assay not in READS_ASSAYS
    ):
        ids = "|".join(re.escape(unit_id) for unit_id in sorted(sequenced))
        return f"{_ID}/units/(?:{ids})"
    return "|".join(
        f"{re.escape(u.lot_id)}/units/{re.escape(u.unit_id)}"
        for u in RUN.units
        if u.assay in READS_ASSAYS
    )


wildcard_constraints:
    lot=_ID,
    unit=_ID,
    part=r"[1-9][0-9]*",
    # a sequencing unit's folder, "<lot>/units/<unit>": only the units the sheet lists as sequenced,
    # so that call_reads_unit, not measure_unit, writes their metrics.json
    sequenced=sequenced_folder_pattern(),


def get_unit(wildcards):
    return next(u for u in RUN.units_of(wildcards.lot) if u.unit_id == wildcards.unit)


def get_unit_inputs(wildcards):
    """The unit's data file, its control tubes' files and panel (with its gating template) when they exist.

    A missing data file is not an input snakemake would refuse the whole run for: the measuring step
    records it as this unit's error, and only this lot becomes INCONCLUSIVE.
    """
    unit = get_unit(wildcards)
    files = {}
    if unit.path is not None and unit.path.is_file():
        files["data"] = str(unit.path)
    controls = [str(c.path) for c in get_flow_controls(unit) if c.path.is_file()]
    if controls:
        files["controls"] = controls
    if unit.template is not None and unit.template.is_file():
        files["panel"] = str(unit.template)
        panel = PANELS.get(unit.template)
        if panel is not None and panel.template_path.is_file():
            files["gating_template"] = str(panel.template_path)
    return files


def get_flow_controls(unit):
    """The lot's other units of the unit's assay and panel whose role the panel's thresholds or
    metrics read (the unstimulated tube, FMOs, the target-only or sterile-medium control).
    """
    panel = PANELS.get(unit.template)
    roles = panel.control_roles() if panel is not None else set()
    return [
        u
        for u in RUN.units_of(unit.lot_id)
        if u.unit_id != unit.unit_id
        and (u.assay, u.template) == (unit.assay, unit.template)
        and u.role in roles
    ]


def get_control_arguments(wildcards):
    """measure's options for the unit's own stain and volume and for each control tube."""
    unit = get_unit(wildcards)
    words = []
    if unit.stain is not None:
        words += ["--stain", unit.stain]
    if unit.volume_ul is not None:
        words += ["--volume-ul", str(unit.volume_ul)]
    for control in get_flow_controls(unit):
        words += ["--control", control.role, control.unit_id, str(control.path)]
        if control.stain is not None:
            words += ["--control-stain", control.unit_id, control.stain]
        if control.volume_ul is not None:
            words += ["--control-volume-ul", control.unit_id, str(control.volume_ul)]
    return " ".join(shlex.quote(word) for word in words)


def get_sequenced_unit(wildcards):
    lot, unit = wildcards.sequenced.split("/units/")
    return next(u for u in RUN.units_of(lot) if u.unit_id == unit)


def get_read_files(unit):
    """The unit's read files as the sheet gives them (R1, and R2 when paired)."""
    return [str(p) for p in (unit.path, unit.path2) if p is not None]


def existing_read_files(unit):
    return [p for p in get_read_files(unit) if Path(p).is_file()]


def get_classify_inputs(wildcards):
    """The index and those of the unit's read files that exist.

    As for FCS files, a missing read file does not stop the run: classification records it as the
    unit's error and only this lot becomes INCONCLUSIVE.
    """
    return {"db": REFDB, "reads": existing_read_files(get_unit(wildcards))}


def get_gather_inputs(wildcards):
    """The unit's classification parts, the index, and its read files that exist.

    The read files are listed here too, although only the parts are read, so that a read file that
    arrives or changes after the unit was gathered (its parts are temporary) classifies it again.
    """
    return {
        "parts": expand(
            f"{RESULTS}/{wildcards.sequenced}/parts/{{part}}.npz",
            part=range(1, CLASSIFY.parts + 1),
        ),
        "db": REFDB,
        "reads": existing_read_files(get_sequenced_unit(wildcards)),
    }


def get_call_inputs(wildcards):
    """The unit's gathered reads, those of its lot's controls of the same assay and library, the
    index (for the taxonomy and the minimizers each taxon holds) and the configuration.
    """
    unit = get_sequenced_unit(wildcards)
    controls = [
        u
        for u in RUN.units_of(unit.lot_id)
        if (u.assay, u.library) == (unit.assay, unit.library)
        and u.role in ("negative_control", "positive_control")
    ]
    folders = [f"{RESULTS}/{u.lot_id}/units/{u.unit_id}" for u in [unit, *controls]]
    return {
        "reads": [f"{folder}/reads.json" for folder in folders],
        "taxa": [f"{folder}/taxa.parquet" for folder in folders],
        "db": REFDB,
        "config": get_config_files(wildcards),
    }


def reference_megabases():
    """Megabases of the reference FASTA, estimated from file sizes (gzip about 1:4)."""
    total = sum(
        p.stat().st_size * (4 if p.suffix == ".gz" else 1) for p in REFERENCE.fasta
    )
    return total / 1e6


def index_megabytes():
    """Size of the k-mer index (mapped into memory by every classification job)."""
    if REFERENCE.index is None:
        # measured: 25.4 MB for the 29.2-Mb default panel
        return 0.9 * reference_megabases()
    return sum(p.stat().st_size for p in REFERENCE.index.glob("*.npy")) / 1e6


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


def get_lot_kreports(wildcards):
    return [
        f"{RESULTS}/{wildcards.lot}/units/{u.unit_id}/reads.kreport"
        for u in RUN.units_of(wildcards.lot)
        if u.assay in READS_ASSAYS
    ]


def get_final_output():
    lots = sorted(RUN.lots)
    per_lot = [
        f"{RESULTS}/{lot}/{name}"
        for lot in lots
        for name in ("release.json", "report.html", "multiqc")
    ]
    return per_lot + [f"{RESULTS}/index.html"]
