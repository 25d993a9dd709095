"""The README of the demo folder, written with the files so that it can never disagree with them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from rapidrelease.records import Release
from rapidrelease.synthetic.demo.archive import EVENTS, PROCESS, SITE_B_VIABILITY_OFFSET
from rapidrelease.synthetic.demo.cells import CYTOKINE_POSITIVE
from rapidrelease.synthetic.demo.fcs_writer import CYTOMETER, CYTOMETER_SERIAL
from rapidrelease.synthetic.demo.lots import DEMO_LOTS, FUNCTIONS, DemoLot
from rapidrelease.synthetic.demo.microbial import (
    AGGREGATES_PER_ML,
    FL1_THRESHOLD,
    FLOW_RATE_UL_PER_MIN,
    FLOW_RUN_ID,
    FRAGMENTS_PER_ML,
    MEDIUM_NAME,
    MICROBIAL_CHANNELS,
    MICROBIAL_CYTOMETER,
    MICROBIAL_CYTOMETER_SERIAL,
    NOISE_PER_ML,
    VOLUME_UL,
)
from rapidrelease.synthetic.demo.panel import (
    CHANNELS,
    FLUORESCENCE,
    FSC_THRESHOLD,
    POTENCY_MARKERS,
    SPILLOVER,
)
from rapidrelease.synthetic.demo.sterility_reads import READ_PAIRS, READ_SOURCES, RUN_CONTROLS
from rapidrelease.synthetic.demo.template import (
    LOGICLE,
    MICROBIAL_GATES,
    MICROBIAL_TEMPLATE_NAME,
    POTENCY_TEMPLATE_NAME,
    TEMPLATE_NAME,
    THRESHOLDS,
)

__all__ = ["demo_readme"]

_FUNCTION_NAMES = {"cd107a": "CD107a", "ifng": "IFN-γ", "tnfa": "TNF-α", "il2": "IL-2"}

_README = """\
# Demo lots: SYNTHETIC flow cytometry and sequencing data

**Every file in this folder is simulated. None of it is a measurement of real cells, of a real
patient or of a real CAR-T product; use it only to demonstrate and test rapidrelease.** There are
no public CAR-T release FCS files, so the demo that `snakemake --cores all` runs by default uses
these. This README is written by the simulator together with the data: do not edit it by hand.

## Contents

| path | what |
|---|---|
| `DEMO-00N/DEMO-00N_phenotype.fcs` | one phenotype tube per lot: FCS 3.1, float32 list mode, \
uncompensated, with `$SPILLOVER` |
| `DEMO-00N/truth.tsv` | the lot's release metrics, counted from the simulator's event labels |
| `DEMO-00N/events_truth.parquet` | one row per event, in file order: `event`, `kind` (debris, \
doublet, dead, live), `lineage` (T, NK, B, monocyte), `cd3`, `car`, `cd4`, `cd8`, `cd45ra`, `ccr7` \
(null for debris and doublets) |
| `DEMO-00N/DEMO-00N_sterility_R1.fastq.gz`, `_R2.fastq.gz` | one sterility sample per lot: \
{read_pairs} simulated read pairs, 2 × 150 bp |
| `DEMO-00N/DEMO-00N_sterility_reads_truth.tsv` | read pairs drawn from each source (the truth of \
the sequencing unit) |
| `DEMO-00N/DEMO-00N_potency_stimulated.fcs`, `_potency_unstimulated.fcs` | the potency pair per \
lot: the same instrument, dyes and `$SPILLOVER` as the phenotype tube, with intracellular cytokines \
and CD107a, after 5 h with CD19 antigen or with medium only |
| `DEMO-00N/DEMO-00N_potency_stimulated_events_truth.parquet`, \
`_potency_unstimulated_events_truth.parquet` | one row per event, in file order: `event`, `kind`, \
`lineage`, `cd3`, `car`, `activated`, `cd107a`, `ifng`, `tnfa`, `il2` (null for debris and doublets) |
| `DEMO-00N/potency_truth.tsv` | the lot's potency metrics (% of live CAR+ T cells) in each tube and \
net, counted from the event labels |
| `DEMO-00N/DEMO-00N_microbial.fcs` | one microbial-flow test tube per lot: SYBR Green I / PI, \
{volume:g} µL acquired (`$VOL`), heights on a 24-bit scale |
| `DEMO-00N/DEMO-00N_apheresis.fcs` | the lot's starting material: the patient's leukapheresis \
unit stained with the phenotype panel at receipt, twelve days before the drug product was sampled \
(no CAR+ cells yet), accepted against its own specification |
| `DEMO-00N/apheresis_truth.tsv` | the starting material's viability, CD3+ of live and CAR+ of CD3+ \
(0), counted from the simulator's event labels |
| `DEMO-00N/microbial_truth.tsv` | the microbes the test tube holds (none: both lots are sterile) |
| `SEQ-RUN-01/SEQ-RUN-01_{{NC1,NC2,PC}}_R1.fastq.gz`, `_R2.fastq.gz`, `_reads_truth.tsv` | the \
sequencing run's negative and positive controls, {read_pairs} read pairs each, with their truth |
| `DEMO-00N/RunInfo.xml`, `RTAComplete.txt`, and the same in `SEQ-RUN-01/` | the sequencing run's \
metadata, as an Illumina run folder holds it: its start (`<Date>`) and the end of real-time \
analysis, which place the run on the lot's timeline |
| `{flow_run}/{medium}`, `{flow_run}_medium_truth.tsv` | the microbial-flow run's sterile-medium \
negative control, with its truth |
| `{template}` | GatingML 2.0 template that gates the phenotype tubes |
| `{potency_template}` | GatingML 2.0 template that gates the potency tubes down to CAR+ T cells |
| `{microbial_template}` | GatingML 2.0 template that gates the microbial-flow tubes |
| `archive/HIST-0NN/release.json` | synthetic history: {n_archived} earlier lots' sealed decisions, no data \
files, for the lots index's control charts and site comparison (below) |

