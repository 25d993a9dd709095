"""The ``rapidrelease`` command: one subcommand per pipeline stage.

Every stage the Snakemake workflow runs is a subcommand here, so a person can run and debug it
alone. A user-facing failure is printed as one line (``rapidrelease: <sentence>``) on stderr with
exit status 1; a traceback is never the user's error message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rapidrelease import __version__
from rapidrelease.errors import ConfigError, RapidReleaseError

if TYPE_CHECKING:  # the stages are imported by the subcommand that runs them, not by every command
    from rapidrelease.config.run import RunConfig, Unit

# Each stage computes in one thread (the classifier's --threads are processes), and Snakemake gives
# a job the cores its rule declares. NumPy's OpenBLAS would start a thread per core of the machine,
# which spin after each product: 0.35 of a sequencing call's 1.1 CPU s on two cores, more on a node
# with dozens. Set before any stage imports NumPy; a value the caller set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_Subparsers = "argparse._SubParsersAction[argparse.ArgumentParser]"

__all__ = ["main", "build_parser"]


def _cmd_fcs_info(args: argparse.Namespace) -> int:
    from rapidrelease.fcs.reader import describe_fcs, read_fcs

    failed = 0
    for path in args.files:
        try:
            fcs = read_fcs(Path(path))
        except RapidReleaseError as exc:
            print(f"rapidrelease: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(json.dumps(describe_fcs(fcs), ensure_ascii=False))
    return 1 if failed else 0


def _cmd_gate(args: argparse.Namespace) -> int:
    from rapidrelease.gating.io import gate_files

    failures = gate_files(
        template_path=Path(args.template),
        fcs_paths=[Path(p) for p in args.files],
        out_dir=Path(args.out),
        events_out=Path(args.events_out) if args.events_out else None,
        chunk_size=args.chunk_size,
        compensation=Path(args.compensation) if args.compensation else None,
    )
    return 1 if failures else 0


def _configured_unit(args: argparse.Namespace, assays: Sequence[str]) -> tuple[RunConfig, Unit]:
    """The run configuration and the unit ``--lot``/``--unit`` name in it, of one of ``assays``."""
    from rapidrelease.config.run import load_run_config

    run = load_run_config(Path(args.config))
    unit = run.unit(args.lot, args.unit)
    if unit.assay not in assays:
        raise ConfigError(
            f"{run.settings['units']}: unit {unit.unit_id} of lot {unit.lot_id} is a {unit.assay} unit, "
            f"not one of {', '.join(assays)}; see `rapidrelease {args.command} --help`."
        )
    return run, unit


def _cmd_measure(args: argparse.Namespace) -> int:
    from rapidrelease.config.vocabulary import FLOW_ASSAYS
    from rapidrelease.flow.measure import measure_unit

    measure_unit(*_configured_unit(args, FLOW_ASSAYS))
    return 0


def _cmd_gather(args: argparse.Namespace) -> int:
    from rapidrelease.config.vocabulary import READS_ASSAYS
    from rapidrelease.reads.summary import gather_unit

    if args.key is not None:
        from rapidrelease.config.run import load_run_config

        # the workflow names the files by key: which lot lists them first is no input of the job
        run = load_run_config(Path(args.config))
        unit = run.measured_unit(args.key)
    elif args.unit is None:
        raise ConfigError("gather --lot needs --unit: which unit of the lot to gather.")
    else:
        run, unit = _configured_unit(args, READS_ASSAYS)
    gather_unit(run, unit, Path(args.db), [Path(p) for p in args.parts])
    return 0


def _cmd_call(args: argparse.Namespace) -> int:
    from rapidrelease.config.vocabulary import READS_ASSAYS
    from rapidrelease.sterility.calls import call_unit

    run, unit = _configured_unit(args, READS_ASSAYS)
    call_unit(run, unit, Path(args.db))
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    from rapidrelease.watch import watch

    watch(
        Path(args.inbox),
        config_path=Path(args.config),
        once=args.once,
        interval=args.interval,
        stable_seconds=args.stable_seconds,
        cores=args.cores,
        snakemake_args=args.snakemake_arg,
        snakefile=Path(args.snakefile) if args.snakefile else None,
        state_dir=Path(args.state) if args.state else None,
    )
    return 0


def _cmd_validate_config(args: argparse.Namespace) -> int:
    from rapidrelease.config.run import describe_run_config, load_run_config

    print(describe_run_config(load_run_config(Path(args.config))))
    return 0


def _cmd_validate_method(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rapidrelease.config.run import DetectionSettings, load_run_config
    from rapidrelease.validation.background_cv import estimate_background_cv, read_negative_controls
    from rapidrelease.validation.summary import ValidationSettings, validation_summary

    for name in ("lots", "curve_lots", "tubes"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 ({getattr(args, name)} given).")
    detection = load_run_config(Path(args.config)).detection if args.config else DetectionSettings()
    if args.background_cv is not None:
        detection = replace(detection, background_cv=args.background_cv)
    measured = None
    if args.ntc:
        counts, fragments, _ = read_negative_controls([Path(folder) for folder in args.ntc])
        measured = estimate_background_cv(counts, fragments, seed=args.seed)
    settings = ValidationSettings(
        seed=args.seed, lots=args.lots, curve_lots=args.curve_lots, tubes=args.tubes, detection=detection
    )
    print(validation_summary(settings, measured))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from rapidrelease.config.run import load_run_config
    from rapidrelease.release.decision import evaluate_lot_files

    run = load_run_config(Path(args.config))
    if args.lot not in run.lots:
        raise ConfigError(f"{run.settings['lots']}: has no lot {args.lot!r}.")
    evaluate_lot_files(
        run,
        lot_id=args.lot,
        out_path=Path(args.out),
        benchmarks_dir=None if args.benchmarks is None else Path(args.benchmarks),
    )
    if args.csv:
        from rapidrelease.records import read_release
        from rapidrelease.report.release_csv import write_release_csv

        # from the sealed file as written, so that the CSV can never say what release.json does not
        write_release_csv(read_release(Path(args.out)), Path(args.csv))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from rapidrelease.config.run import load_run_config
    from rapidrelease.report.html import write_lot_report

    run = load_run_config(Path(args.config))
    if args.lot not in run.lots:
        raise ConfigError(f"{run.settings['lots']}: has no lot {args.lot!r}.")
    write_lot_report(
        release_path=Path(args.release),
        unit_dirs={u.unit_id: run.unit_dir(u) for u in run.units_of(args.lot)},
        out_path=Path(args.out),
    )
    if args.pdf:
        from rapidrelease.report.pdf import print_pdf

        print_pdf(Path(args.out), Path(args.out).with_suffix(".pdf"))
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from rapidrelease.config.run import load_run_config
    from rapidrelease.report.index import write_index

    run = load_run_config(Path(args.config))
    archive = write_index(
        [Path(p) for p in args.releases],
        Path(args.out),
        run.settings.get("trends"),
        csv_path=Path(args.csv) if args.csv else None,
    )
    # the index shows these too; the log keeps them with the run
    for sentence in (*archive.refused, *archive.superseded):
        print(sentence, file=sys.stderr)
    return 0


def _cmd_share_export(args: argparse.Namespace) -> int:
    from rapidrelease.config.run import load_run_config
    from rapidrelease.reads.taxonomy import Taxonomy
    from rapidrelease.share.export import ExportSettings, export_package, read_key_file, release_files

    run = load_run_config(Path(args.config))
    key = read_key_file(Path(args.key_file)) if args.key_file else None
    paths = [Path(p) for p in args.releases] if args.releases else release_files(run, not args.no_archive)
    taxonomy = Taxonomy.from_tsv(run.reference.taxonomy) if run.reference.taxonomy is not None else None
    manifest = export_package(
        run,
        paths,
        Path(args.out),
        ExportSettings(min_lots=args.min_lots, epsilon=args.epsilon, lot_rows=args.lot_rows, key=key),
        taxonomy,
    )
    print(f"{manifest.parent}: a de-identified package of {len(paths)} decided lots ({manifest})")
    return 0


def _cmd_share_combine(args: argparse.Namespace) -> int:
    from rapidrelease.share.combine import combine_packages

    margins = {}
    for text in args.margin:
        name, _, value = text.partition("=")
        try:
            margins[name] = float(value)
        except ValueError:
            raise ConfigError(f"--margin {text!r}: write it as ATTRIBUTE=NUMBER, e.g. viability=5.") from None
    benchmark = combine_packages([Path(p) for p in args.packages], Path(args.out), margins, args.alpha)
    print(
        f"{Path(args.out) / 'benchmark.html'}: {len(benchmark.programs)} programs, "
        f"{len(benchmark.groups)} platform attributes pooled"
    )
    return 0


def _cmd_multiqc(args: argparse.Namespace) -> int:
    from rapidrelease.report.multiqc import write_multiqc_files

    # UNIT=PATH names the unit a kreport is of; a plain path is named after its folder
    named = [k.partition("=") for k in args.kreports]
    kreports = {unit or Path(path).parent.name: Path(path) for unit, _, path in named}
    write_multiqc_files(Path(args.release), kreports, Path(args.out))
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    from rapidrelease.release.signatures import sign_lot

    signature, path = sign_lot(
        Path(args.results), args.lot, args.reviewer, args.meaning, comment=args.comment, role=args.role
    )
    print(
        f"{signature.lot_id}: {signature.meaning} by {signature.reviewer} (account {signature.account}) "
        f"at {signature.signed_at}, release.json SHA-256 {signature.release.sha256}; recorded in {path}"
    )
    return 0


def _cmd_signatures(args: argparse.Namespace) -> int:
    from rapidrelease.release.signatures import SIGNATURES_FILE, read_signatures, signature_lines

    lot_dir = Path(args.results) / args.lot
    statuses = read_signatures(lot_dir / SIGNATURES_FILE, lot_dir / "release.json")
    if not statuses:
        print(f"{args.lot}: no signatures in {lot_dir / SIGNATURES_FILE}")
    for line in signature_lines(statuses):
        print(line)
    return 0


def _cmd_refdb_build(args: argparse.Namespace) -> int:
    import time

    from rapidrelease.reads.index_build import (
        build_index_within,
        default_memory_budget,
        parse_byte_size,
        process_rss,
    )
    from rapidrelease.reads.kmers import MinimizerSpec

    # timed here, not in the manifest: two builds of the same inputs must be the same index
    started = time.monotonic()
    chosen = {"k": args.k, "l": args.l, "spaced_positions": args.spaced}
    max_memory = parse_byte_size(args.max_memory) if args.max_memory else default_memory_budget()
    index = build_index_within(
        fasta_paths=[Path(p) for p in args.fasta],
        taxonomy_path=Path(args.taxonomy),
        out_dir=Path(args.out),
        # the whole process stays under --max-memory: what it holds already is not the build's
        memory_budget=max_memory - process_rss(),
        seqid2taxid_path=Path(args.seqid2taxid) if args.seqid2taxid else None,
        spec=MinimizerSpec(**{name: value for name, value in chosen.items() if value is not None}),
        mask_low_complexity=not args.no_masking,
        host_sample=args.host_sample,
        max_db_size=parse_byte_size(args.max_db_size) if args.max_db_size else None,
    )
    counts = index.manifest["counts"]
    print(
        f"{args.out}: {counts['minimizers']:,} minimizers of {counts['sequences']:,} sequences "
        f"({counts['bases']:,} bases), {counts['labels']:,} taxa labelled, "
        f"table {counts['table_bytes'] / 1e6:,.1f} MB "
        f"in {time.monotonic() - started:.2f} s"
    )
    return 0


def _cmd_refdb_info(args: argparse.Namespace) -> int:
    from rapidrelease.reads.index import load_index

    print(json.dumps(load_index(Path(args.db)).manifest, indent=2))
    return 0


def _cmd_classify(args: argparse.Namespace) -> int:
    from rapidrelease.reads.classify import ClassifyOptions, classify_reads
    from rapidrelease.reads.index import load_index

    reads = [Path(p) for p in args.reads]
    if args.paired and len(reads) not in (1, 2):
        raise ConfigError("--paired takes two read files (R1 and R2) or one interleaved BAM/CRAM.")
    if not args.paired and len(reads) != 1:
        raise ConfigError("give one read file, or two with --paired.")
    part = _part(args.part)
    if part != (0, 1) and not args.out_partial:
        raise ConfigError("--part needs --out-partial, where the part's totals are saved.")
    if not (args.out_report or args.out_partial):
        raise ConfigError("give --out-report (or --out-partial with --part).")
    try:
        index = load_index(Path(args.db))
        totals = classify_reads(
            index,
            reads[0],
            reads[1] if len(reads) == 2 else None,
            ClassifyOptions(confidence=args.confidence, min_hit_groups=args.min_hit_groups),
            report_path=Path(args.out_report) if args.out_report else None,
            reads_path=Path(args.out_reads) if args.out_reads else None,
            taxa_path=Path(args.out_taxa) if args.out_taxa else None,
            threads=args.threads,
            interleaved=args.paired and len(reads) == 1,
            part=part,
            count_distinct=bool(args.out_taxa or args.out_partial),
            cram_reference=Path(args.cram_reference) if args.cram_reference else None,
            progress=sys.stderr,
        )
    except RapidReleaseError as exc:
        if not args.out_partial:
            raise
        # in the workflow a bad read file is the unit's evidence, not a failed run: record it
        from rapidrelease.reads.parts import save_failed_part

        save_failed_part(Path(args.out_partial), str(exc))
        print(f"rapidrelease: {exc}", file=sys.stderr)
        return 0
    if args.out_partial:
        from rapidrelease.reads.parts import save_part

        save_part(Path(args.out_partial), totals, index)
    print(
        f"{totals.reads:,} reads: {totals.classified:,} classified "
        f"({100 * totals.classified / max(totals.reads, 1):.2f} %), {totals.too_short:,} shorter than k",
        file=sys.stderr,
    )
    return 0


def _part(text: str) -> tuple[int, int]:
    """``"2/4"`` → (1, 4): the 2nd of 4 parts."""
    try:
        which, parts = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--part takes I/N (e.g. 2/4), not {text!r}.") from None
    if not 1 <= which <= parts:
        raise ConfigError(f"--part {text}: I must be between 1 and N.")
    return which - 1, parts


def _cmd_simulate_demo(args: argparse.Namespace) -> int:
    from rapidrelease.synthetic.demo.simulate import write_demo_lots

    for path in write_demo_lots(
        Path(args.out), seed=args.seed, reference_dir=Path(args.reference), specs_path=Path(args.specs)
    ):
        print(path)
    return 0


# --- the parser: one function per subcommand ----------------------------------------------------


def _add_config_option(p: argparse.ArgumentParser) -> None:
    """--config: the configured run a stage works in."""
    p.add_argument(
        "--config",
        default="config/config.yaml",
        help="the run's config.yaml, naming the lot and unit sheets (default config/config.yaml)",
    )


def _add_unit_options(p: argparse.ArgumentParser) -> None:
    """--config, --lot and --unit: which unit of which configured run a stage works on."""
    _add_config_option(p)
    p.add_argument("--lot", required=True, help="the lot's lot_id in the lot sheet")
    p.add_argument("--unit", required=True, help="the unit's unit_id in the unit sheet, within the lot")


def _add_fcs_info(sub: _Subparsers) -> None:
    p = sub.add_parser("fcs-info", help="print one JSON object per FCS file (channels, events, hashes)")
    p.add_argument("files", nargs="+", metavar="FCS")
    p.set_defaults(func=_cmd_fcs_info)


def _add_gate(sub: _Subparsers) -> None:
    p = sub.add_parser("gate", help="gate FCS files with a GatingML 2.0 or FlowJo .wsp template")
    p.add_argument("--template", required=True, help="GatingML 2.0 XML or FlowJo 10 .wsp")
    p.add_argument("--out", required=True, help="folder for populations.tsv")
    p.add_argument("--events-out", help="folder for one Parquet file of per-event gate membership per sample")
    p.add_argument("--chunk-size", type=int, default=131_072, help="events gated per chunk (default 131072)")
    p.add_argument(
        "--compensation", help="spillover matrix file (CSV/TSV) to use instead of each file's $SPILLOVER"
    )
    p.add_argument("files", nargs="+", metavar="FCS")
    p.set_defaults(func=_cmd_gate)


def _add_measure(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "measure",
        help="measure a flow unit: gate its FCS file with its panel, against the lot's control tubes",
        description="Writes metrics.json, populations.tsv and gate_plots.json in "
        "<results>/<lot>/flow/<unit>/.",
    )
    _add_unit_options(p)
    p.set_defaults(func=_cmd_measure)


def _add_gather(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "gather",
        help="gather a sequencing unit's classification parts (kreport, per-taxon table, reads.json)",
        description="Writes reads.json, reads.kreport and taxa.tsv/.parquet in "
        "<results>/_measured/reads/<key>/, shared by every lot listing the unit's read files.",
    )
    _add_config_option(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--lot", help="the lot's lot_id in the lot sheet (with --unit)")
    which.add_argument(
        "--key", help="the key the read files are measured under (results/_measured/reads/<key>)"
    )
    p.add_argument("--unit", help="the unit's unit_id in the unit sheet, within the lot")
    p.add_argument("--db", required=True, help="the index the reads were classified against")
    p.add_argument("parts", nargs="+", metavar="PART", help="the unit's classification parts (.npz)")
    p.set_defaults(func=_cmd_gather)


def _add_call(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "call",
        help="call a sequencing unit's contaminants against its lot's controls",
        description="Writes metrics.json and calls.tsv in <results>/<lot>/reads/<unit>/.",
    )
    _add_unit_options(p)
    p.add_argument("--db", required=True, help="the index the reads were classified against")
    p.set_defaults(func=_cmd_call)


def _add_watch(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "watch", help="register complete lot deliveries from an inbox and run snakemake for them"
    )
    p.add_argument("--inbox", required=True, help="folder of lot deliveries (lot.tsv, units.tsv, data)")
    _add_config_option(p)
    p.add_argument("--once", action="store_true", help="scan once and exit (for cron or a systemd timer)")
    p.add_argument("--interval", type=float, default=300.0, help="seconds between scans (default 300)")
    p.add_argument(
        "--stable-seconds",
        type=float,
        default=60.0,
        help="a delivery's files must be unchanged this long before it is read (default 60)",
    )
    p.add_argument("--cores", type=int, default=1, help="snakemake --cores (default 1)")
    p.add_argument(
        "--state",
        help="the watcher's own folder for its state, lock and log, outside the inbox "
        "(default: .rapidrelease-watch beside the --config file)",
    )
    p.add_argument("--snakefile", help="the workflow (default: this installation's workflow/Snakefile)")
    p.add_argument(
        "--snakemake-arg",
        action="append",
        default=[],
        help="one more snakemake argument, e.g. --snakemake-arg=--profile=workflow/profiles/slurm",
    )
    p.set_defaults(func=_cmd_watch)


def _add_validate_config(sub: _Subparsers) -> None:
    p = sub.add_parser("validate-config", help="check config.yaml, the sheets and the specs before a run")
    _add_config_option(p)
    p.set_defaults(func=_cmd_validate_config)


def _add_validate_method(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "validate-method",
        help="print the method validation summary: the rules' operating characteristics by simulation",
        description=(
            "Simulate the release rules at stated settings and print what a QA reviewer files: the "
            "sequencing sterility calls' per-lot false-FAIL rate and detection curve with its LOD95, "
            "microbial flow's false-DETECTED rate and LOD95, potency's misclassification near its limit. "
            "The defaults take about 20 s of one core; raise --lots to 400 or more to show a false-FAIL rate "
            "of at most 1 %% with 95 %% confidence."
        ),
    )
    p.add_argument("--seed", type=int, default=17, help="seed of the simulation (default 17)")
    p.add_argument("--lots", type=int, default=100, help="sterile lots per sterility setting (default 100)")
    p.add_argument(
        "--curve-lots",
        type=int,
        default=30,
        help="lots per contaminant level of a detection curve (default 30)",
    )
    p.add_argument(
        "--tubes",
        type=int,
        default=20_000,
        help="tubes per microbial-flow level and potency cell (default 20000)",
    )
    p.add_argument(
        "--config", default=None, help="take the sequencing rule's settings from this config.yaml's detection"
    )
    p.add_argument("--background-cv", type=float, default=None, help="override detection.background_cv")
    p.add_argument(
        "--ntc",
        nargs="+",
        default=None,
        metavar="FOLDER",
        help=(
            "gathered negative-control unit folders (results/<lot>/<unit>, holding reads.json and "
            "taxa.parquet): estimate background_cv from them and show the false-FAIL rate at it"
        ),
    )
    p.set_defaults(func=_cmd_validate_method)


def _add_evaluate(sub: _Subparsers) -> None:
    p = sub.add_parser("evaluate", help="evaluate a lot's unit records against its specification")
    _add_config_option(p)
    p.add_argument("--lot", required=True, help="the lot's lot_id in the lot sheet")
    p.add_argument("--out", required=True, help="release.json to write")
    p.add_argument("--csv", help="release.csv to write too: one row per attribute, for a LIMS")
    p.add_argument(
        "--benchmarks", default=None, help="folder of the workflow's benchmark files, for the lot's timeline"
    )
    p.set_defaults(func=_cmd_evaluate)


def _add_report(sub: _Subparsers) -> None:
    p = sub.add_parser("report", help="write a lot's self-contained HTML report")
    _add_config_option(p)
    p.add_argument("--lot", required=True, help="the lot's lot_id in the lot sheet")
    p.add_argument("--release", required=True, help="the lot's release.json")
    p.add_argument("--out", required=True, help="report.html to write")
    p.add_argument(
        "--pdf",
        action="store_true",
        help="also print it to a PDF beside it (report.pdf) with headless Chromium: A4, each page "
        "headed with lot, product, status and page x of y",
    )
    p.set_defaults(func=_cmd_report)


def _add_index(sub: _Subparsers) -> None:
    p = sub.add_parser("index", help="write the lots index with trends across lots and sites")
    _add_config_option(p)
    p.add_argument("--out", required=True, help="index.html to write")
    p.add_argument("--csv", help="releases.csv to write too: every lot's attributes, for a LIMS")
    p.add_argument("releases", nargs="*", metavar="RELEASE_JSON")
    p.set_defaults(func=_cmd_index)


def _add_multiqc(sub: _Subparsers) -> None:
    p = sub.add_parser("multiqc", help="write a lot's MultiQC custom-content table and its units' kreports")
    p.add_argument("--release", required=True, help="the lot's release.json")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument(
        "kreports",
        nargs="*",
        metavar="KREPORT",
        help="UNIT=PATH of each sequencing unit's kreport (or <unit folder>/reads.kreport)",
    )
    p.set_defaults(func=_cmd_multiqc)


def _add_sign(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "sign",
        help="append an electronic signature of a lot's decision to <results>/<lot>/signatures.jsonl",
        description="Records the printed name, role, meaning, comment, UTC time, the OS account and host, "
        "and the SHA-256 of the lot's release.json and report.html; changes neither file. A signature "
        "is void once release.json changes.",
    )
    p.add_argument("--lot", required=True, help="the lot's lot_id")
    p.add_argument("--reviewer", required=True, help="the reviewer's printed name")
    # checked by the command, not by argparse, so that a wrong meaning is one sentence like every refusal
    p.add_argument("--meaning", required=True, help="reviewed, approved or rejected")
    p.add_argument("--role", help="the role the reviewer signs in, e.g. 'QA reviewer'")
    p.add_argument("--comment", help="a comment recorded with the signature")
    p.add_argument("--results", default="results", help="the results folder (default results)")
    p.set_defaults(func=_cmd_sign)


def _add_signatures(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "signatures", help="list a lot's signatures, each VALID or VOID against its release.json now"
    )
    p.add_argument("--lot", required=True, help="the lot's lot_id")
    p.add_argument("--results", default="results", help="the results folder (default results)")
    p.set_defaults(func=_cmd_signatures)


def _add_refdb(sub: _Subparsers) -> None:
    p = sub.add_parser("refdb", help="build or inspect a k-mer reference index")
    refdb = p.add_subparsers(dest="refdb_command", required=True, metavar="ACTION")
    b = refdb.add_parser("build", help="index FASTA sequences labelled with taxa")
    b.add_argument("--fasta", nargs="+", required=True, help="FASTA files (plain or .gz)")
    b.add_argument(
        "--taxonomy",
        required=True,
        help="taxonomy TSV (taxid, parent_taxid, rank, name, category) or nodes.dmp",
    )
    b.add_argument("--seqid2taxid", help="seqid<TAB>taxid map for headers without |kraken:taxid|N")
    b.add_argument("--out", required=True, help="index folder to write")
    # defaults left to MinimizerSpec, the one place that holds Kraken 2's
    b.add_argument("--k", type=int, help="k-mer length (default 35, as Kraken 2)")
    b.add_argument("--l", type=int, help="minimizer length (default 31, as Kraken 2)")
    b.add_argument("--spaced", type=int, help="spaced-seed positions (default 7, as Kraken 2)")
    b.add_argument("--no-masking", action="store_true", help="do not mask low-complexity sequence")
    b.add_argument(
        "--host-sample",
        type=int,
        default=1,
        metavar="N",
        help="keep one in N of the host's own minimizers (for a whole host genome; default 1: all)",
    )
    b.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="peak memory of the build, e.g. 12G or 500M; runs of minimizers are sorted and spilled "
        "to disk beside --out, then merged (default: half the memory available now)",
    )
    b.add_argument(
        "--max-db-size",
        metavar="SIZE",
        help="cap the table at about SIZE bytes (e.g. 2G) by keeping a hash-chosen fraction of the "
        "minimizers, as Kraken 2's option does; classification skips the others",
    )
    b.set_defaults(func=_cmd_refdb_build)
    i = refdb.add_parser("info", help="print an index's manifest")
    i.add_argument("db")
    i.set_defaults(func=_cmd_refdb_info)


def _add_classify(sub: _Subparsers) -> None:
    p = sub.add_parser("classify", help="classify reads against an index (Kraken 2 compatible outputs)")
    p.add_argument("--db", required=True, help="index folder (rapidrelease refdb build)")
    p.add_argument(
        "--paired", action="store_true", help="reads are pairs: R1 R2, or one interleaved BAM/CRAM"
    )
    p.add_argument("--confidence", type=float, default=0.0, help="confidence threshold 0–1 (default 0)")
    p.add_argument(
        "--min-hit-groups", type=int, default=2, help="minimum distinct minimizer hits (default 2)"
    )
    p.add_argument("--threads", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--out-report", help="kreport to write")
    p.add_argument("--out-reads", help="Kraken per-read table to write (.gz to compress)")
    p.add_argument("--out-taxa", help="per-taxon table (TSV, and Parquet beside it)")
    p.add_argument("--part", default="1/1", help="classify only part I of N of the batches (e.g. 2/4)")
    p.add_argument("--cram-reference", help="FASTA a CRAM was compressed against, when not embedded")
    p.add_argument("--out-partial", help="save this part's totals (.npz) for `rapidrelease gather`")
    p.add_argument("reads", nargs="+", metavar="READS")
    p.set_defaults(func=_cmd_classify)


def _add_simulate_demo(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "simulate-demo", help="write the synthetic demo lots (FCS 3.1, paired reads, template, truth)"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument(
        "--reference",
        default="resources/reference",
        help="the default reference panel the demo's reads are drawn from (default resources/reference)",
    )
    p.add_argument(
        "--specs",
        default="config/specs.yaml",
        help="specifications the demo's archived lots are decided against (default config/specs.yaml)",
    )
    p.set_defaults(func=_cmd_simulate_demo)


def _add_share(sub: _Subparsers) -> None:
    p = sub.add_parser("share", help="export de-identified release summaries, or combine programs' packages")
    share = p.add_subparsers(dest="share_command", required=True, metavar="ACTION")
    e = share.add_parser(
        "export", help="write a de-identified package of the decided lots (no product, site or lot)"
    )
    _add_config_option(e)
    e.add_argument(
        "--out", required=True, help="the package folder to write (new, empty or an earlier package)"
    )
    e.add_argument(
        "--releases",
        nargs="+",
        metavar="RELEASE_JSON",
        help="the decisions to export (default: results/<lot>/release.json of the configured lots and "
        "the archive of config.yaml trends.archive)",
    )
    e.add_argument("--no-archive", action="store_true", help="leave the archive's lots out")
    e.add_argument(
        "--min-lots", type=int, default=5, metavar="K", help="suppress groups of fewer lots (default 5)"
    )
    e.add_argument(
        "--epsilon", type=float, help="differential-privacy budget ε of the export (OpenDP Laplace noise)"
    )
    e.add_argument(
        "--lot-rows",
        action="store_true",
        help="add one row per lot (keyed-hash id, ISO week); needs --key-file",
    )
    e.add_argument("--key-file", help="the site's secret key (a file of ≥ 16 bytes) for keyed hashes")
    e.set_defaults(func=_cmd_share_export)
    c = share.add_parser("combine", help="verify packages and write the network benchmark page")
    c.add_argument("packages", nargs="+", metavar="PKG")
    c.add_argument(
        "--out", required=True, help="folder for benchmark.html, benchmark.parquet, benchmark.json"
    )
    c.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="ATTRIBUTE=NUMBER",
        help="equivalence margin of an attribute, in its unit (repeat per attribute)",
    )
    c.add_argument("--alpha", type=float, default=0.05, help="TOST significance level (default 0.05)")
    c.set_defaults(func=_cmd_share_combine)


_SUBCOMMANDS = (
    _add_fcs_info,
    _add_gate,
    _add_measure,
    _add_refdb,
    _add_classify,
    _add_gather,
    _add_call,
    _add_evaluate,
    _add_report,
    _add_index,
    _add_multiqc,
    _add_sign,
    _add_signatures,
    _add_share,
    _add_validate_config,
    _add_validate_method,
    _add_watch,
    _add_simulate_demo,
)
"""In the order of a run: read and gate, classify and call, decide, report; then the tools around it."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rapidrelease`` command."""
    parser = argparse.ArgumentParser(
        prog="rapidrelease",
        description="Release-candidate analytics for CAR-T lots (flow cytometry and contaminant reads).",
    )
    parser.add_argument("--version", action="version", version=f"rapidrelease {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RapidReleaseError as exc:
        print(f"rapidrelease: {exc}", file=sys.stderr)
        return 1
