# The only place that reads the configuration: config.yaml, the lot and unit sheets, the
# specifications and the flow panels are validated here, before any job runs. Which controls a unit
# is measured against and where its results go are the package's (RunConfig.controls_of, unit_dir).
import atexit
import os
import shlex
import sys
from pathlib import Path

from rapidrelease.config.run import MEASURED_DIR, run_config_from_dict
from rapidrelease.config.schemas import SAFE_ID_PATTERN
from rapidrelease.config.vocabulary import READS_ASSAYS
from rapidrelease.errors import ConfigError
from rapidrelease.fingerprints import Fingerprints
from rapidrelease.flow.panel import load_run_panels
from rapidrelease.gating.compiled import use_template_cache
from rapidrelease.snakemake_scheduler import keep_one_reevaluation_pending

# Snakemake's scheduler would add a timed round per second for every job finished while others
# wait, for the rest of the run (quadratic in the run's length); keep one pending.
keep_one_reevaluation_pending()

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
    # the panels' templates are checked from the run's compiled-template cache once a job wrote it,
    # so that planning the DAG need not import FlowKit (rapidrelease.gating.compiled); planning only
    # reads it: a dry run, or a configuration refused below, leaves no results folder behind
    use_template_cache(RUN.results_dir / MEASURED_DIR / "templates", write=False)
    # Each cluster job parses the workflow again (twice under SLURM): it checks the panels' files
    # only in the main process, which checked them before submitting anything.
    PANELS = load_run_panels(RUN, check_template=workflow.is_main_process)
except ConfigError as problem:
    _refuse(problem)

CONFIG_FILE = workflow.configfiles[0]
# Every job gets the SHA-256 of the files it reads as a parameter, so that a file replaced by other
# bytes reruns it whatever the file's time (cp -p, rsync -t, touch -d); digests are cached by stat.
FINGERPRINTS = Fingerprints(Path(".snakemake") / "rapidrelease" / "fingerprints.json")
atexit.register(FINGERPRINTS.save)
RESULTS = str(RUN.results_dir)
# Snakemake benchmark files of the measuring jobs: the lot's timeline reads each job's start and
# end from them (rapidrelease.release.timeline).
BENCHMARKS = "benchmarks"
CLASSIFY = RUN.classify
# The k-mer index: the configured prebuilt folder, or built once from the FASTA files (rule
# build_reference_index) under resources/, as the model workflows keep their genome indices.
REFDB = str(RUN.reference.index or "resources/refdb")

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


wildcard_constraints:
    lot=SAFE_ID_PATTERN.removeprefix("^").removesuffix("$"),
    unit=SAFE_ID_PATTERN.removeprefix("^").removesuffix("$"),
    part=r"[1-9][0-9]*",
    key=r"[0-9a-f]{16}",


def get_unit(wildcards):
    return RUN.unit(wildcards.lot, wildcards.unit)


def existing(paths):
    """The paths that exist now. A missing data file is no reason to refuse the whole run: the stage
    records it as its unit's error, and only that lot becomes INCONCLUSIVE."""
    return [str(p) for p in paths if p is not None and Path(p).is_file()]


def get_flow_inputs(wildcards):
    """The tube's FCS file, its control tubes' files, its panel and the panel's gating template."""
    unit = get_unit(wildcards)
    panel = PANELS.get(unit.template)
    return existing(
        [
            unit.path,
            *(c.path for c in RUN.controls_of(unit)),
            unit.template,
            panel.template_path if panel is not None else None,
        ]
    )


def get_unit_settings(wildcards):
    """A parameter: only this unit's jobs rerun when what the configuration says of it changes."""
    return RUN.settings_digest(get_unit(wildcards))


def digest_of(get_sources):
    """A params function: the content digest of the source files ``get_sources(wildcards)`` names.
    Files other jobs write are left to their times: a digest read before they are rewritten would
    never match again."""
    return lambda wildcards: FINGERPRINTS.of(get_sources(wildcards))


def get_measured_unit(wildcards):
    """The first unit whose reads are measured under the job's key (a run's controls are listed by
    many lots and measured once)."""
    return RUN.measured_unit(wildcards.key)


def get_read_files(wildcards):
    unit = get_measured_unit(wildcards)
    return existing([unit.path, unit.path2])


def get_classify_parts(wildcards):
    """Jobs the unit's reads are classified in: one per classify.part_mb of its files, at most
    classify.parts (sizes only: the DAG never reads a read file)."""
    unit = get_measured_unit(wildcards)
    return CLASSIFY.parts_for([unit.path, unit.path2])


def get_reference_files(wildcards):
    """The FASTA files, taxonomy and sequence map the index is built from."""
    reference = RUN.reference
    return [*reference.fasta, reference.taxonomy, reference.seqid2taxid]


def get_gather_inputs(wildcards):
    """The unit's classification parts, the index and its read files.

    The read files are listed too, although only the parts are read, so that a read file that
    arrives or changes after the unit was gathered (its parts are temporary) classifies it again.
    """
    folder = f"{RESULTS}/{MEASURED_DIR}/reads/{wildcards.key}"
    parts = get_classify_parts(wildcards)
    return {
        "parts": [f"{folder}/parts/{i}.npz" for i in range(1, parts + 1)],
        "db": REFDB,
        "reads": get_read_files(wildcards),
    }


def get_call_inputs(wildcards):
    """The gathered reads of the unit and its controls (measured once per run, shared by the lots
    listing them), the index, and the lab's LOD table if any."""
    unit = get_unit(wildcards)
    folders = [RUN.measured_dir(u) for u in (unit, *RUN.controls_of(unit))]
    inputs = {
        "gathered": [
            f"{folder}/{name}"
            for folder in folders
            for name in ("reads.json", "taxa.parquet")
        ],
        "db": REFDB,
    }
    if RUN.detection.lod_table is not None:
        inputs["lod_table"] = RUN.detection.lod_table
    return inputs


def get_lot_records(wildcards):
    """Every unit record the lot's decision reads."""
    return [str(RUN.record_path(u)) for u in RUN.units_of(wildcards.lot)]


def get_lot_signatures(wildcards):
    """The lot's signature file once `rapidrelease sign` wrote one (the report lists its signatures)."""
    return existing([f"{RESULTS}/{wildcards.lot}/signatures.jsonl"])


def get_lot_kreports(wildcards):
    """The kreports of the lot's sequencing units, by unit id (gathered once per run)."""
    units = RUN.units_of(wildcards.lot)
    return {
        u.unit_id: f"{RUN.measured_dir(u)}/reads.kreport"
        for u in units
        if u.assay in READS_ASSAYS
    }


def get_config_files(wildcards):
    """Files whose change must re-evaluate every lot: config.yaml, both sheets, the specifications."""
    return [
        *workflow.configfiles,
        *(RUN.settings[key] for key in ("lots", "units", "specs")),
    ]


def get_archived_releases(wildcards):
    """The archive's earlier decisions (config.yaml trends.archive), so that the index is made
    again when one is added or changed; none when no archive is configured."""
    folder = RUN.settings.get("trends", {}).get("archive")
    if not folder:
        return []
    return sorted(str(path) for path in Path(folder).glob("*/release.json"))


def get_final_output():
    outputs = ("release.json", "release.csv", "report.html", "multiqc")
    lots = sorted(RUN.lots)
    return [f"{RESULTS}/{lot}/{name}" for lot in lots for name in outputs] + [
        f"{RESULTS}/index.html",
        f"{RESULTS}/releases.csv",
    ]