## Regenerating

```
rapidrelease simulate-demo --out resources/demo   # default --seed 20261125
```

These files were written with seed {seed}. The same seed writes byte-identical files: every keyword
that would carry the time of writing ($DATE, $BTIM, $ETIM, EXPORT TIME) comes from the lot
definition in `scripts/rapidrelease/synthetic/demo/lots.py`, and a unit test
(`tests/unit/synthetic/demo/`) regenerates the folder and compares it with the committed copy. Change
the simulator, then regenerate and commit the files together.

## Instrument and panel

A simulated BD {cytometer} (`$CYT` {cytometer}, `$CYTSN` {serial}) with blue, yellow-green, red and
violet lasers, acquiring one 7-colour CAR-T phenotype tube. Area and height parameters have `$PnR`
262144, `$PnE` 0,0 and `$PnG` 1; Time counts 10 ms ticks (`$TIMESTEP` 0.01); the trigger is FSC at
{threshold}. The CAR is detected with FITC-labelled CD19 protein, viability with a fixable near-IR
amine-reactive dye.

{panel}

`$SPILLOVER` (FCS 3.1 convention: row = dye, column = detector; observed = true × matrix):

{spillover}

## How the events are simulated

Each event is drawn on its own from a `numpy.random.Generator` seeded with (seed, lot number):

- **What it is**: debris, a doublet (two cells in one pulse), or a single cell that is dead or
  alive. Single cells are T cells (CD3+) or, for the CD3− rest, NK cells, B cells and monocytes.
  T cells carry the CAR or not; are CD4+CD8−, CD4+CD8+, CD4−CD8+ or CD4−CD8−; and have a memory
  phenotype: CD45RA+CCR7+ (naive/stem-like), CD45RA−CCR7+ (central memory), CD45RA−CCR7−
  (effector memory) or CD45RA+CCR7− (TEMRA). The probabilities are per lot (below).
- **Scatter**: log-normal FSC-A and SSC-A per lineage (activated T-cell blasts FSC-A ≈ 95 000),
  correlated; dead cells shrink and become granular; debris is small, below the cells, and cut by
  the FSC trigger. FSC-H ≈ 0.93 × FSC-A for a single cell; a doublet's areas add while its height
  rises much less, so doublets fall below the diagonal.
- **Staining**: each marker a cell carries is a log-normal amount of dye (CAR median 5000 and
  broad; CCR7 dim, median 3000) plus a little unspecific binding; dead cells lose antigen, stick
  more, and take up the viability dye brightly (a few dying cells only partly).
