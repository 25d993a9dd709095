"""config.yaml, lots.tsv and units.tsv: what a valid configuration yields and every way it is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from rapidrelease.config.run import (
    describe_run_config,
    load_run_config,
    run_config_from_dict,
)
from rapidrelease.errors import ConfigError

from support.configs import (
    CONFIG,
    LOTS,
    LOTS_HEADER,
    PANEL,
    SPECS,
    UNITS,
    UNITS_HEADER,
    sheet,
    write_project,
    write_sequenced_project,
)


def problems_of(config_path: Path) -> list[str]:
    """The problem lines of the ConfigError raised for ``config_path`` (the count header dropped)."""
    with pytest.raises(ConfigError) as caught:
        load_run_config(config_path)
    lines = str(caught.value).splitlines()
    return lines[1:] if len(lines) > 1 else lines


# ------------------------------------------------------------------------------------------ valid


def test_valid_configuration_yields_lots_units_and_specs(project: Path) -> None:
    run = load_run_config(write_project(project))
    assert list(run.lots) == ["DEMO-001", "DEMO-002"]
    lot = run.lots["DEMO-001"]
    assert (lot.product, lot.spec, lot.site) == ("CAR-T (test)", "SPEC-A", "SITE-A")
    assert lot.collected_at == datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    assert lot.collected_at.utcoffset() == timedelta(hours=1)
    assert run.deadline_hours == 24.0
    assert run.deadline_of("DEMO-001").isoformat() == "2026-11-25T08:30:00+01:00"
    assert run.results_dir == Path("results")
    unit = run.units_of("DEMO-001")[0]
    assert (unit.unit_id, unit.assay, unit.role) == ("PHENO", "phenotype", "test")
    assert unit.path == Path("data/DEMO-001.fcs")
    assert unit.path2 is None and unit.volume_ul is None
    assert unit.template == Path(PANEL)
    assert run.units_of("DEMO-002")[0].volume_ul == 50.0
    assert [a.name for a in run.specs["SPEC-A"].attributes] == ["viability", "car_of_cd3", "cd4_cd8_ratio"]


def test_data_files_and_panels_need_not_exist_at_config_time(project: Path) -> None:
    # The measuring step records a missing file for its own lot; the other lots still run.
    run = load_run_config(write_project(project))
    assert not Path("data/DEMO-001.fcs").exists()
    assert len(run.units) == 2


def test_relative_paths_are_relative_to_the_working_directory_not_the_config_file(project: Path) -> None:
    write_project(project)
    # Moving the config file elsewhere must not change where the sheets are looked for.
    (project / "elsewhere").mkdir()
    moved = project / "elsewhere" / "run.yaml"
    moved.write_text(CONFIG, encoding="utf-8")
    run = load_run_config(moved)
    assert set(run.lots) == {"DEMO-001", "DEMO-002"}
    assert run.settings["lots"] == "config/lots.tsv"


def test_absolute_sheet_paths_work_from_any_working_directory(project: Path, monkeypatch) -> None:
    write_project(project)
    config = project / "abs.yaml"
    config.write_text(
        CONFIG.replace("config/", f"{project}/config/"),
        encoding="utf-8",
    )
    monkeypatch.chdir("/")
    assert set(load_run_config(config).lots) == {"DEMO-001", "DEMO-002"}


def test_extra_lot_columns_are_kept_as_text(project: Path) -> None:
    header = LOTS_HEADER + "\tbatch_record\tpatient_code"
    rows = [LOTS[0] + "\tBR-17\tP-0042", LOTS[1] + "\t\t"]
    run = load_run_config(write_project(project, lots_text=sheet(header, rows)))
    assert dict(run.lots["DEMO-001"].extra) == {"batch_record": "BR-17", "patient_code": "P-0042"}
    assert dict(run.lots["DEMO-002"].extra) == {"batch_record": "", "patient_code": ""}


def test_platform_columns_are_closed_vocabularies(project: Path) -> None:
    header = LOTS_HEADER + "\tcell_type\tvector\tcostim_domain\tprocess_days\tmanufacturing_mode"
    rows = [LOTS[0] + "\tT cell\tlentiviral\t4-1BB\t7\tcentral", LOTS[1] + "\t\t\t\t\t"]
    run = load_run_config(write_project(project, lots_text=sheet(header, rows)))
    assert dict(run.lots["DEMO-001"].extra) == {
        "cell_type": "T cell",
        "vector": "lentiviral",
        "costim_domain": "4-1BB",
        "process_days": "7",
        "manufacturing_mode": "central",
    }
    # a construct's name typed as the vector would reach a shared package: refused
    leaky = [LOTS[0] + "\tT cell\tpLV-ACME-CD19\t4-1BB\t7\tcentral"]
    with pytest.raises(ConfigError, match="column 'vector': 'pLV-ACME-CD19' is not one of lentiviral"):
        load_run_config(write_project(project, lots_text=sheet(header, leaky)))


def test_the_dose_columns_are_numbers_and_the_starting_spec_a_specification(project: Path) -> None:
    header = LOTS_HEADER + "\ttnc_viable\tweight_kg\tstarting_spec"
    rows = [LOTS[0] + "\t2.5e9\t71.4\tSPEC-A", LOTS[1] + "\t\t\t"]
    run = load_run_config(write_project(project, lots_text=sheet(header, rows)))
    lot = run.lots["DEMO-001"]
    assert (lot.tnc_viable, lot.weight_kg, lot.starting_spec) == (2.5e9, 71.4, "SPEC-A")
    assert dict(lot.extra) == {}
    assert run.lots["DEMO-002"].tnc_viable is None
    bad = [LOTS[0] + "\t2.5 billion\t0\tAPHERESIS", LOTS[1] + "\t\t\t"]
    assert problems_of(write_project(project, lots_text=sheet(header, bad))) == [
        "config/lots.tsv row 2, column 'tnc_viable': '2.5 billion' is not a number.",
        "config/lots.tsv row 2, column 'weight_kg': 0.0 is not greater than 0.",
        "config/lots.tsv row 2, column 'starting_spec': 'APHERESIS' is not a specification in the specs "
        "file.",
    ]


def test_spreadsheet_habits_are_tolerated(project: Path) -> None:
    # BOM, CRLF, quoted cells, spaces around values, blank and comment lines, dropped trailing tabs.
    text = (
        "\ufeff# lots of the week\r\n"
        + LOTS_HEADER.replace("\t", "\t")
        + "\r\n"
        + "\r\n"
        + '"DEMO-001"\t CAR-T (test) \tSPEC-A\t2026-11-24T08:30:00Z\tSITE-A\r\n'
    )
    units = sheet(UNITS_HEADER, [f"DEMO-001\tPHENO\tphenotype\ttest\tdata/a.fcs\t\t{PANEL}"])
    run = load_run_config(write_project(project, lots_text=text, units_text=units))
    lot = run.lots["DEMO-001"]
    assert lot.product == "CAR-T (test)"
    assert lot.collected_at.utcoffset() == timedelta(0)
    assert run.units[0].volume_ul is None


def test_run_config_from_dict_matches_load_run_config(project: Path) -> None:
    path = write_project(project)
    from_file = load_run_config(path)
    from_dict = run_config_from_dict(yaml.safe_load(path.read_text()), path)
    assert from_dict.lots == from_file.lots
    assert from_dict.units == from_file.units
    assert from_dict.specs == from_file.specs
    assert from_dict.file_sha256 == from_file.file_sha256


def test_run_config_from_dict_names_the_source_in_messages(project: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^config/config.yaml, key 'deadline_hours': 0 is not greater than 0\.$"
    ):
        run_config_from_dict(
            {"lots": "l", "units": "u", "specs": "s", "results": "r", "deadline_hours": 0},
            Path("config/config.yaml"),
        )


def test_shipped_demo_configuration_is_valid(project_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(project_root)
    run = load_run_config(Path("config/config.yaml"))
    assert list(run.lots) == ["DEMO-001", "DEMO-002"]
    assert run.lots["DEMO-001"].collected_at.isoformat() == "2026-11-25T08:30:00+01:00"
    assert run.lots["DEMO-002"].site == "SITE-B"
    assert {lot.starting_spec for lot in run.lots.values()} == {"APHERESIS-DEMO"}
    assert [(u.lot_id, u.unit_id, u.role) for u in run.units if u.assay == "phenotype"] == [
        ("DEMO-001", "PHENO", "test"),
        ("DEMO-002", "PHENO", "test"),
        ("DEMO-001", "APHERESIS", "starting_material"),
        ("DEMO-002", "APHERESIS", "starting_material"),
    ]
    # each lot's sterility sample with the sequencing run's two negative and one positive control
    for lot in ("DEMO-001", "DEMO-002"):
        sequenced = [(u.unit_id, u.role) for u in run.units_of(lot) if u.assay == "sterility_reads"]
        assert sequenced == [
            ("STER", "test"),
            ("STER-NC1", "negative_control"),
            ("STER-NC2", "negative_control"),
            ("STER-PC", "positive_control"),
        ]
    (control,) = [u for u in run.units_of("DEMO-001") if u.role == "positive_control"]
    assert (control.spike_organism, control.spike_concentration, control.spike_unit) == (
        "Staphylococcus aureus",
        100.0,
        "CFU/mL",
    )
    # the default panel: every file of resources/reference/panel, indexed by the workflow
    assert run.reference.index is None
    assert len(run.reference.fasta) == 18
    assert run.reference.taxonomy == Path("resources/reference/taxonomy.tsv")
    assert (run.classify.confidence, run.classify.min_hit_groups) == (0.0, 2)
    spec = run.specs["CART-DEMO-release"]
    assert [a.criterion_text() for a in spec.attributes] == [
        "≥ 70 %",
        "≥ 80 %",
        "≥ 15 %",
        "0.5–4.0",
        "1.0×10⁶–1.0×10⁷ cells/kg",
        "≥ 5 %",
        "≥ 10 %",
        "NOT_DETECTED",
        "NOT_DETECTED",
        "≤ 10 CFU/mL",
    ]
    # the potency pair and the microbial test with the flow run's sterile medium, and the dose's inputs
    for lot in ("DEMO-001", "DEMO-002"):
        flow = [
            (u.unit_id, u.assay, u.role)
            for u in run.units_of(lot)
            if u.assay in ("potency", "microbial_flow")
        ]
        assert flow == [
            ("POT-STIM", "potency", "stimulated"),
            ("POT-UNSTIM", "potency", "unstimulated"),
            ("MICRO", "microbial_flow", "test"),
            ("MICRO-NC", "microbial_flow", "negative_control"),
        ]
    assert (run.lots["DEMO-001"].tnc_viable, run.lots["DEMO-001"].weight_kg) == (1.2e9, 78.0)
    assert [a.name for a in spec.attributes if a.validity] == ["sterility_lod"]
    assert run.deadline_hours == 24


def test_describe_run_config_summarises_and_warns_about_unmeasurable_lots(project: Path) -> None:
    units = [UNITS[0]]  # DEMO-002 has no phenotype unit
    text = describe_run_config(load_run_config(write_project(project, units=units)))
    lines = text.splitlines()
    assert lines[0] == (
        "config/config.yaml: valid. 2 lots, 1 unit, 1 specification; results in results/; "
        "decision window 24 h from collection."
    )
    assert "  spec SPEC-A: viability ≥ 70 %; car_of_cd3 ≥ 15.0 %; cd4_cd8_ratio 0.5–4.0" in lines
    assert (
        "  warning: lot DEMO-002 has no phenotype unit with role test, "
        "so attribute viability will be INCONCLUSIVE." in lines
    )
    assert not any("DEMO-001 has no" in line for line in lines)


def test_describe_run_config_warns_about_a_sequenced_test_without_its_controls(project: Path) -> None:
    units = [*UNITS, "DEMO-001\tSTER\tsterility_reads\ttest\tr1.fq.gz\tr2.fq.gz\t\t"]
    units.append("DEMO-001\tNC\tsterility_reads\tnegative_control\tnc1.fq.gz\tnc2.fq.gz\t\t")
    lines = describe_run_config(load_run_config(write_sequenced_project(project, units=units))).splitlines()
    warnings = [line for line in lines if "contaminant calls" in line]
    assert warnings == [
        "  warning: lot DEMO-001 has no sterility_reads (shotgun) positive_control for unit STER, "
        "so its contaminant calls will be INCONCLUSIVE."
    ]


# --------------------------------------------------------------------------------- config.yaml


def test_missing_config_file(project: Path) -> None:
    assert problems_of(Path("config/none.yaml")) == ["config/none.yaml: file not found."]


def test_config_yaml_syntax_error_names_the_line(project: Path) -> None:
    path = write_project(project, config="lots: config/lots.tsv\nunits: [oops\n")
    (line,) = problems_of(path)
    assert line.startswith("config/config.yaml line 3: not valid YAML (")


def test_config_yaml_key_written_twice(project: Path) -> None:
    path = write_project(project, config=CONFIG + "deadline_hours: 48\n")
    assert problems_of(path) == [
        "config/config.yaml line 6: not valid YAML (key 'deadline_hours' is written twice)."
    ]


def test_config_yaml_schema_problems_are_all_reported(project: Path) -> None:
    text = "lots: config/lots.tsv\nunits: 5\nspecs: config/specs.yaml\ndeadline_hour: 24\n"
    path = write_project(project, config=text)
    assert problems_of(path) == [
        "config/config.yaml, key 'units': 5 is not text.",
        "config/config.yaml, key 'deadline_hour': is not a known key "
        "(allowed: lots, units, specs, results, deadline_hours, reference, classify, dose, detection, "
        "trends).",
        "config/config.yaml, key 'results': a value is required.",
        "config/config.yaml, key 'deadline_hours': a value is required.",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "0 is not greater than 0."),
        ("-3", "-3 is not greater than 0."),
        ("'24'", "'24' is not a number."),
        ("9000", "9000 is more than 8760."),
    ],
)
def test_deadline_hours_must_be_a_positive_number(project: Path, value: str, message: str) -> None:
    path = write_project(project, config=CONFIG.replace("deadline_hours: 24", f"deadline_hours: {value}"))
    assert problems_of(path) == [f"config/config.yaml, key 'deadline_hours': {message}"]


def test_reference_must_be_a_mapping_when_given(project: Path) -> None:
    path = write_project(project, config=CONFIG + "reference: kraken.db\n")
    assert problems_of(path) == [
        "config/config.yaml, key 'reference': 'kraken.db' is not a mapping of keys to values."
    ]


def _with_reference(project: Path) -> str:
    """CONFIG with a reference of two FASTA files and a taxonomy that exist under ``project``."""
    (project / "ref").mkdir(exist_ok=True)
    for name in ("a.fa", "b.fa.gz", "taxonomy.tsv"):
        (project / "ref" / name).write_text("", encoding="utf-8")
    return CONFIG + "reference:\n  fasta: [ref/*.fa*]\n  taxonomy: ref/taxonomy.tsv\n"


STER = "DEMO-001\tSTER\tsterility_reads\ttest\tdata/r1.fq.gz\t\t\t"


def test_reference_fasta_patterns_are_expanded_and_classify_settings_read(project: Path) -> None:
    config = _with_reference(project) + "  host_sample: 4\nclassify: {confidence: 0.1, parts: 8}\n"
    run = load_run_config(write_project(project, units=[*UNITS, STER], config=config))
    assert run.reference.fasta == (Path("ref/a.fa"), Path("ref/b.fa.gz"))
    assert (run.reference.index, run.reference.mask_low_complexity) == (None, True)
    assert run.reference.host_sample == 4
    assert (run.classify.confidence, run.classify.min_hit_groups, run.classify.parts) == (0.1, 2, 8)


def test_a_cram_reference_that_does_not_exist_is_named(project: Path) -> None:
    config = _with_reference(project) + "classify: {cram_reference: refs/GRCh38.fa}\n"
    path = write_project(project, units=[*UNITS, STER], config=config)
    assert problems_of(path) == [
        "config/config.yaml, key 'classify.cram_reference': 'refs/GRCh38.fa' does not exist."
    ]
    (project / "refs").mkdir()
    (project / "refs" / "GRCh38.fa").write_text(">chr1\nACGT\n", encoding="utf-8")
    assert load_run_config(path).classify.cram_reference == Path("refs/GRCh38.fa")


def test_a_validated_lod_table_is_read_at_config_time_and_fingerprinted(project: Path) -> None:
    config = _with_reference(project) + "detection: {lod_table: validation/lod95.tsv}\n"
    path = write_project(project, units=[*UNITS, STER], config=config)
    (problem,) = problems_of(path)
    assert problem.startswith(
        "config/config.yaml, key 'detection.lod_table': 'validation/lod95.tsv' cannot be read"
    )
    (project / "validation").mkdir()
    table = project / "validation" / "lod95.tsv"
    table.write_text("organism\tlod95_cfu_per_ml\nStaphylococcus aureus\tten\n", encoding="utf-8")
    assert problems_of(path) == [
        "validation/lod95.tsv, line 2: lod95_cfu_per_ml of Staphylococcus aureus is 'ten', "
        "not a positive number."
    ]
    table.write_text("organism\tlod95_cfu_per_ml\nStaphylococcus aureus\t4.5\n", encoding="utf-8")
    run = load_run_config(path)
    assert run.detection.lod_table == "validation/lod95.tsv"
    assert "validation/lod95.tsv" in run.file_sha256


def test_a_sequenced_lot_needs_a_reference(project: Path) -> None:
    path = write_project(project, units=[*UNITS, STER])
    assert problems_of(path) == [
        "config/config.yaml, key 'reference': lot(s) DEMO-001 have sequencing units, so give the k-mer "
        "reference: 'index' (a rapidrelease refdb build folder) or 'fasta' with 'taxonomy'."
    ]


def test_reference_files_that_do_not_exist_are_named(project: Path) -> None:
    config = CONFIG + "reference:\n  fasta: [panel/*.fa, genome.fa]\n  seqid2taxid: ids.map\n"
    path = write_project(project, units=[*UNITS, STER], config=config)
    assert problems_of(path) == [
        "config/config.yaml, key 'reference.fasta': 'panel/*.fa' matches no file.",
        "config/config.yaml, key 'reference.fasta': 'genome.fa' matches no file.",
        "config/config.yaml, key 'reference.taxonomy': the FASTA files need a taxonomy "
        "(TSV or NCBI nodes.dmp).",
        "config/config.yaml, key 'reference.seqid2taxid': 'ids.map' does not exist.",
    ]


def test_a_prebuilt_index_must_be_an_index_folder_and_not_come_with_fasta(project: Path) -> None:
    (project / "kraken_db").mkdir()
    path = write_project(project, units=[*UNITS, STER], config=CONFIG + "reference: {index: kraken_db}\n")
    assert problems_of(path) == [
        "config/config.yaml, key 'reference.index': 'kraken_db' is not an index folder (no manifest.json "
        "of rapidrelease refdb build, nor hash.k2d, opts.k2d and taxo.k2d of kraken2-build)."
    ]
    # a folder kraken2-build wrote is an index as it is (its files are checked when it is opened)
    for name in ("hash.k2d", "opts.k2d", "taxo.k2d"):
        (project / "kraken_db" / name).write_bytes(b"")
    assert load_run_config(path).reference.index == Path("kraken_db")
    both = _with_reference(project).replace("reference:\n", "reference:\n  index: kraken_db\n")
    path = write_project(project, units=[*UNITS, STER], config=both)
    assert problems_of(path) == [
        "config/config.yaml, key 'reference': give either 'index' or 'fasta' with 'taxonomy', not both."
    ]


def test_a_flow_only_site_is_not_held_to_its_reference_files(project: Path) -> None:
    config = CONFIG + "reference:\n  fasta: [missing/*.fa]\n  taxonomy: missing.tsv\n"
    run = load_run_config(write_project(project, config=config))
    assert run.reference.fasta == ()


def test_config_yaml_not_a_mapping(project: Path) -> None:
    path = write_project(project, config="- lots\n")
    assert problems_of(path) == ["config/config.yaml: ['lots'] is not a mapping of keys to values."]


# ------------------------------------------------------------------------------------ lots.tsv


def test_every_problem_of_the_lot_sheet_is_reported_with_row_and_column(project: Path) -> None:
    rows = [
        "DEMO-001\tCAR-T\tSPEC-A\t2026-11-24T08:30:00+01:00\tSITE-A",
        "DEMO 002\tCAR-T\tSPEC-A\t2026-11-24T08:30:00\tSITE-A",
        "DEMO-003\t\tSPEC-X\t2026-13-24T08:30:00+01:00\tSITE-A",
        "DEMO-001\tCAR-T\tSPEC-A\t24.11.2026 08:30\t",
    ]
    path = write_project(project, lots=rows, units=[])
    assert problems_of(path) == [
        "config/lots.tsv row 3, column 'lot_id': 'DEMO 002' is not allowed; use 1 to 64 letters, digits, "
        "'.', '_' or '-', starting with a letter or digit, without '..'.",
        "config/lots.tsv row 3, column 'collected_at': '2026-11-24T08:30:00' has no time zone offset; "
        "write it like 2026-11-24T08:30:00+01:00, since the release window is counted from this moment.",
        "config/lots.tsv row 4, column 'product': a value is required.",
        "config/lots.tsv row 4, column 'spec': 'SPEC-X' is not a specification in the specs file.",
        "config/lots.tsv row 4, column 'collected_at': '2026-13-24T08:30:00+01:00' is not an ISO 8601 date "
        "and time such as 2026-11-24T08:30:00+01:00.",
        "config/lots.tsv row 5, column 'lot_id': 'DEMO-001' is already used in row 2.",
        "config/lots.tsv row 5, column 'collected_at': '24.11.2026 08:30' is not an ISO 8601 date and time "
        "such as 2026-11-24T08:30:00+01:00.",
        "config/lots.tsv row 5, column 'site': a value is required.",
    ]


@pytest.mark.parametrize(
    "lot_id",
    ["../etc", "a/b", "a..b", ".hidden", "-rf", "x;rm", "$(id)", "a b", "DEMO*", "x" * 65, "naïve"],
)
def test_unsafe_lot_ids_are_refused(project: Path, lot_id: str) -> None:
    path = write_project(
        project, lots=[f"{lot_id}\tCAR-T\tSPEC-A\t2026-11-24T08:30:00+01:00\tSITE-A"], units=[]
    )
    (line,) = problems_of(path)
    assert line.startswith(f"config/lots.tsv row 2, column 'lot_id': {lot_id!r} is not allowed; use 1 to 64")


def test_lot_ids_differing_only_in_case_are_duplicates(project: Path) -> None:
    rows = [LOTS[0], LOTS[0].replace("DEMO-001", "demo-001")]
    path = write_project(project, lots=rows, units=[])
    assert problems_of(path) == [
        "config/lots.tsv row 3, column 'lot_id': 'demo-001' is already used in row 2 as 'DEMO-001' "
        "(ids may not differ only in letter case)."
    ]


def test_lot_sheet_header_problems(project: Path) -> None:
    text = "lot_id\tproduct\tspec\tsite\tsite\t\n" + LOTS[0] + "\n"
    path = write_project(project, lots_text=text, units=[])
    assert problems_of(path) == [
        "config/lots.tsv row 1, column 'site': is named twice in the header.",
        "config/lots.tsv row 1: column 6 of the header has no name.",
        "config/lots.tsv row 1, column 'collected_at': is missing from the header "
        "(the required columns are lot_id, product, spec, collected_at, site).",
    ]


def test_lot_sheet_with_no_lots(project: Path) -> None:
    path = write_project(project, lots=[], units=[])
    assert problems_of(path) == ["config/lots.tsv: lists no lots; add one row per lot below the header."]


def test_empty_lot_sheet(project: Path) -> None:
    path = write_project(project, lots_text="\n# nothing\n", units=[])
    assert problems_of(path) == ["config/lots.tsv: is empty; the first line must name the columns."]


def test_row_with_more_cells_than_the_header(project: Path) -> None:
    path = write_project(project, lots=[LOTS[0] + "\textra"], units=[])
    assert problems_of(path) == ["config/lots.tsv row 2: has 6 cells but the header has 5 columns."]


def test_lot_sheet_that_is_not_utf8(project: Path) -> None:
    write_project(project)
    good = sheet(LOTS_HEADER, LOTS).encode()
    (project / "config" / "lots.tsv").write_bytes(good + b"\xff\xfe")
    # The units of the unreadable lot sheet are not also reported as units of unknown lots.
    assert problems_of(Path("config/config.yaml")) == [
        f"config/lots.tsv: is not UTF-8 text (byte {len(good)} cannot be decoded)."
    ]


# ----------------------------------------------------------------------------------- units.tsv


def test_every_problem_of_the_unit_sheet_is_reported_with_row_and_column(project: Path) -> None:
    rows = [
        f"DEMO-001\tPHENO\tphenotype\ttest\tdata/a.fcs\t\t{PANEL}\t",
        "DEMO-001\tPOT\tphenotyp\ttest\tdata/b.fcs\t\t\t",
        f"DEMO-001\tFMO\tphenotype\tfmo\t\t\t{PANEL}\t-5",
        f"DEMO-009\tPHENO\tphenotype\ttest\tdata/c.fcs\t\t{PANEL}\tten",
        "DEMO-001\tPHENO\tsterility_reads\ttest\treads_R1.fq.gz\treads_R2.fq.gz\t\t0",
        "DEMO-002\tMYCO\tmycoplasma_reads\tcontrol\treads.bam\t\t\t",
        "DEMO-002\tPHENO\tphenotype\ttest\tdata/d.fcs\t\t\t",
    ]
    path = write_project(project, units=rows)
    assert problems_of(path) == [
        "config/units.tsv row 3, column 'assay': 'phenotyp' is not one of phenotype, potency, "
        "microbial_flow, sterility_reads, mycoplasma_reads.",
        "config/units.tsv row 4, column 'path': a value is required.",
        "config/units.tsv row 4, column 'volume_ul': -5.0 is not greater than 0.",
        "config/units.tsv row 5, column 'lot_id': 'DEMO-009' is not a lot in the lot sheet.",
        "config/units.tsv row 5, column 'volume_ul': 'ten' is not a number.",
        "config/units.tsv row 6, column 'unit_id': 'PHENO' is already used for lot DEMO-001 in row 2.",
        "config/units.tsv row 6, column 'volume_ul': 0.0 is not greater than 0.",
        "config/units.tsv row 7, column 'role': 'control' is not one of test, negative_control, "
        "positive_control, stimulated, unstimulated, target_only, fmo, compensation, starting_material.",
        "config/units.tsv row 8, column 'template': a panel YAML is required for the flow assay 'phenotype'.",
    ]


def test_same_unit_id_in_different_lots_is_fine(project: Path) -> None:
    run = load_run_config(write_project(project))
    assert [(u.lot_id, u.unit_id) for u in run.units] == [("DEMO-001", "PHENO"), ("DEMO-002", "PHENO")]


def test_sequencing_units_need_no_panel_and_keep_both_read_files(project: Path) -> None:
    rows = ["DEMO-001\tSTER\tsterility_reads\ttest\t/data/r1.fq.gz\t/data/r2.fq.gz\t\t1000"]
    run = load_run_config(write_project(project, units=rows, config=_with_reference(project)))
    unit = run.units[0]
    assert (unit.path, unit.path2, unit.template, unit.volume_ul) == (
        Path("/data/r1.fq.gz"),
        Path("/data/r2.fq.gz"),
        None,
        1000.0,
    )


@pytest.mark.parametrize("unit_id", ["../x", "a/b", ".", "..", "x y", "x|y", "`id`"])
def test_unsafe_unit_ids_are_refused(project: Path, unit_id: str) -> None:
    path = write_project(project, units=[f"DEMO-001\t{unit_id}\tphenotype\ttest\ta.fcs\t\t{PANEL}\t"])
    (line,) = problems_of(path)
    assert line.startswith(f"config/units.tsv row 2, column 'unit_id': {unit_id!r} is not allowed;")


def test_unknown_unit_column_is_refused_so_a_typo_is_not_ignored(project: Path) -> None:
    text = sheet(UNITS_HEADER.replace("volume_ul", "volume_uL"), [UNITS[0]])
    path = write_project(project, units_text=text)
    assert problems_of(path) == [
        "config/units.tsv row 1, column 'volume_uL': is not a known column (the columns are lot_id, unit_id, "
        "assay, role, path, path2, template, volume_ul, stain, library, spike_organism, spike_concentration, "
        "spike_unit).",
    ]


def test_optional_unit_columns_may_be_left_out_of_the_header(project: Path) -> None:
    header = "lot_id\tunit_id\tassay\trole\tpath\ttemplate"
    path = write_project(
        project, units_text=sheet(header, [f"DEMO-001\tPHENO\tphenotype\ttest\ta.fcs\t{PANEL}"])
    )
    (unit,) = load_run_config(path).units
    assert (unit.path2, unit.volume_ul, unit.library, unit.spike_organism) == (None, None, "shotgun", None)


def test_sequencing_positive_control_needs_its_spike(project: Path) -> None:
    rows = [
        "DEMO-001\tPC\tsterility_reads\tpositive_control\tpc_R1.fq\tpc_R2.fq\t\t\t\tS. aureus\t\t",
        "DEMO-001\tNC\tsterility_reads\tnegative_control\tnc_R1.fq\t\t\t\t\t\t50\tCFU/mL",
    ]
    header = UNITS_HEADER + "\tlibrary\tspike_organism\tspike_concentration\tspike_unit"
    path = write_sequenced_project(project, units_text=sheet(header, rows))
    assert problems_of(path) == [
        "config/units.tsv row 2, column 'spike_concentration': is required for a sequencing positive "
        "control: the limit of detection is computed from the organism spiked in and its concentration.",
        "config/units.tsv row 2, column 'spike_unit': is required for a sequencing positive control: the "
        "limit of detection is computed from the organism spiked in and its concentration.",
        "config/units.tsv row 3, column 'spike_concentration': is only used for a sequencing positive "
        "control or a sequencing test's internal control.",
        "config/units.tsv row 3, column 'spike_unit': is only used for a sequencing positive control or a "
        "sequencing test's internal control.",
    ]


def test_a_sequencing_test_may_state_its_internal_control_with_all_three_spike_columns(project: Path) -> None:
    header = UNITS_HEADER + "\tlibrary\tspike_organism\tspike_concentration\tspike_unit"
    rows = ["DEMO-001\tT\tsterility_reads\ttest\tt_R1.fq\tt_R2.fq\t\t\t\tStreptococcus suis\t50\tCFU/mL"]
    path = write_sequenced_project(project, units_text=sheet(header, rows))
    (unit,) = load_run_config(path).units
    assert (unit.role, unit.spike_organism, unit.spike_concentration, unit.spike_unit) == (
        "test",
        "Streptococcus suis",
        50.0,
        "CFU/mL",
    )
    # an organism with no amount (or an amount of nothing named) is no internal control
    rows = ["DEMO-001\tT\tsterility_reads\ttest\tt_R1.fq\tt_R2.fq\t\t\t\tStreptococcus suis\t\t"]
    path = write_sequenced_project(project, units_text=sheet(header, rows))
    assert problems_of(path) == [
        f"config/units.tsv row 2, column '{column}': is required for a sequencing test's internal control "
        "once another spike column is given: its recovery needs the organism, its concentration and its unit."
        for column in ("spike_concentration", "spike_unit")
    ]


def test_sequencing_positive_control_is_read_with_its_spike(project: Path) -> None:
    rows = ["DEMO-001\tPC\tmycoplasma_reads\tpositive_control\tpc.fq\t\t\t\tamplicon\t2121\t10\tCFU/mL"]
    header = UNITS_HEADER + "\tlibrary\tspike_organism\tspike_concentration\tspike_unit"
    path = write_sequenced_project(project, units_text=sheet(header, rows))
    (unit,) = load_run_config(path).units
    assert (unit.library, unit.spike_organism, unit.spike_concentration, unit.spike_unit) == (
        "amplicon",
        "2121",
        10.0,
        "CFU/mL",
    )


def test_problems_of_all_files_are_reported_together(project: Path) -> None:
    specs = SPECS.replace('comparison: ">=", limit: 70', 'comparison: "=>", limit: 70')
    lots = [LOTS[0].replace("+01:00", "")]
    units = [UNITS[0].replace("phenotype", "phenotyp")]
    path = write_project(project, specs=specs, lots=lots, units=units)
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert str(caught.value).splitlines() == [
        "3 problems in the configuration (config/config.yaml):",
        "config/specs.yaml, spec 'SPEC-A', attribute 'viability', key 'comparison': '=>' is not one of "
        ">=, >, <=, <, between, equals.",
        "config/lots.tsv row 2, column 'collected_at': '2026-11-24T08:30:00' has no time zone offset; "
        "write it like 2026-11-24T08:30:00+01:00, since the release window is counted from this moment.",
        "config/units.tsv row 2, column 'assay': 'phenotyp' is not one of phenotype, potency, "
        "microbial_flow, sterility_reads, mycoplasma_reads.",
    ]


def test_missing_sheets_are_reported_together(project: Path) -> None:
    write_project(project)
    (project / "config" / "lots.tsv").unlink()
    (project / "config" / "units.tsv").unlink()
    assert problems_of(Path("config/config.yaml")) == [
        "config/lots.tsv: file not found.",
        "config/units.tsv: file not found.",
    ]


def test_a_sheet_path_that_is_a_folder(project: Path) -> None:
    path = write_project(project, config=CONFIG.replace("config/units.tsv", "config"))
    assert problems_of(path) == ["config: is a folder, not a file."]


def test_collected_at_offsets_are_kept(project: Path) -> None:
    rows = [LOTS[0].replace("+01:00", "-05:30")]
    run = load_run_config(write_project(project, lots=rows, units=[]))
    assert run.lots["DEMO-001"].collected_at.tzinfo == timezone(timedelta(hours=-5, minutes=-30))
    assert run.deadline_of("DEMO-001").isoformat() == "2026-11-25T08:30:00-05:30"


def test_empty_config_file(project: Path) -> None:
    path = write_project(project, config="# nothing yet\n")
    assert problems_of(path) == ["config/config.yaml: is empty; it must be a mapping of keys to values."]


def test_a_role_the_assay_does_not_have_and_a_misplaced_stain_are_refused(project: Path) -> None:
    header = "lot_id\tunit_id\tassay\trole\tpath\ttemplate\tstain"
    rows = [
        f"DEMO-001\tPHENO\tphenotype\ttest\tdata/a.fcs\t{PANEL}\t",
        f"DEMO-001\tUNS\tphenotype\tunstimulated\tdata/b.fcs\t{PANEL}\t",
        f"DEMO-001\tCOMP-FITC\tphenotype\tcompensation\tdata/c.fcs\t{PANEL}\t",
        f"DEMO-001\tSTIM\tpotency\tstimulated\tdata/d.fcs\t{PANEL}\tFITC-A",
        f"DEMO-001\tFMO-IFNG\tpotency\tfmo\tdata/e.fcs\t{PANEL}\tBV750-A",
    ]
    path = write_project(project, units_text=sheet(header, rows))
    assert problems_of(path) == [
        "config/units.tsv row 3, column 'role': 'unstimulated' is not a role of the phenotype assay "
        "(its roles are test, fmo, compensation, starting_material).",
        "config/units.tsv row 4, column 'stain': is required for a compensation control: the detector "
        "its single stain is for, or unstained.",
        "config/units.tsv row 5, column 'stain': is only used for a compensation or fmo control.",
    ]


def test_an_attribute_whose_metric_no_panel_reports_is_a_problem_naming_spec_attribute_and_panel(
    project: Path,
) -> None:
    # a typing error in specs.yaml would otherwise leave every lot of the specification INCONCLUSIVE
    from rapidrelease.config.run import unmeasured_metric_problems

    specs = SPECS.replace("metric: car_pct_cd3", "metric: car_percent_cd3")
    specs += "      dose: {assay: dose, metric: cells_per_kg, comparison: '>=', limit: 1, unit: cells/kg}\n"
    run = load_run_config(write_project(project, specs=specs))
    panels = {Path(PANEL): ["viability_pct", "car_pct_cd3", "cd4_cd8_ratio"]}
    assert unmeasured_metric_problems(run, panels) == [
        "config/specs.yaml, spec 'SPEC-A', attribute 'car_of_cd3', key 'metric': 'car_percent_cd3' is not a "
        f"metric of panel {PANEL} (it reports car_pct_cd3, cd4_cd8_ratio, viability_pct).",
        "config/specs.yaml, spec 'SPEC-A', attribute 'dose', key 'metric': 'cells_per_kg' is not a dose "
        "metric (viable_car_t_cells, viable_car_t_cells_per_kg).",
    ]
    good = load_run_config(write_project(project))
    assert unmeasured_metric_problems(good, panels) == []


def test_a_path_snakemake_would_read_as_a_path_variable_is_refused(project: Path) -> None:
    units = [
        f"DEMO-001\tPHENO\tphenotype\ttest\tdata/tube <b>1.fcs\t\t{PANEL}\t",
        f"DEMO-002\tPHENO\tphenotype\ttest\tdata/<logs>/DEMO-002.fcs\t\t{PANEL}\t",
    ]
    why = "in the path is what Snakemake reads as one of its path variables, so it would look for another"
    assert problems_of(write_project(project, units=units)) == [
        f"config/units.tsv row 2, column 'path': '<b>' {why} file; rename the file or folder.",
        f"config/units.tsv row 3, column 'path': '<logs>' {why} file; rename the file or folder.",
    ]
    # upper case, spaces and other markup are not path variables
    upper = [f"DEMO-001\tPHENO\tphenotype\ttest\tdata/tube <B> & 'x'.fcs\t\t{PANEL}\t", UNITS[1]]
    assert load_run_config(write_project(project, units=upper)).units[0].path.name == "tube <B> & 'x'.fcs"


@pytest.mark.parametrize("lot_id", ["index.html", "INDEX.HTML", "releases.csv"])
def test_a_lot_id_that_names_a_results_file_is_refused(project: Path, lot_id: str) -> None:
    path = write_project(
        project, lots=[f"{lot_id}\tCAR-T\tSPEC-A\t2026-11-24T08:30:00+01:00\tSITE-A"], units=[]
    )
    assert problems_of(path) == [
        f"config/lots.tsv row 2, column 'lot_id': {lot_id!r} is the name of a file in the results folder."
    ]


SEQUENCED_HEADER = UNITS_HEADER + "\tlibrary\tspike_organism\tspike_concentration\tspike_unit"
MICROBIAL_PANEL = "config/panels/microbial_flow.yaml"


def _sequenced(lot: str, unit: str, role: str, r1: str, spike: str = "\t\t\t") -> str:
    return f"{lot}\t{unit}\tsterility_reads\t{role}\t{r1}\t\t\t\t{spike}"


def test_a_test_listed_as_its_own_control_is_refused_naming_the_row(project: Path) -> None:
    # a contaminated sample listed as its own negative control would hide its contamination
    rows = [
        _sequenced("DEMO-001", "STER", "test", "data/ster_R1.fq.gz"),
        _sequenced("DEMO-001", "NC", "negative_control", "data/./ster_R1.fq.gz"),
        _sequenced("DEMO-001", "PC", "positive_control", "data/pc_R1.fq.gz", "\tS. aureus\t100\tCFU/mL"),
        f"DEMO-001\tMICRO\tmicrobial_flow\ttest\tdata/micro.fcs\t\t{MICROBIAL_PANEL}\t",
        f"DEMO-001\tMEDIUM\tmicrobial_flow\tnegative_control\tdata/micro.fcs\t\t{MICROBIAL_PANEL}\t",
    ]
    path = write_sequenced_project(project, units_text=sheet(SEQUENCED_HEADER, rows))
    ster, micro = "data/ster_R1.fq.gz", "data/micro.fcs"
    assert problems_of(path) == [
        f"config/units.tsv row 3: unit NC of lot DEMO-001, a negative control, names the same file as unit "
        f"STER (row 2), {ster}; a control must be a different measurement from the test it controls.",
        f"config/units.tsv row 6: unit MEDIUM of lot DEMO-001, a negative control, names the same file as "
        f"unit MICRO (row 5), {micro}; a control must be a different measurement from the test it controls.",
    ]


def test_a_data_file_serves_two_lots_only_as_a_shared_run_control(project: Path) -> None:
    shared_controls = [
        _sequenced(lot, unit, role, f"run/{unit}_R1.fq.gz", spike)
        for lot in ("DEMO-001", "DEMO-002")
        for unit, role, spike in (
            ("NC", "negative_control", "\t\t\t"),
            ("PC", "positive_control", "\tS. aureus\t100\tCFU/mL"),
        )
    ]
    tests = [
        _sequenced("DEMO-001", "STER", "test", "data/DEMO-001_R1.fq.gz"),
        _sequenced("DEMO-002", "STER", "test", "data/DEMO-001_R1.fq.gz"),  # the other lot's sample
    ]
    path = write_sequenced_project(project, units_text=sheet(SEQUENCED_HEADER, shared_controls + tests))
    sample = "data/DEMO-001_R1.fq.gz"
    assert problems_of(path) == [
        f"config/units.tsv row 7: unit STER of lot DEMO-002 names {sample}, the data file of unit STER of "
        "lot DEMO-001 (row 6); a data file may serve two lots only as the same shared run control "
        "(negative or positive control).",
    ]
    # the run's controls alone, shared by both lots, are fine
    load_run_config(write_sequenced_project(project, units_text=sheet(SEQUENCED_HEADER, shared_controls)))


def test_a_units_settings_digest_changes_with_its_own_row_and_its_controls_only(project: Path) -> None:
    before = load_run_config(write_project(project))
    pheno1, pheno2 = before.unit("DEMO-001", "PHENO"), before.unit("DEMO-002", "PHENO")
    units = [UNITS[0], UNITS[1].replace("\t50", "\t55")]  # DEMO-002's volume_ul corrected
    after = load_run_config(write_project(project, units=units))
    assert after.settings_digest(after.unit("DEMO-001", "PHENO")) == before.settings_digest(pheno1)
    assert after.settings_digest(after.unit("DEMO-002", "PHENO")) != before.settings_digest(pheno2)
    # a row's place in the sheet is no setting
    moved = load_run_config(write_project(project, units=[UNITS[1], UNITS[0]]))
    assert moved.settings_digest(moved.unit("DEMO-001", "PHENO")) == before.settings_digest(pheno1)


def test_a_lot_excluded_from_the_trend_baseline_needs_its_assignable_cause(project: Path) -> None:
    cause = "trends:\n  excluded_lots:\n    DEMO-001: deviation DEV-2026-031, wrong medium lot\n"
    assert load_run_config(write_project(project, config=CONFIG + cause)).settings["trends"] == {
        "excluded_lots": {"DEMO-001": "deviation DEV-2026-031, wrong medium lot"}
    }
    problems = problems_of(
        write_project(project, config=CONFIG + "trends:\n  excluded_lots:\n    DEMO-001: ''\n")
    )
    assert len(problems) == 1 and problems[0].startswith(
        "config/config.yaml, key 'trends.excluded_lots.DEMO-001'"
    )
