"""The watcher's loop: scan the inbox, register what became complete, run Snakemake for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rapidrelease.config.schemas import WORKFLOW_DIR
from rapidrelease.errors import ConfigError, RapidReleaseError
from rapidrelease.watch.delivery import REFUSED, WAITING, Delivery, content_digest, scan_inbox
from rapidrelease.watch.site import register_delivery, site_digest, site_sheets
from rapidrelease.watch.state import (
    STATE_FILE,
    StateFolder,
    WatchStateError,
    default_state_dir,
    printable,
    utc_now,
)

__all__ = ["watch"]

# a delivery whose content was processed before, under this folder name or another
_SAME_CONTENT = "same content"


class _Log:
    """Each line to the state folder's watch.log and to ``echo``, with a UTC time stamp.

    Characters that could forge a line or move a terminal's cursor (a manifest cell is quoted in a
    refusal) are shown escaped.
    """

    def __init__(self, fd: int, echo: TextIO) -> None:
        self.fd, self.echo = fd, echo

    def __call__(self, message: str) -> None:
        line = f"{utc_now()} {printable(message)}"
        os.write(self.fd, (line + "\n").encode("utf-8"))
        print(line, file=self.echo, flush=True)


def _run_snakemake(
    lot_ids: Sequence[str], config_path: Path, settings: Mapping[str, Any], options: _Options, log: _Log
) -> int:
    """Snakemake for the lots' decisions and reports only; its output goes to a log of its own."""
    results = Path(str(settings.get("results", "results")))
    targets = [str(results / lot / name) for lot in lot_ids for name in ("release.json", "report.html")]
    command = [
        str(Path(sys.executable).parent / "snakemake"),
        "--snakefile", str(options.snakefile),
        "--configfile", str(config_path),
        "--cores", str(options.cores),
        *options.snakemake_args,
        *targets,
    ]  # fmt: skip
    run_log, fd = options.state.new_run_log(f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.log")
    with os.fdopen(fd, "w+b") as out:
        log(f"running snakemake for {', '.join(lot_ids)} (output in {run_log}): {' '.join(command)}")
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
        if code == 0:
            log(f"snakemake finished {', '.join(lot_ids)}.")
            return code
        out.seek(max(0, os.fstat(out.fileno()).st_size - 4096))
        tail = out.read().decode("utf-8", "replace").strip().splitlines()[-5:]
    log(f"snakemake exited {code} for {', '.join(lot_ids)}; it is tried again at the next scan:\n"
        + "\n".join(tail))  # fmt: skip
    return code


@dataclass(frozen=True)
class _Options:
    state: StateFolder
    stable_seconds: float
    cores: int
    snakefile: Path
    snakemake_args: tuple[str, ...]


def watch(
    inbox: Path,
    config_path: Path = Path("config/config.yaml"),
    once: bool = False,
    interval: float = 300.0,
    stable_seconds: float = 60.0,
    cores: int = 1,
    snakemake_args: Sequence[str] = (),
    snakefile: Path | None = None,
    echo: TextIO = sys.stderr,
    state_dir: Path | None = None,
) -> list[str]:
    """Scan ``inbox`` once, or every ``interval`` seconds, and run Snakemake for new complete lots.

    Snakemake runs ``snakefile`` (default: this installation's workflow/Snakefile) in the current
    folder, the site's, where ``config_path``'s relative paths start. The watcher's state, lock and
    log are in ``state_dir`` (default: ``.rapidrelease-watch`` beside ``config_path``), which must
    be outside the inbox. Returns the lot ids run by the last scan. Raises WatchLockedError when
    another watcher holds the state folder, WatchStateError when it cannot be trusted; a problem
    during one scan of a continuous watch is logged and the next scan goes on.
    """
    inbox, config_path = Path(inbox), Path(config_path)
    if not inbox.is_dir():
        raise ConfigError(f"{inbox}: the inbox is not a folder.")
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found.")
    state = StateFolder(default_state_dir(config_path) if state_dir is None else Path(state_dir), inbox)
    try:
        options = _Options(
            state=state,
            stable_seconds=stable_seconds,
            cores=cores,
            snakefile=Path(snakefile) if snakefile is not None else WORKFLOW_DIR / "Snakefile",
            snakemake_args=tuple(snakemake_args),
        )
        with state.lock(), os.fdopen(state.open_log(), "ab", buffering=0) as log_file:
            log = _Log(log_file.fileno(), echo)
            while True:
                try:
                    ran = _scan_once(inbox, config_path, options, log)
                except RapidReleaseError as exc:
                    if once:
                        raise
                    log(f"this scan stopped: {exc}")
                    ran = []
                if once:
                    return ran
                time.sleep(interval)
    finally:
        state.close()


def _load_state(folder: StateFolder, inbox: Path) -> dict[str, Any]:
    """The state of the folder's inbox; a state folder serves one inbox.

    ``deliveries`` holds each delivery folder as last seen, by name; ``processed`` each delivery
    Snakemake finished, by its content digest, so the same content under another name is known.
    """
    real_inbox = os.path.realpath(inbox)
    saved = folder.read_state()
    if saved is None:
        # written at the end of the first scan, so the folder is bound to this inbox from then on
        return {"inbox": real_inbox, "deliveries": {}, "processed": {}, "new": True}
    if saved.get("inbox") != real_inbox or not isinstance(saved.get("deliveries"), dict):
        raise WatchStateError(
            f"{folder.path / STATE_FILE}: holds the state of inbox {saved.get('inbox')!r}, not of "
            f"{real_inbox}; give each inbox a state folder of its own (--state)."
        )
    saved.setdefault("processed", {})
    return saved


_DONE = ("processed", _SAME_CONTENT)


def _scan_once(inbox: Path, config_path: Path, options: _Options, log: _Log) -> list[str]:
    saved = _load_state(options.state, inbox)
    state: dict[str, dict[str, Any]] = saved["deliveries"]
    processed: dict[str, dict[str, Any]] = saved["processed"]
    before = "" if saved.pop("new", False) else json.dumps(saved, sort_keys=True)
    to_run: list[str] = []
    refused_by_site: list[str] = []
    for delivery in scan_inbox(inbox, options.stable_seconds):
        key = delivery.folder.name
        known = state.get(key, {})
        # what it waits for is logged once; the outcome of its last processing is kept beside it
        if delivery.state == WAITING:
            if known.get(WAITING) != delivery.reason:
                log(f"{delivery.folder}: waiting: {delivery.reason}.")
                state[key] = {**known, WAITING: delivery.reason}
            continue
        if WAITING in known:
            known = state[key] = {k: v for k, v in known.items() if k != WAITING}
        site = site_digest(config_path)
        # a refusal for what the delivery itself holds has no site digest: only a change of the
        # delivery can undo it
        if known.get("fingerprint") == delivery.fingerprint and (
            known.get("status") in _DONE
            or (known.get("status") == REFUSED and known.get("site") in (None, site))
        ):
            continue
        entry: dict[str, Any] = {"lot_id": delivery.lot_id, "fingerprint": delivery.fingerprint}
        status, message = _consider(delivery, entry, state, processed, inbox, config_path)
        log(f"{delivery.folder}: {message}")
        state[key] = {**entry, "status": status, "at": utc_now()}
        if status == REFUSED:
            state[key]["reason"] = message.removeprefix("refused: ")
            if entry.get("site", True) is not None:
                refused_by_site.append(key)
        elif status == "registered":
            to_run.append(str(delivery.lot_id))
    if refused_by_site:
        # judged against the site as this scan leaves it, so the sheets the watcher itself wrote for
        # a lot after them are no reason to try them again and log them twice
        site = site_digest(config_path)
        for key in refused_by_site:
            state[key]["site"] = site
    if to_run:
        settings, _, _ = site_sheets(config_path)
        code = _run_snakemake(to_run, config_path, settings, options, log)
        for key, entry in state.items():
            if entry.get("status") == "registered" and entry.get("lot_id") in to_run:
                entry["status"] = "processed" if code == 0 else "failed"
                entry["at"] = utc_now()
                if code == 0:
                    processed[entry["content"]] = {
                        "lot_id": entry["lot_id"],
                        "delivery": key,
                        "at": entry["at"],
                    }
    if json.dumps(saved, sort_keys=True) != before:
        options.state.write_state(saved)
    return to_run


def _consider(
    delivery: Delivery,
    entry: dict[str, Any],
    state: Mapping[str, Mapping[str, Any]],
    processed: Mapping[str, Mapping[str, Any]],
    inbox: Path,
    config_path: Path,
) -> tuple[str, str]:
    """What becomes of a complete or refused delivery: its new status and the line logged for it.

    Whatever the delivery holds, the answer is one sentence about it, never an exception that
    would stop the scan for the deliveries after it.
    """
    if delivery.state == REFUSED:
        entry["site"] = None
        return REFUSED, f"refused: {delivery.reason}"
    try:
        entry["content"] = content_digest(delivery)
    except OSError as exc:
        entry["site"] = None
        return REFUSED, f"refused: its files could not be read to the end ({exc.strerror or exc})."
    done = processed.get(entry["content"])
    if done is not None:
        # the same manifests and data under another folder name (a rename, a second copy) or
        # touched: run once is enough
        moved = ""
        if done.get("delivery") != delivery.folder.name:
            moved = f" in {inbox / str(done.get('delivery'))}; the site's sheets still name its files there"
        return _SAME_CONTENT, (
            f"not run again: it holds the same manifests and data as the delivery of lot "
            f"{done.get('lot_id')} processed at {done.get('at')}{moved}."
        )
    claimed = _claimed_elsewhere(delivery, state, inbox)
    if claimed:
        return REFUSED, f"refused: {claimed}"
    registered, message = register_delivery(delivery, config_path)
    if not registered:
        return REFUSED, f"refused: {message}"
    return "registered", f"{message}."


def _claimed_elsewhere(delivery: Delivery, state: Mapping[str, Mapping[str, Any]], inbox: Path) -> str:
    """Why the delivery's lot may not be registered: another delivery still in the inbox holds it."""
    for name, entry in state.items():
        if (
            name != delivery.folder.name
            and entry.get("lot_id") == delivery.lot_id
            and entry.get("status") in ("registered", "processed", "failed")
            and (inbox / name).is_dir()
        ):
            return (
                f"lot {delivery.lot_id} was already delivered in {inbox / name}; remove one of the two "
                "folders (a corrected delivery replaces its folder's files)."
            )
    return ""
