"""Scheduled runs on new instrument output: register complete lot deliveries and run them.

An inbox is a folder the instruments and the LIMS write into. A **delivery** is a folder directly in
the inbox that holds a lot manifest, as the LIMS drops it::

    <inbox>/<delivery>/lot.tsv     the lot's one row, columns as config/lots.tsv
    <inbox>/<delivery>/units.tsv   its units, columns as config/units.tsv; data paths relative to
                                   this folder, e.g. DEMO-001_phenotype.fcs or
                                   ../RUN-0412/Fastq/S1_R1.fastq.gz (a sequencing run's folder in
                                   the same inbox, shared by the lots it sequenced)

A delivery is complete when both manifests and every file its units name exist, none of them has
changed (content or metadata) for ``stable_seconds`` — a file still being copied keeps changing —
and every instrument run folder holding one of those files carries its completion marker:
``CopyComplete.txt`` or ``RTAComplete.txt`` beside an Illumina ``RunInfo.xml``, a
``final_summary_*.txt`` in an Oxford Nanopore run folder. Until then nothing of it is read but
file metadata. A data path that leaves the inbox, or a manifest that is not one lot, refuses the
delivery.

A complete delivery that is new, or changed since it was processed, is checked as the site's
configuration would be with its rows in place of the lot's rows; if that configuration is valid the
site's sheets are rewritten (atomically, every other row and comment kept) and Snakemake runs for
that lot's outputs only, so no other lot is touched. A refused delivery is logged with every problem
and tried again only when it or the site's configuration changes; a failed Snakemake run is tried
again at the next scan. State, lock and log live in ``<inbox>/.rapidrelease-watch/``: a second
watcher on the same inbox exits at once, and a scan that finds nothing new changes nothing.
"""

from rapidrelease.watch.delivery import (
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_ROWS,
    READY,
    REFUSED,
    WAITING,
    Delivery,
    examine_delivery,
    scan_inbox,
)
from rapidrelease.watch.scan import watch
from rapidrelease.watch.site import register_delivery
from rapidrelease.watch.state import STATE_DIR_NAME, WatchLockedError, WatchStateError, default_state_dir

__all__ = [
    "WatchLockedError",
    "WatchStateError",
    "default_state_dir",
    "Delivery",
    "examine_delivery",
    "register_delivery",
    "scan_inbox",
    "watch",
    "STATE_DIR_NAME",
    "WAITING",
    "READY",
    "REFUSED",
    "MAX_MANIFEST_ROWS",
    "MAX_MANIFEST_BYTES",
]
