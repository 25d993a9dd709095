"""The README of the demo folder, written with the files so that it can never disagree with them."""

from __future__ import annotations

import numpy as np
import polars as pl

from rapidrelease.demo.fcs_writer import CYTOMETER, CYTOMETER_SERIAL
from rapidrelease.demo.lots import DEMO_LOTS, DemoLot
from rapidrelease.demo.panel import CHANNELS, FLUORESCENCE, FSC_THRESHOLD, SPILLOVER
from rapidrelease.demo.reads import READ_PAIRS, READ_SOURCES, RUN_CONTROLS
from rapidrelease.demo.template import LOGICLE, TEMPLATE_NAME, THRESHOLDS

__all__ = ["demo_readme"]

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
| `SEQ-RUN-01/SEQ-RUN-01_{{NC1,NC2,PC}}_R1.fastq.gz`, `_R2.fastq.gz`, `_reads_truth.tsv` | the \
sequencing run's negative and positive controls, {read_pairs} read pairs each, with their truth |
| `{template}` | GatingML 2.0 template that gates both files |

## Regenerating

```
rapidrelease simulate-demo --out resources/demo   # default --seed 20261125
```

These files were written with seed {seed}. The same seed writes byte-identical files: every keyword
that would carry the time of writing ($DATE, $BTIM, $ETIM, EXPORT TIME) comes from the lot
definition in `scripts/rapidrelease/demo/lots.py`, and a unit test (`tests/unit/demo/`) regenerates
the folder and compares it with the committed copy. Change the simulator, then regenerate and commit
the files together.

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
"""

_LOT = """\
### {lot_id}: {description}

File `{lot_id}/{fcs_name}`. Simulation parameters (the probabilities each event is drawn from):

{parameters}

Truth (`{lot_id}/truth.tsv`, counted from the event labels, not from gating):

{truth}
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


def _lot_section(lot: DemoLot, truth: pl.DataFrame) -> str:
    parameters = [
        ["events", str(lot.n_events)],
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
    )


def demo_readme(seed: int, truths: dict[str, pl.DataFrame]) -> str:
    """Markdown for ``resources/demo/README.md``; ``truths`` maps each lot id to its truth table."""
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
    lots = "\n".join(_lot_section(lot, truths[lot.lot_id]) for lot in DEMO_LOTS)
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
    return _README.format(
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
