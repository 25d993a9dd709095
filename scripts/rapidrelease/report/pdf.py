"""A report printed to PDF by headless Chromium: the record a reviewer files and signs.

The page's own print style (``templates/base.html.j2``) lays it out: A4, each page headed with the
lot, product and status and "page x of y" (CSS Paged Media page-margin boxes with ``counter(page)``
and ``counter(pages)``, which Chromium draws from version 131), every plot drawn and no toolbar,
table rows unsplit. Chromium's own header and footer (date, URL) are switched off, so the page's
header is the only one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rapidrelease.errors import PrintError

__all__ = ["find_chromium", "print_pdf"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium to print with: ``$RAPIDRELEASE_CHROMIUM`` if set, else the first of chromium,
    chromium-browser, google-chrome on PATH; None when there is none."""
    named = os.environ.get("RAPIDRELEASE_CHROMIUM")
    if named:
        return named
    return next((found for name in _NAMES if (found := shutil.which(name))), None)


def print_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 300.0) -> None:
    """Print ``html_path`` (a self-contained report) to ``pdf_path`` with headless Chromium.

    The PDF is written whole or not at all (a ``.part`` file renamed). Raises :class:`PrintError`
    when no Chromium is found or it writes no PDF.
    """
    browser = find_chromium()
    if browser is None:
        raise PrintError(
            f"{pdf_path}: cannot print the report, no Chromium found (install Debian's chromium, "
            "or set RAPIDRELEASE_CHROMIUM)."
        )
    pdf_path = Path(pdf_path)
    partial = pdf_path.with_name(pdf_path.name + ".part")
    with tempfile.TemporaryDirectory(prefix="rapidrelease-print-") as profile:
        command = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-pdf-header-footer",  # the page's header, not the browser's date and file URL
            f"--user-data-dir={profile}",
            f"--print-to-pdf={partial}",
            Path(html_path).resolve().as_uri(),
        ]
        if os.geteuid() == 0:  # Chromium will not start its sandbox as root
            command.insert(1, "--no-sandbox")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            partial.unlink(missing_ok=True)
            raise PrintError(f"{pdf_path}: {browser} did not print the report: {exc}.") from exc
    if done.returncode != 0 or not partial.is_file() or partial.read_bytes()[:5] != b"%PDF-":
        partial.unlink(missing_ok=True)
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PrintError(f"{pdf_path}: {browser} wrote no PDF (exit {done.returncode}): {last}.")
    os.replace(partial, pdf_path)
