"""Sterility and mycoplasma calls from classified reads: controls, background, limit of detection.

:mod:`~rapidrelease.sterility.checklist` holds the organisms every report must account for, and
:mod:`~rapidrelease.sterility.calls` turns a unit's per-taxon reads and its lot's negative and
positive controls into DETECTED / NOT_DETECTED calls, the run's limit of detection and its validity.
"""