- **Detection**: the light in each detector is the dye amounts × `$SPILLOVER` plus the cell's
  autofluorescence (scaled by its size), counted as Poisson photoelectrons and read with Gaussian
  electronic noise; so compensated negatives spread around their autofluorescence, bright dyes
  spread into the detectors they spill into, and compensating with the file's own `$SPILLOVER`
  recovers the dye amounts.
- **Acquisition**: events arrive as a Poisson process at about 2000 events/s with a slow drift;
  Time increases through the file.

## Gating template

`{template}` (GatingML 2.0). Fluorescence dimensions use `compensation-ref="FCS"` (the file's
`$SPILLOVER`) and a logicle transform (T=262144, W=0.5, M=4.5, A=0); scatter dimensions are
uncompensated and untransformed. Gate IDs spell +/− as `pos`/`neg`: GatingML 2.0 types IDs as
xs:ID, which cannot contain `+`, and FlowKit validates templates against the schema.

```
Cells               polygon FSC-A × SSC-A (debris out)
└ Singlets          polygon FSC-A × FSC-H (0.8–1.2 × FSC-A)
  └ Live            Viability low
    └ CD3pos        CD3 high
      └ CARpos      CAR above the negative population
        ├ CD4vCD8   CD4posCD8neg, CD4posCD8pos, CD4negCD8pos, CD4negCD8neg
        └ Memory    CD45RAposCCR7pos, CD45RAnegCCR7pos, CD45RAnegCCR7neg, CD45RAposCCR7neg
```

Boundaries sit in the valleys between the simulated populations:

{thresholds}

## Potency tubes

Each lot's cells were also stimulated for 5 h with plate-bound CD19 antigen (the *stimulated*
tube) or with medium only (the *unstimulated* tube), with brefeldin A and monensin keeping
cytokines in the cell and anti-CD107a present throughout; then stained for CAR, CD3, viability and,
intracellularly, IFN-γ, TNF-α and IL-2, and acquired on the same {cytometer} with the same dyes,
voltages and `$SPILLOVER`. Four detectors carry other markers than in the phenotype tube:

{potency_panel}

- **The cells** are drawn exactly as for the phenotype tube (same lot fractions: debris, doublets,
  dead, T/NK/B/monocytes, CAR+), from each tube's own random stream, 30 000 events per tube
  (50 000 for DEMO-002, whose 9 % CAR+ would otherwise leave fewer than the 2 000 CAR+ T cells of
  the unstimulated tube that a 99.5th-percentile threshold needs).
- **Who responds**: in the stimulated tube each live CAR+ T cell becomes *activated* with the
  lot's probability; an activated cell shows each function independently with its own
  conditional probability, so the functions are correlated and polyfunctional cells are common.
  Live CAR− T cells of the stimulated tube respond at a bystander rate, and every live T cell of
  both tubes at a small spontaneous background rate, per function. Dead cells do not respond.
- **Staining**: every cell carries the dim unspecific staining of these dyes that the phenotype
  tube's negatives have (dead cells more, being sticky); a responder adds a log-normal specific
  signal, medians {cytokine_medians} (area units, sigma of ln 0.6–0.7), about 1.5 decades above
  the compensated negatives, with some overlap.
- **Detection and acquisition** are the phenotype tube's.

The potency template `{potency_template}` has the phenotype template's Cells, Singlets, Live,
CD3pos and CARpos gates (same IDs and boundaries) and no gate below CARpos: cytokine positivity is
set per lot from the unstimulated tube by the pipeline, not fixed in the template.

Potency truth (`potency_truth.tsv`): for each metric the % of live CAR+ T cells of the stimulated
tube (gross), of the unstimulated tube, and the net difference, with the event counts.
`polyfunctional_pct_car` counts cells showing at least two of the four functions.

## Microbial flow

A simulated {micro_cytometer} (`$CYT` {micro_cytometer}, `$CYTSN` {micro_serial}): one blue laser;
heights only, 24-bit (`$PnR` 16777215), float data, uncompensated; Time counts 10 ms ticks
(`$TIMESTEP` 0.01); the trigger is FL1-H at {fl1_threshold}. A fixed volume of {volume:g} µL is
acquired at {flow_rate:g} µL/min; `$VOL` gives it in nanolitres ({volume_nl:g}).

