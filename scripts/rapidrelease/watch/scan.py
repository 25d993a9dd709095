"""The watcher's loop: scan the inbox, register what became complete, run Snakemake for it."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rapidrelease.config.schemas import WORKFLOW_DIR
from rapidrelease.errors import ConfigError, RapidReleaseError
from rapidrelease.outputs import write_json
from rapidrelease.watch.delivery import REFUSED, WAITING, Delivery, scan_inbox
from rapidrelease.watch.site import register_delivery, site_digest, site_sheets

__all__ = ["WatchLockedError", "watch", "STATE_DIR_NAME"]

STATE_DIR_NAME = ".rapidrelease-watch"


class WatchLockedError(RapidReleaseError):
    """Another watcher holds the inbox's lock."""


@contextmanager
def _inbox_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "lock", "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise WatchLockedError(
                f"{state_dir / 'lock'}: another rapidrelease watch is running on this inbox "
                f"({holder}); this one exits."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {_now()}\n")
        handle.flush()
        yield


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Log:
    """Each line to the inbox's watch.log and to ``echo``, with a UTC time stamp."""

    def __init__(self, path: Path, echo: TextIO) -> None:
        self.path, self.echo = path, echo

    def __call__(self, message: str) -> None:
        line = f"{_now()} {message}"
        print(line, file=self.echo, flush=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


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
    run_log = options.state_dir / "runs" / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.log"
    run_log.parent.mkdir(parents=True, exist_ok=True)
    log(f"running snakemake for {', '.join(lot_ids)} (output in {run_log}): {' '.join(command)}")
    with open(run_log, "w", encoding="utf-8") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if code == 0:
        log(f"snakemake finished {', '.join(lot_ids)}.")
    else:
        tail = run_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        log(f"snakemake exited {code} for {', '.join(lot_ids)}; it is tried again at the next scan:\n"
            + "\n".join(tail))  # fmt: skip
    return code


@dataclass(frozen=True)
class _Options:
    state_dir: Path
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
) -> list[str]:
    """Scan ``inbox`` once, or every ``interval`` seconds, and run Snakemake for new complete lots.

    Snakemake runs ``snakefile`` (default: this installation's workflow/Snakefile) in the current
    folder, the site's, where ``config_path``'s relative paths start. Returns the lot ids run by
    the last scan. Raises WatchLockedError when another watcher holds the inbox; a problem during
    one scan of a continuous watch is logged and the next scan goes on.
    """
    inbox, config_path = Path(inbox), Path(config_path)
    if not inbox.is_dir():
        raise ConfigError(f"{inbox}: the inbox is not a folder.")
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found.")
    options = _Options(
        state_dir=inbox / STATE_DIR_NAME,
        stable_seconds=stable_seconds,
        cores=cores,
        snakefile=Path(snakefile) if snakefile is not None else WORKFLOW_DIR / "Snakefile",
        snakemake_args=tuple(snakemake_args),
    )
    with _inbox_lock(options.state_dir):
        log = _Log(options.state_dir / "watch.log", echo)
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


def _scan_once(inbox: Path, config_path: Path, options: _Options, log: _Log) -> list[str]:
    state_path = options.state_dir / "state.json"
    state: dict[str, dict[str, Any]] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    before = json.dumps(state, sort_keys=True)
    to_run: list[str] = []
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
        site = site_digest(config_path, delivery)
        if known.get("fingerprint") == delivery.fingerprint and (
            known.get("status") == "processed"
            or (known.get("status") == REFUSED and known.get("site") == site)
        ):
            continue
        entry = {"lot_id": delivery.lot_id, "fingerprint": delivery.fingerprint, "site": site}
        claimed = _claimed_elsewhere(delivery, state, inbox)
        if delivery.state == REFUSED or claimed:
            registered, message = False, delivery.reason or claimed
        else:
            registered, message = register_delivery(delivery, config_path)
        if not registered:
            log(f"{delivery.folder}: refused: {message}")
            state[key] = {**entry, "status": REFUSED, "reason": message, "at": _now()}
            continue
        log(f"{delivery.folder}: {message}.")
        state[key] = {**entry, "status": "registered", "at": _now()}
        to_run.append(str(delivery.lot_id))
    if to_run:
        settings, _, _ = site_sheets(config_path)
        code = _run_snakemake(to_run, config_path, settings, options, log)
        for entry in state.values():
            if entry.get("status") == "registered" and entry.get("lot_id") in to_run:
                entry["status"] = "processed" if code == 0 else "failed"
                entry["at"] = _now()
    if json.dumps(state, sort_keys=True) != before:
        write_json(state_path, state)
    return to_run


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
