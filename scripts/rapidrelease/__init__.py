"""rapidrelease: release-candidate analytics for CAR-T lots.

Flow cytometry FCS files and sequencing reads in; for each lot, every quality attribute measured,
compared with the product specification, with its evidence, in ``release.json`` and ``report.html``.
"""

from __future__ import annotations

__version__ = "0.1.0"