{micro_panel}

Each lot's product sample (lysed and diluted) and the run's sterile culture medium
(`{flow_run}/{medium}`, the negative control both lots' test tubes are called against) are
stained with SYBR Green I (nucleic acid, every cell) and propidium iodide (PI, membrane-damaged
cells only). The events, as Poisson counts of concentration × volume:

| particles | per mL | in | FL1-H (SYBR) | SSC-H | FL3-H (PI) |
|---|---:|---|---|---|---|
| instrument noise, medium particles | {noise:g} | every tube | just above the trigger | low | low |
| stain aggregates | {aggregates:g} | every tube | bright (≈ 120 000) | small | SYBR's tail only |
| product fragments | {fragments:g} | test tubes | dim (≈ 4 000), wide | wide (≈ 60 000), \
grows with SYBR | dim |
| microbes | the lot's | contaminated tubes only | ≈ 400 000 | small (≈ 6 000) | PI-bright \
(≈ 900 000) if damaged |

Both demo lots are sterile: their test tubes hold no microbes, and the few events in the microbial
gate are stain aggregates, as in the medium control, so comparing them with the medium control
calls NOT_DETECTED. The simulator (`rapidrelease.synthetic.demo.microbial.simulate_microbial_tube`)
takes a microbe concentration, so the tests also make contaminated tubes.

`{microbial_template}` (GatingML 2.0) gates raw heights (uncompensated, untransformed):

```
{microbial_tree}
```

Microbial truth (`microbial_truth.tsv`, `{flow_run}_medium_truth.tsv`, from the event labels):

{microbial_truth}

## Sequencing: the sterility sample

Each lot has one sequencing unit (`STER`, assay `sterility_reads`): a DNA sample of the product
sequenced paired-end. Its reads are simulated (Illumina HiSeq error model: calibrated qualities,
substitutions rising from 0.1 % to 1 % along the read, rare indels and no-calls; inserts 350 ±
50 bp) from sequences of the default reference panel, `resources/reference/panel/` (registry data,
see its README), in these shares of read pairs:

{read_sources}

Read names carry the truth: `@<source>|<taxid>|<pair number>/1`. Neither lot has a contaminant;
the host reads come from the same human sequence the panel indexes, so nearly all of them classify
as human (real host reads mostly miss a partial human index; the classifier's tests cover that).

Both samples were sequenced in run `SEQ-RUN-01` with its controls, which both lots' unit sheets
list (`STER-NC1`, `STER-NC2`, `STER-PC`): the contaminant calls compare each lot's sample with the
negative controls, and the positive control's spike gives the run's limit of detection.

{controls}

## The lots

{lots}
Truth metrics: `viability_pct` = live / (live + dead) single cells; `cd3_pct_live` = CD3+ of live;
`car_pct_cd3` = CAR+ of CD3+ (live T cells); `cd4_pct_car` and `cd8_pct_car` = CD4+CD8− and
CD4−CD8+ of CAR+; `cd4_cd8_ratio` = CD4+CD8− / CD4−CD8+ CAR+ events; the four memory metrics are
the CD45RA/CCR7 quadrants of CAR+. Gating the files with the template reproduces every percentage
within 2 percentage points and the ratio within 10 % (tested).

## Synthetic history: `archive/`

**Synthetic, like everything here: these lots were never made or measured.** The lots index draws
Phase I control limits from 20 baseline lots and compares two sites' means from two lots each,
more than one run holds, so a lab points config.yaml `trends.archive` at its earlier lots' sealed
decisions; the demo's config points at `archive/`: {n_archived} earlier lots of the same product over
SITE-A and SITE-B, collected {first} to {last}, before the demo lots.

No event was simulated for them. The metrics each lot's units would have reported are drawn around
the demo lots' own with a realistic lot-to-lot spread (mean ± SD: {process}; CD4:CD8 ratio
log-normal around 1.35; viable cells log-normal around 1.2 × 10⁹ and patients of 74 ± 12 kg for the
dose; SITE-B's viability {offset:+g} points), a few lots with an assignable cause
(`scripts/rapidrelease/synthetic/demo/archive.py`), and handed to rapidrelease's own release
decision with the demo's specifications (`config/specs.yaml`), then written sealed as
`archive/<lot>/release.json`. Every unit's data file is null and each audit block says
"synthetic".

{archive}
"""

_LOT = """\
### {lot_id}: {description}

File `{lot_id}/{fcs_name}`. Simulation parameters (the probabilities each event is drawn from):

{parameters}

Truth (`{lot_id}/truth.tsv`, counted from the event labels, not from gating):

{truth}

Potency tubes `{lot_id}/{stimulated_name}` and `{lot_id}/{unstimulated_name}`. Response parameters
(probabilities per live T cell):

{potency_parameters}

Potency truth (`{lot_id}/potency_truth.tsv`, % of live CAR+ T cells, counted from the event labels):

{potency_truth}
"""


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _logicle_inverse(value: float) -> float:
    import flowkit

    xform = flowkit.transforms.LogicleTransform(LOGICLE["T"], LOGICLE["W"], LOGICLE["M"], LOGICLE["A"])
    return float(xform.inverse(np.array([[value]]))[0, 0])


def _percentages(values: tuple[float, ...]) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in values)


def _lot_section(lot: DemoLot, truth: pl.DataFrame, potency_truth: pl.DataFrame) -> str:
    parameters = [
        ["events", str(lot.n_events)],
        ["events per potency tube", str(lot.potency_n_events or lot.n_events)],
        ["debris (% of events)", f"{100 * lot.debris_fraction:.0f}"],
        ["doublets (% of cell events)", f"{100 * lot.doublet_fraction:.0f}"],
        ["viability (% of single cells)", f"{100 * lot.viability:.0f}"],
        ["CD3+ (% of live)", f"{100 * lot.cd3_of_live:.0f}"],
        ["CAR+ (% of CD3+)", f"{100 * lot.car_of_cd3:.0f}"],
        ["CD4+CD8− / CD4+CD8+ / CD4−CD8+ / CD4−CD8− of CAR+ (%)", _percentages(lot.cd4_cd8_car_pos)],
        ["the same of CAR− T cells (%)", _percentages(lot.cd4_cd8_car_neg)],
        [
            "CD45RA+CCR7+ / CD45RA−CCR7+ / CD45RA−CCR7− / CD45RA+CCR7− of CD4+ T cells (%)",
            _percentages(lot.memory_cd4),
        ],
        ["the same of CD4− T cells (%)", _percentages(lot.memory_cd8)],
        ["mean acquisition rate (events/s)", f"{lot.event_rate_per_s:.0f}"],
        ["first event ($DATE $BTIM)", f"{lot.acquisition_start:%Y-%m-%d %H:%M:%S}"],
    ]
    truth_rows = [
        [f"`{metric}`", f"{value:.2f}", str(numerator), str(denominator)]
        for metric, value, numerator, denominator in truth.iter_rows()
    ]
    response = lot.potency
    potency_parameters = [
        ["activated (% of live CAR+ T cells, stimulated tube)", f"{100 * response.activated:.0f}"],
        *(
            [
                f"{_FUNCTION_NAMES[function]}: specific (% of live CAR+ T cells) / given activation (%)",
                f"{100 * getattr(response, function):.0f} / {100 * given:.1f}",
            ]
            for function, given in zip(FUNCTIONS, response.given_activation(), strict=True)
        ),
        [
            "bystander, per function (% of live CAR− T cells, stimulated tube)",
            f"{100 * response.bystander:g}",
        ],
        ["background, per function (% of live T cells, both tubes)", f"{100 * response.background:g}"],
        [
            "first event, unstimulated / stimulated",
            f"{lot.unstimulated_start:%H:%M:%S} / {lot.stimulated_start:%H:%M:%S}",
        ],
    ]
    potency_rows = [
        [
            f"`{row['metric']}`",
            f"{row['stimulated']:.2f} ({row['stimulated_numerator_events']}"
            f"/{row['stimulated_denominator_events']})",
            f"{row['unstimulated']:.2f} ({row['unstimulated_numerator_events']}"
            f"/{row['unstimulated_denominator_events']})",
            f"{row['net']:.2f}",
        ]
        for row in potency_truth.iter_rows(named=True)
    ]
    return _LOT.format(
        lot_id=lot.lot_id,
        description=lot.description,
        fcs_name=lot.fcs_name,
        parameters=_table(["parameter", "value"], ["---", "---"], parameters),
        truth=_table(
            ["metric", "value", "numerator events", "denominator events"],
            ["---", "---:", "---:", "---:"],
            truth_rows,
        ),
        stimulated_name=lot.potency_fcs_name(True),
        unstimulated_name=lot.potency_fcs_name(False),
        potency_parameters=_table(["parameter", "value"], ["---", "---"], potency_parameters),
        potency_truth=_table(
            ["metric", "stimulated % (events)", "unstimulated % (events)", "net (points)"],
            ["---", "---:", "---:", "---:"],
            potency_rows,
        ),
    )


def _microbial_tree() -> str:
    """The microbial template's gates as an indented tree, one gate a line with its bounds."""
    lines = []
    for gate_id, (parent, bounds) in MICROBIAL_GATES.items():
        limits = []
        for channel, (lo, hi) in bounds.items():
            parts = ([f"≥ {lo:g}"] if lo is not None else []) + ([f"≤ {hi:g}"] if hi is not None else [])
            limits.append(f"{channel} {' and '.join(parts)}")
        label = f"└ {gate_id}" if parent else gate_id
        lines.append(f"{label:<12} rectangle  {', '.join(limits)}")
    return "\n".join(lines)


def demo_readme(
    seed: int,
    truths: dict[str, pl.DataFrame],
    potency_truths: dict[str, pl.DataFrame],
    microbial_truths: dict[str, pl.DataFrame],
    archive: Sequence[Release] = (),
) -> str:
    """Markdown for ``resources/demo/README.md``.

    ``archive`` are the synthetic history's decisions in collection order
    (:mod:`rapidrelease.synthetic.demo.archive`).

    ``truths`` and ``potency_truths`` map each lot id to its phenotype and potency truth tables;
    ``microbial_truths`` maps each lot id, and the flow run id for its medium control, to the
    microbial truth table.
    """
    panel = _table(
        ["$PnN", "$PnS", "dye", "laser (nm)", "filter", "$PnV (V)"],
        ["---", "---", "---", "---:", "---", "---:"],
        [
            [f"`{c.pnn}`", c.pns, c.fluorochrome, str(c.laser_nm or ""), c.filter or "", str(c.voltage or "")]
            for c in CHANNELS
        ],
    )
    dye_of = {c.pnn: c.fluorochrome for c in CHANNELS}
    spillover = _table(
        ["dye \\ detector", *(f"`{d}`" for d in FLUORESCENCE)],
        ["---", *(["---:"] * len(FLUORESCENCE))],
        [[dye_of[d], *(f"{v:.3f}" for v in row)] for d, row in zip(FLUORESCENCE, SPILLOVER, strict=True)],
    )
    marker_of = {c.pnn: c.pns for c in CHANNELS}
    thresholds = _table(
        ["detector", "marker", "boundary (logicle)", "≈ compensated value"],
        ["---", "---", "---:", "---:"],
        [
            [f"`{d}`", marker_of[d], f"{v:.2f}", f"{round(_logicle_inverse(v), -1):.0f}"]
            for d, v in THRESHOLDS.items()
        ],
    )
    lots = "\n".join(_lot_section(lot, truths[lot.lot_id], potency_truths[lot.lot_id]) for lot in DEMO_LOTS)
    potency_panel = _table(
        ["$PnN", "dye", "phenotype tube $PnS", "potency tubes $PnS"],
        ["---", "---", "---", "---"],
        [
            [f"`{c.pnn}`", c.fluorochrome, c.pns, POTENCY_MARKERS[c.pnn]]
            for c in CHANNELS
            if c.pnn in POTENCY_MARKERS
        ],
    )
    micro_panel = _table(
        ["$PnN", "$PnS", "dye", "laser (nm)", "filter"],
        ["---", "---", "---", "---:", "---"],
        [
            [f"`{c.pnn}`", c.pns, c.fluorochrome, str(c.laser_nm or ""), c.filter or ""]
            for c in MICROBIAL_CHANNELS
        ],
    )
    tubes = [*(lot.lot_id for lot in DEMO_LOTS), FLOW_RUN_ID]
    metrics = microbial_truths[tubes[0]]["metric"].to_list()
    microbial_truth = _table(
        ["tube", *(f"`{m}`" for m in metrics)],
        ["---", *(["---:"] * len(metrics))],
        [
            [
                f"`{tube}/{tube}_microbial.fcs`" if tube != FLOW_RUN_ID else f"`{FLOW_RUN_ID}/{MEDIUM_NAME}`",
                *(f"{v:g}" for v in microbial_truths[tube]["value"]),
            ]
            for tube in tubes
        ],
    )
    read_sources = _table(
        ["source", "category", "taxid", "panel file", "share of read pairs (%)"],
        ["---", "---", "---:", "---", "---:"],
        [[s.name, s.category, str(s.taxid), f"`{s.fasta}`", f"{100 * s.share:.1f}"] for s in READ_SOURCES],
    )
    controls = _table(
        ["unit", "role", "composition (share of read pairs, %)", "spike"],
        ["---", "---", "---", "---"],
        [
            [
                f"`STER-{c.unit_id}`",
                c.role,
                ", ".join(f"{s.name} {100 * s.share:g}" for s in c.sources),
                f"{c.spike_organism} at {c.spike_concentration:g} {c.spike_unit}" if c.spike_organism else "",
            ]
            for c in RUN_CONTROLS
        ],
    )
    events = {f"HIST-{number:03d}": what for number, (what, _) in EVENTS.items()}
    archive_table = _table(
        [
            "lot",
            "site",
            "collected",
            "status",
            "viability (%)",
            "CAR+ of CD3+ (%)",
            "dose (cells/kg)",
            "event",
        ],
        ["---", "---", "---", "---", "---:", "---:", "---:", "---"],
        [
            [
                f"`{r.lot.lot_id}`",
                r.lot.site,
                r.lot.collected_at[:10],
                r.status,
                *(
                    next((a.value_text or "—" for a in r.attributes if a.name == name), "—")
                    for name in ("viability", "car_of_cd3", "dose_per_kg")
                ),
                events.get(r.lot.lot_id, "" if r.status == "RELEASE_CANDIDATE" else r.status_reason),
            ]
            for r in archive
        ],
    )
    return _README.format(
        n_archived=len(archive),
        first=archive[0].lot.collected_at[:10] if archive else "—",
        last=archive[-1].lot.collected_at[:10] if archive else "—",
        process="; ".join(
            f"`{name}` {mean:g} ± {sd:g}"
            for name, (mean, sd) in PROCESS.items()
            if not name.startswith("apheresis")
        ),
        offset=SITE_B_VIABILITY_OFFSET,
        archive=archive_table,
        potency_template=POTENCY_TEMPLATE_NAME,
        microbial_template=MICROBIAL_TEMPLATE_NAME,
        potency_panel=potency_panel,
        cytokine_medians=", ".join(
            f"{_FUNCTION_NAMES[function]} {median:.0f}"
            for function, (median, _) in zip(FUNCTIONS, CYTOKINE_POSITIVE, strict=True)
        ),
        micro_cytometer=MICROBIAL_CYTOMETER,
        micro_serial=MICROBIAL_CYTOMETER_SERIAL,
        micro_panel=micro_panel,
        fl1_threshold=f"{FL1_THRESHOLD:.0f}",
        volume=VOLUME_UL,
        volume_nl=1000 * VOLUME_UL,
        flow_rate=FLOW_RATE_UL_PER_MIN,
        flow_run=FLOW_RUN_ID,
        medium=MEDIUM_NAME,
        noise=NOISE_PER_ML,
        aggregates=AGGREGATES_PER_ML,
        fragments=FRAGMENTS_PER_ML,
        microbial_tree=_microbial_tree(),
        microbial_truth=microbial_truth,
        controls=controls,
        read_pairs=f"{READ_PAIRS:,}",
        read_sources=read_sources,
        template=TEMPLATE_NAME,
        seed=seed,
        cytometer=CYTOMETER,
        serial=CYTOMETER_SERIAL,
        threshold=f"{FSC_THRESHOLD:.0f}",
        panel=panel,
        spillover=spillover,
        thresholds=thresholds,
        lots=lots,
    )
