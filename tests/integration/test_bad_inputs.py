"""A bad-input corpus through one real snakemake run: no bad file ever makes a release candidate.

Every bad file is generated here from the demo lot's own files (nothing binary is committed) and
measured as the unit of a lot of its own, in ONE snakemake run in the site where the good demo lots
were decided (a copy of the session's demo run; the workflow's profile keeps going past a failed
job, and the demo lots are re-decided in the same run). For each data-file case the run finishes, the
lot is INCONCLUSIVE with a one-line reason naming the file, and no other lot changes: DEMO-001
stays a release candidate with the same values as lots measured on content-identical copies.
Sheet and specification cases are refused before any job runs (``snakemake -n``).

Data-file cases (DATA_CASES, 39: 28 FCS_CASES, FCS-BAD-CONTROL, 9 READS_CASES, NO-UNIT; each is a lot):

============================================  ==========================================================
case (lot id)                                 file
============================================  ==========================================================
FCS-TRUNC-IN-HEADER … FCS-TRUNC-IN-ANALYSIS   the phenotype tube cut inside / at the end of each of
(9)                                           HEADER, TEXT, DATA and ANALYSIS
FCS-TEXT-GARBAGE, FCS-TEXT-LOST-DELIMITER     a corrupt TEXT segment
FCS-PAR-TOO-MANY, FCS-PAR-TOO-FEW,            a wrong $PAR or $TOT
FCS-TOT-TOO-MANY, FCS-TOT-TOO-FEW,
FCS-TOT-NOT-A-NUMBER
FCS-DATATYPE-UNKNOWN, FCS-DATATYPE-DOUBLE     $DATATYPE that does not match the DATA
FCS-MISSING-SCATTER, FCS-MISSING-MARKER       a channel the gating template needs is absent
FCS-DUPLICATE-CHANNEL, FCS-DUPLICATE-SPILL    two parameters with one $PnN
FCS-NAN, FCS-INF                              NaN / inf event values
FCS-ZERO-EVENTS, FCS-EMPTY, FCS-GARBAGE       no events; 0 bytes; not FCS at all
FCS-MISSING                                   the sheet names a file that is not there
FCS-BAD-CONTROL                               the unstimulated potency control tube is truncated
READS-TRUNCATED-GZIP, READS-QUAL-LENGTH,      FASTQ cut inside its gzip stream; a quality line
READS-GARBAGE, READS-EMPTY, READS-EMPTY-GZIP,   shorter than its sequence; random bytes; 0 bytes; an
READS-MATES-DIFFER, READS-BAM-NOT-BAM,          empty gzip; R1 ten reads short of R2; BAM magic then
READS-BGZF-NOT-BAM, READS-MISSING               garbage; BGZF holding no BAM; a missing file
NO-UNIT                                       the lot has no unit at all
============================================  ==========================================================

Read correctly, not refused (READ_CASES, 2): READS-CRLF (Windows line endings) and FLOW-PNB-16
($PnB 16 with $DATATYPE F: the DATA length shows 32-bit floats, as flowio reads them); both are
release candidates with DEMO-001's values. FCS-INT-OF-FLOATS ($DATATYPE I over float bytes) is read
as integers, gives nonsense percentages and is NOT_RELEASABLE: never a release candidate, though
INCONCLUSIVE would be the right status (no check can tell those bytes are not integers).

Configuration cases refused before any job runs (REFUSED_CASES, 15): see the parametrised list.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.flow.measure import measure_tube
from rapidrelease.records import to_json

from support.workflow import append_rows, copy_of_site, own_copy, record_of, release_of, run_snakemake

pytestmark = pytest.mark.slow

PHENO_PANEL = "config/panels/car_t_phenotype.yaml"
POTENCY_PANEL = "config/panels/car_t_potency.yaml"
FLOW_SPEC = "BAD-INPUT-FLOW"
READS_SPEC = "BAD-INPUT-READS"
POTENCY_SPEC = "BAD-INPUT-POTENCY"
LOT_ROW = "\tCAR-T (bad input)\t{spec}\t2026-11-25T08:00:00+01:00\tSITE-A\t1.2e9\t78"


# ---------------------------------------------------------------------------------- FCS generators


def _parse_fcs(raw: bytes) -> tuple[dict[str, str], bytes]:
    """TEXT keywords (in order, escaped delimiters undone) and DATA bytes of a one-data-set FCS file."""
    text_start, text_end, data_start, data_end = (int(raw[10 + 8 * i : 18 + 8 * i]) for i in range(4))
    text = raw[text_start : text_end + 1]
    delimiter = text[:1]
    body = text[1:-1].replace(delimiter + delimiter, b"\0")
    fields = [f.replace(b"\0", delimiter).decode("latin-1") for f in body.split(delimiter)]
    return dict(zip(fields[0::2], fields[1::2], strict=True)), raw[data_start : data_end + 1]


def _build_fcs(
    keywords: dict[str, str], data: bytes, analysis: bytes = b"", text: bytes | None = None
) -> bytes:
    """An FCS 3.1 file: HEADER, TEXT (``keywords``, or ``text`` as given), DATA, ANALYSIS, CRC zeros.

    The segment offsets are written in TEXT too, so TEXT is laid out until its length settles.
    """
    keywords = dict(keywords)
    for _ in range(4):
        body = text or ("/" + "".join(f"{k}/{v.replace('/', '//')}/" for k, v in keywords.items())).encode()
        data_start = 256 + len(body)
        analysis_start = data_start + len(data)
        offsets = {
            "$BEGINDATA": data_start if data else 0,
            "$ENDDATA": data_start + len(data) - 1 if data else 0,
            "$BEGINANALYSIS": analysis_start if analysis else 0,
            "$ENDANALYSIS": analysis_start + len(analysis) - 1 if analysis else 0,
        }
        keywords |= {k: str(v) for k, v in offsets.items()}
    header = b"FCS3.1    " + b"".join(f"{n:>8}".encode() for n in (256, data_start - 1, *offsets.values()))
    return header.ljust(256) + body + data + analysis + b"00000000"


def _offsets(fcs: bytes) -> list[int]:
    """TEXT end, DATA end and ANALYSIS end from a HEADER."""
    return [int(fcs[10 + 8 * i : 18 + 8 * i]) for i in (1, 3, 5)]


def fcs_cases(phenotype: bytes) -> dict[str, bytes]:
    """Every bad phenotype tube by lot id, with the good tube rewritten and one read correctly ($PnB 16)."""
    keywords, data = _parse_fcs(phenotype)
    n_par, n_tot = int(keywords["$PAR"]), int(keywords["$TOT"])
    events = np.frombuffer(data, dtype="<f4").reshape(n_tot, n_par)
    names = {
        int(k[2:-1]): v for k, v in keywords.items() if k[:2] == "$P" and k[-1] == "N" and k[2:-1].isdigit()
    }
    number = {name: n for n, name in names.items()}

    def edited(**changes: str) -> bytes:
        return _build_fcs(keywords | changes, data)

    def with_value(value: float) -> bytes:
        changed = events.copy()
        changed[100, number["SSC-A"] - 1] = value
        return _build_fcs(keywords, changed.astype("<f4").tobytes())

    good = _build_fcs(keywords, data)
    text_end, data_end, _ = _offsets(good)
    analysed = _build_fcs(keywords, data, analysis=b"/$ANALYSIS/gates applied by the instrument/" * 4)
    _, analysed_data_end, analysis_end = _offsets(analysed)
    text = good[256 : text_end + 1]
    garbage = bytearray(np.random.default_rng(7).bytes(len(text)))
    garbage[0] = garbage[-1] = ord("/")
    lost = text.index(b"/$P5N/")
    return {
        "FLOW-GOOD": good,
        "FLOW-PNB-16": edited(**{f"$P{n}B": "16" for n in names}),
        "FCS-TRUNC-IN-HEADER": good[:30],
        "FCS-TRUNC-AT-HEADER-END": good[:256],
        "FCS-TRUNC-IN-TEXT": good[: 256 + len(text) // 2],
        "FCS-TRUNC-BEFORE-TEXT-END": good[:text_end],
        "FCS-TRUNC-AT-TEXT-END": good[: text_end + 1],
        "FCS-TRUNC-IN-DATA": good[: (text_end + data_end) // 2],
        "FCS-TRUNC-BEFORE-DATA-END": good[:data_end],
        "FCS-TRUNC-AT-DATA-END": analysed[: analysed_data_end + 1],
        "FCS-TRUNC-IN-ANALYSIS": analysed[:analysis_end],
        "FCS-TEXT-GARBAGE": _build_fcs(keywords, data, text=bytes(garbage)),
        "FCS-TEXT-LOST-DELIMITER": _build_fcs(keywords, data, text=text[: lost + 5] + text[lost + 6 :]),
        "FCS-PAR-TOO-MANY": edited(**{"$PAR": str(n_par + 1)}),
        "FCS-PAR-TOO-FEW": edited(**{"$PAR": str(n_par - 1)}),
        "FCS-TOT-TOO-MANY": edited(**{"$TOT": str(n_tot + 1)}),
        "FCS-TOT-TOO-FEW": edited(**{"$TOT": str(n_tot - 1)}),
        "FCS-TOT-NOT-A-NUMBER": edited(**{"$TOT": "30k"}),
        "FCS-DATATYPE-UNKNOWN": edited(**{"$DATATYPE": "Q"}),
        "FCS-DATATYPE-DOUBLE": edited(**{"$DATATYPE": "D"}),
        "FCS-INT-OF-FLOATS": edited(**{"$DATATYPE": "I"}),
        "FCS-MISSING-SCATTER": edited(**{f"$P{number['SSC-A']}N": "SSC-W"}),
        "FCS-MISSING-MARKER": edited(**{f"$P{number['V525-A']}N": "V525-H"}),
        "FCS-DUPLICATE-CHANNEL": edited(**{f"$P{number['Time']}N": "FSC-H"}),
        "FCS-DUPLICATE-SPILL": edited(**{f"$P{number['V525-A']}N": "V450-A"}),
        "FCS-NAN": with_value(np.nan),
        "FCS-INF": with_value(np.inf),
        "FCS-ZERO-EVENTS": _build_fcs(keywords | {"$TOT": "0"}, b""),
        "FCS-EMPTY": b"",
        "FCS-GARBAGE": np.random.default_rng(8).bytes(4096),
    }


# ------------------------------------------------------------------------------- read generators


def _bgzf(payload: bytes) -> bytes:
    """``payload`` as one BGZF block (gzip with the BC extra field) and the BGZF end-of-file block."""
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = compressor.compress(payload) + compressor.flush()
    size = 18 + len(deflated) + 8 - 1
    block = (
        b"\x1f\x8b\x08\x04" + b"\0\0\0\0\0\xff" + b"\x06\0BC\x02\0" + size.to_bytes(2, "little") + deflated
    )
    block += zlib.crc32(payload).to_bytes(4, "little") + len(payload).to_bytes(4, "little")
    eof = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
    return block + eof


def read_cases(r1_gz: bytes) -> dict[str, bytes]:
    """Every bad R1 file of the sterility sample by lot id, with one read correctly (Windows line endings)."""
    text = gzip.decompress(r1_gz)
    records = [text.split(b"\n")[i : i + 4] for i in range(0, text.count(b"\n"), 4)]

    def fastq(chosen: list[list[bytes]]) -> bytes:
        return gzip.compress(b"".join(b"\n".join(r) + b"\n" for r in chosen), mtime=0)

    short_quality = [list(r) for r in records]
    short_quality[100][3] = short_quality[100][3][:-5]
    return {
        "READS-CRLF": gzip.compress(text.replace(b"\n", b"\r\n"), mtime=0),
        "READS-TRUNCATED-GZIP": r1_gz[: len(r1_gz) // 2],
        "READS-QUAL-LENGTH": fastq(short_quality),
        "READS-GARBAGE": np.random.default_rng(9).bytes(50_000),
        "READS-EMPTY": b"",
        "READS-EMPTY-GZIP": gzip.compress(b"", mtime=0),
        "READS-MATES-DIFFER": fastq(records[:-10]),
        "READS-BAM-NOT-BAM": _bgzf(b"BAM\x01" + np.random.default_rng(10).bytes(5_000)),
        "READS-BGZF-NOT-BAM": _bgzf(np.random.default_rng(11).bytes(5_000)),
    }


# ------------------------------------------------------------------------------------- the corpus

FLOW_ATTRIBUTES = ("viability", "cd3_of_live", "car_of_cd3", "cd4_cd8_ratio")
READS_ATTRIBUTES = ("sterility", "sterility_lod")
POTENCY_ATTRIBUTES = ("potency_ifng", "potency_cd107a")
REPORTED = ("FCS-TRUNC-IN-DATA", "FCS-MISSING", "READS-TRUNCATED-GZIP", "NO-UNIT")
MISSING = {"FCS-MISSING": "incoming/FCS-MISSING.fcs", "READS-MISSING": "incoming/READS-MISSING_R1.fastq.gz"}


def _spec_block(name: str, attributes: tuple[str, ...], demo_specs: str) -> str:
    """A specification of some of the demo specification's (the first in specs.yaml) attributes, as
    written there."""
    lines = demo_specs.splitlines()
    start = lines.index("    attributes:")
    blocks: dict[str, list[str]] = {}
    current = None
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith("    "):
            break  # the next specification
        if line.startswith("      ") and not line.startswith("       "):
            current = line.strip().rstrip(":")
            blocks[current] = [line]
        elif current is not None and line.startswith("        "):
            blocks[current].append(line)
    body = "\n".join(line for a in attributes for line in blocks[a])
    return (
        f"  {name}:\n    description: bad-input corpus ({', '.join(attributes)})\n    attributes:\n{body}\n"
    )


@pytest.fixture(scope="module")
def corpus_run(project_root: Path, demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One snakemake run of one lot per bad (or oddly written) input file, added to a copy of the
    site where the demo lots were decided (with Snakemake's records, so they are not measured again,
    only re-decided against the specification file the corpus extends)."""
    workdir = copy_of_site(demo_run, tmp_path_factory.mktemp("bad_inputs") / "site")
    demo = workdir / "resources" / "demo"
    incoming = workdir / "incoming"
    incoming.mkdir()
    specs = workdir / "config" / "specs.yaml"
    text = specs.read_text(encoding="utf-8")
    specs.write_text(
        text
        + _spec_block(FLOW_SPEC, FLOW_ATTRIBUTES, text)
        + _spec_block(READS_SPEC, READS_ATTRIBUTES, text)
        + _spec_block(POTENCY_SPEC, POTENCY_ATTRIBUTES, text),
        encoding="utf-8",
    )
    lots: list[str] = []
    units: list[str] = []
    for lot, content in fcs_cases((demo / "DEMO-001" / "DEMO-001_phenotype.fcs").read_bytes()).items():
        (incoming / f"{lot}.fcs").write_bytes(content)
        lots.append(lot + LOT_ROW.format(spec=FLOW_SPEC))
        units.append(f"{lot}\tPHENO\tphenotype\ttest\tincoming/{lot}.fcs\t\t{PHENO_PANEL}\t")
    lots.append("FCS-MISSING" + LOT_ROW.format(spec=FLOW_SPEC))
    units.append(f"FCS-MISSING\tPHENO\tphenotype\ttest\t{MISSING['FCS-MISSING']}\t\t{PHENO_PANEL}\t")
    lots.append("NO-UNIT" + LOT_ROW.format(spec=FLOW_SPEC))
    # a lot whose potency control tube is truncated: the stimulated tube is good, its net values are not
    unstimulated = (demo / "DEMO-001" / "DEMO-001_potency_unstimulated.fcs").read_bytes()
    (incoming / "FCS-BAD-CONTROL_unstimulated.fcs").write_bytes(unstimulated[: len(unstimulated) // 2])
    lots.append("FCS-BAD-CONTROL" + LOT_ROW.format(spec=POTENCY_SPEC))
    stimulated = own_copy(
        workdir, "resources/demo/DEMO-001/DEMO-001_potency_stimulated.fcs", "FCS-BAD-CONTROL"
    )
    units += [
        f"FCS-BAD-CONTROL\tPOT-STIM\tpotency\tstimulated\t{stimulated}\t\t{POTENCY_PANEL}\t",
        f"FCS-BAD-CONTROL\tPOT-UNSTIM\tpotency\tunstimulated\tincoming/FCS-BAD-CONTROL_unstimulated.fcs"
        f"\t\t{POTENCY_PANEL}\t",
    ]
    # sequencing lots: the bad R1 with DEMO-001's R2 and the sequencing run's controls, as DEMO-001 has them
    controls = [
        row.split("\t", 1)[1]
        for row in (workdir / "config" / "units.tsv").read_text(encoding="utf-8").splitlines()
        if row.startswith("DEMO-001\tSTER-")
    ]
    r2 = "resources/demo/DEMO-001/DEMO-001_sterility_R2.fastq.gz"
    cases = read_cases((demo / "DEMO-001" / "DEMO-001_sterility_R1.fastq.gz").read_bytes())
    for lot, content in [*cases.items(), ("READS-MISSING", None)]:
        path = MISSING.get(lot, f"incoming/{_file_of(lot)}")
        if content is not None:
            (workdir / path).write_bytes(content)
        # a BAM holds both mates; a lot's test files serve that lot alone
        mate = "" if lot.endswith("NOT-BAM") else own_copy(workdir, r2, lot)
        lots.append(lot + LOT_ROW.format(spec=READS_SPEC))
        # the demo's 10 mL extracted volume, which the sterility LOD claim of 10 CFU/mL needs
        units.append(f"{lot}\tSTER\tsterility_reads\ttest\t{path}\t{mate}\t\t10000\tshotgun\t\t\t")
        units += [f"{lot}\t{row}" for row in controls]
    append_rows(workdir / "config" / "lots.tsv", lots)
    append_rows(workdir / "config" / "units.tsv", units)
    # every lot's decision, and the reports of a few bad lots: a report costs more than most bad lots
    targets = [f"results/{row.split(chr(9))[0]}/release.json" for row in lots] + [
        f"results/{lot}/report.html" for lot in (*REPORTED, "DEMO-001", "DEMO-002")
    ]
    done = run_snakemake(project_root, workdir, *targets, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def _attributes(release: dict) -> dict[str, dict]:
    return {a["name"]: a for a in release["attributes"]}


FCS_CASES = [
    "FCS-TRUNC-IN-HEADER",
    "FCS-TRUNC-AT-HEADER-END",
    "FCS-TRUNC-IN-TEXT",
    "FCS-TRUNC-BEFORE-TEXT-END",
    "FCS-TRUNC-AT-TEXT-END",
    "FCS-TRUNC-IN-DATA",
    "FCS-TRUNC-BEFORE-DATA-END",
    "FCS-TRUNC-AT-DATA-END",
    "FCS-TRUNC-IN-ANALYSIS",
    "FCS-TEXT-GARBAGE",
    "FCS-TEXT-LOST-DELIMITER",
    "FCS-PAR-TOO-MANY",
    "FCS-PAR-TOO-FEW",
    "FCS-TOT-TOO-MANY",
    "FCS-TOT-TOO-FEW",
    "FCS-TOT-NOT-A-NUMBER",
    "FCS-DATATYPE-UNKNOWN",
    "FCS-DATATYPE-DOUBLE",
    "FCS-MISSING-SCATTER",
    "FCS-MISSING-MARKER",
    "FCS-DUPLICATE-CHANNEL",
    "FCS-DUPLICATE-SPILL",
    "FCS-NAN",
    "FCS-INF",
    "FCS-ZERO-EVENTS",
    "FCS-EMPTY",
    "FCS-GARBAGE",
    "FCS-MISSING",
]
READS_CASES = [
    "READS-TRUNCATED-GZIP",
    "READS-QUAL-LENGTH",
    "READS-GARBAGE",
    "READS-EMPTY",
    "READS-EMPTY-GZIP",
    "READS-MATES-DIFFER",
    "READS-BAM-NOT-BAM",
    "READS-BGZF-NOT-BAM",
    "READS-MISSING",
]
DATA_CASES = [*FCS_CASES, "FCS-BAD-CONTROL", *READS_CASES, "NO-UNIT"]
READ_CASES = ["READS-CRLF", "FLOW-PNB-16"]


def _file_of(lot: str) -> str:
    if lot in MISSING:
        return Path(MISSING[lot]).name
    if lot.endswith("NOT-BAM"):
        return f"{lot}.bam"
    if lot.startswith("READS-"):
        return f"{lot}_R1.fastq.gz"
    return f"{lot}.fcs"


@pytest.mark.parametrize("lot", DATA_CASES)
def test_a_bad_input_makes_its_lot_inconclusive_with_a_reason_naming_the_file(corpus_run: Path, lot: str):
    release = release_of(corpus_run, lot)
    assert release["status"] == "INCONCLUSIVE", (lot, release["status_reason"])
    attributes = _attributes(release)
    judged = {
        "FCS": FLOW_ATTRIBUTES,
        "REA": READS_ATTRIBUTES,
        "NO-": FLOW_ATTRIBUTES,
    }.get(lot[:3], POTENCY_ATTRIBUTES)
    if lot == "FCS-BAD-CONTROL":
        judged = POTENCY_ATTRIBUTES
    assert set(attributes) == set(judged)
    for name in judged:
        attribute = attributes[name]
        assert attribute["result"] == "INCONCLUSIVE" and attribute["value"] is None, (lot, name)
        reason = attribute["reason"]
        assert "\n" not in reason and "Traceback" not in reason, reason
        if lot == "NO-UNIT":
            assert reason == "Lot NO-UNIT has no phenotype unit with role test in the unit sheet."
        elif lot == "FCS-BAD-CONTROL":
            assert "FCS-BAD-CONTROL_unstimulated.fcs" in reason, reason
        else:
            assert _file_of(lot) in reason, (lot, reason)
            assert "internal error" not in reason, (lot, reason)
    if lot in REPORTED:
        assert (corpus_run / "results" / lot / "report.html").is_file()


def test_files_written_oddly_but_unambiguously_are_read_with_the_good_lots_values(corpus_run: Path):
    good = _attributes(release_of(corpus_run, "DEMO-001"))
    for lot, names in (
        ("READS-CRLF", READS_ATTRIBUTES),
        ("FLOW-PNB-16", FLOW_ATTRIBUTES),
        ("FLOW-GOOD", FLOW_ATTRIBUTES),
    ):
        release = release_of(corpus_run, lot)
        assert release["status"] == "RELEASE_CANDIDATE", (lot, release["status_reason"])
        attributes = _attributes(release)
        assert set(attributes) == set(names)
        for name, attribute in attributes.items():
            assert (attribute["result"], attribute["value"]) == (good[name]["result"], good[name]["value"])
    # $DATATYPE I over float bytes reads as integers: nonsense percentages, never a release candidate
    assert release_of(corpus_run, "FCS-INT-OF-FLOATS")["status"] == "NOT_RELEASABLE"


def test_no_bad_lot_touches_the_good_lots(corpus_run: Path, project_root: Path, tmp_path: Path, monkeypatch):
    first, second = release_of(corpus_run, "DEMO-001"), release_of(corpus_run, "DEMO-002")
    assert first["status"] == "RELEASE_CANDIDATE"
    assert [a["result"] for a in first["attributes"]] == ["PASS"] * 10
    assert second["status"] == "NOT_RELEASABLE"
    # the phenotype unit's metrics equal those of the same tube measured alone, outside any run
    monkeypatch.chdir(project_root)
    alone = measure_tube(
        "DEMO-001",
        "PHENO",
        "phenotype",
        "test",
        Path("resources/demo/DEMO-001/DEMO-001_phenotype.fcs"),
        Path(PHENO_PANEL),
        tmp_path,
    )
    in_run = record_of(corpus_run, "DEMO-001", "PHENO")
    assert alone.ok and in_run["metrics"] == to_json(alone.metrics)


# ----------------------------------------------------------------------- configurations refused

REFUSED_CASES = {
    "duplicate-lot-id": (
        "lots",
        lambda t: t + t.splitlines()[-1] + "\n",
        "config/lots.tsv row 4, column 'lot_id'",
    ),
    "duplicate-unit-id": (
        "units",
        lambda t: t + t.splitlines()[1] + "\n",
        "config/units.tsv row 22, column 'unit_id'",
    ),
    "unknown-assay": (
        "units",
        lambda t: t.replace("\tphenotype\t", "\tendotoxin\t", 1),
        "config/units.tsv row 2, column 'assay'",
    ),
    "unit-of-unknown-lot": (
        "units",
        lambda t: t + "DEMO-404" + t.splitlines()[1][8:] + "\n",
        "config/units.tsv row 22, column 'lot_id'",
    ),
    "lot-id-escapes-results": (
        "both",
        lambda t: t.replace("DEMO-002\t", "../DEMO-002\t"),
        "config/lots.tsv row 3, column 'lot_id'",
    ),
    "unit-id-escapes-results": (
        "units",
        lambda t: t.replace("\tPHENO\t", "\t../../PHENO\t", 1),
        "config/units.tsv row 2, column 'unit_id'",
    ),
    "lot-id-with-slash": (
        "both",
        lambda t: t.replace("DEMO-002\t", "DEMO/002\t"),
        "config/lots.tsv row 3, column 'lot_id'",
    ),
    "lot-id-with-semicolon": (
        "both",
        lambda t: t.replace("DEMO-002\t", "DEMO-002;rm -rf ~\t"),
        "config/lots.tsv row 3, column 'lot_id'",
    ),
    "lot-id-with-command-substitution": (
        "both",
        lambda t: t.replace("DEMO-002\t", "$(touch pwned)\t"),
        "config/lots.tsv row 3, column 'lot_id'",
    ),
    "unit-id-with-backticks": (
        "units",
        lambda t: t.replace("\tPHENO\t", "\t`id`\t", 1),
        "config/units.tsv row 2, column 'unit_id'",
    ),
    "unit-id-with-space": (
        "units",
        lambda t: t.replace("\tPHENO\t", "\tPHENO 1\t", 1),
        "config/units.tsv row 2, column 'unit_id'",
    ),
    "missing-panel-file": (
        "units",
        lambda t: t.replace("car_t_phenotype.yaml", "car_t_phenotyp.yaml", 1),
        "config/units.tsv, column 'template' of lot DEMO-001 unit PHENO: "
        "config/panels/car_t_phenotyp.yaml: file not found.",
    ),
    "lot-of-unknown-spec": (
        "lots",
        lambda t: t.replace("CART-DEMO-release", "CART-DEMO-relase", 1),
        "config/lots.tsv row 2, column 'spec'",
    ),
    "spec-metric-nothing-measures": (
        "specs",
        lambda t: t.replace("metric: viability_pct", "metric: viability_percent"),
        "config/specs.yaml, spec 'CART-DEMO-release', attribute 'viability', key 'metric': "
        "'viability_percent' is not a metric of panel config/panels/car_t_phenotype.yaml",
    ),
    "spec-assay-nothing-measures": (
        "specs",
        lambda t: t.replace("assay: phenotype", "assay: endotoxin", 1),
        "config/specs.yaml, spec 'CART-DEMO-release', attribute 'viability', key 'assay': "
        "'endotoxin' is not one of",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_CASES))
def test_a_bad_sheet_or_spec_is_refused_before_any_job_runs(project_root: Path, tmp_path: Path, case: str):
    sheet, edit, message = REFUSED_CASES[case]
    shutil.copytree(project_root / "config", tmp_path / "config")
    (tmp_path / "resources").mkdir()
    for name in ("demo", "reference"):
        os.symlink(project_root / "resources" / name, tmp_path / "resources" / name)
    for name in ("lots", "units") if sheet == "both" else (sheet,):
        path = tmp_path / "config" / (f"{name}.yaml" if name == "specs" else f"{name}.tsv")
        path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    refused = run_snakemake(project_root, tmp_path, "--dry-run")
    assert refused.returncode != 0
    assert "rapidrelease: the configuration is refused.\n" in refused.stderr
    assert message in refused.stderr, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "pwned").exists()
