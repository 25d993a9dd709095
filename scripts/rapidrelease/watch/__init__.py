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
file metadata.

Whoever can write the inbox can write a delivery, so a delivery is confined (``delivery``): one
that is a link, or whose manifest is, is refused unread; every data path must resolve inside the
inbox; a manifest holds at most 1,000 rows; and panels come only from the site (``site``). Anything
wrong with one delivery refuses it in one sentence, and the scan goes on with the others.

A complete delivery whose content (manifests and data files' SHA-256) was not processed before is
checked as the site's configuration would be with its rows in place of the lot's rows; if that
configuration is valid the site's sheets are rewritten (atomically, every other row and comment
kept) and Snakemake runs for that lot's outputs only, so no other lot is touched. A refused
delivery is tried again only when it or the site's configuration changes; a failed Snakemake run
is tried again at the next scan. State, lock and log are the watcher's own, outside the inbox
(``state``): a second watcher on them exits at once, and a scan that finds nothing new changes
nothing.
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
