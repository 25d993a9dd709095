"""The watcher's own folder (state, lock, log, Snakemake run logs), kept where no delivery can reach it.

Whoever can write the inbox — an instrument PC, the LIMS, a person with a share mounted — could
otherwise plant a ``lock`` or ``watch.log`` that is a symbolic link and have the watcher truncate or
append to any file it may write, or edit ``state.json`` to hide a delivery or run one again. So the
folder lives outside the inbox (by default beside the configuration, which the watcher already
rewrites and the inbox's writers do not), must be a real folder owned by the watcher's user and
writable by no one else, and is opened once: every file in it is then reached through that open
folder with ``O_NOFOLLOW`` (``O_CREAT | O_EXCL`` where it is created), so a link put in its place
later is refused rather than followed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rapidrelease.errors import RapidReleaseError

__all__ = [
    "STATE_DIR_NAME",
    "StateFolder",
    "WatchLockedError",
    "WatchStateError",
    "default_state_dir",
    "printable",
    "utc_now",
]

STATE_DIR_NAME = ".rapidrelease-watch"
STATE_FILE, LOCK_FILE, LOG_FILE, RUNS_DIR = "state.json", "lock", "watch.log", "runs"
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# git status stays clean in a site kept under version control, without editing its .gitignore
_GITIGNORE = b"# the rapidrelease watcher's state; not for version control\n*\n"


class WatchLockedError(RapidReleaseError):
    """Another watcher holds the state folder's lock."""


class WatchStateError(RapidReleaseError):
    """The watcher's state folder, or a file in it, is not one the watcher can trust."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_state_dir(config_path: Path) -> Path:
    """``.rapidrelease-watch`` beside the configuration file, e.g. ``config/.rapidrelease-watch``."""
    return Path(config_path).parent / STATE_DIR_NAME


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_folder(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if info.st_uid != os.geteuid():
        raise WatchStateError(
            f"{path}: belongs to user id {info.st_uid}, not to the user the watcher runs as "
            f"({os.geteuid()}); the watcher keeps its state only in a folder of its own."
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise WatchStateError(
            f"{path}: can be written by other users (mode {stat.S_IMODE(info.st_mode):o}); "
            "run chmod go-w on it, the watcher keeps its state only in a folder of its own."
        )


def _open_folder(name: str | Path, shown: Path, dir_fd: int | None = None) -> int:
    """Open (making it, mode 0700, if missing) a folder that must not be a symbolic link."""
    with suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise WatchStateError(
                f"{shown}: is a symbolic link or not a folder; the watcher keeps its state only in a "
                "real folder of its own."
            ) from None
        raise WatchStateError(f"{shown}: cannot be opened ({exc.strerror}).") from None
    try:
        _check_folder(fd, shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


class StateFolder:
    """The watcher's state folder, opened once; each file in it is reached through that open folder."""

    def __init__(self, path: Path, inbox: Path) -> None:
        self.path = Path(os.path.abspath(path))
        # where the folder really is, its own name not followed (a link there is refused below)
        real = os.path.join(os.path.realpath(self.path.parent), self.path.name)
        real_inbox = os.path.realpath(inbox)
        if _inside(real, real_inbox) or _inside(real_inbox, real):
            raise WatchStateError(
                f"{self.path}: is inside the inbox {inbox} (or holds it), where deliveries are "
                "written; keep the watcher's state outside it (--state, by default beside the "
                "configuration)."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = _open_folder(self.path, self.path)
        try:
            self._create_once(".gitignore", _GITIGNORE)
        except BaseException:
            os.close(self.fd)
            raise

    def close(self) -> None:
        os.close(self.fd)

    def _open(self, name: str, flags: int, *, dir_fd: int | None = None, shown: Path | None = None) -> int:
        """A plain file of the watcher's own: made with O_EXCL, or opened without following a link."""
        dir_fd = self.fd if dir_fd is None else dir_fd
        shown = self.path / name if shown is None else shown
        try:
            fd = os.open(name, flags | _FILE_FLAGS | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            try:
                fd = os.open(name, flags | _FILE_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise WatchStateError(
                        f"{shown}: is a symbolic link; the watcher never reads or writes through a link "
                        "in its state folder — remove it."
                    ) from None
                raise WatchStateError(f"{shown}: cannot be opened ({exc.strerror}).") from None
        info = os.fstat(fd)
        # a hard link would let the same bytes be changed from elsewhere
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            os.close(fd)
            raise WatchStateError(
                f"{shown}: is not a plain file of the watcher's own (a folder, a device, another "
                "user's file or one with a second name); remove it."
            )
        return fd

    def _create_once(self, name: str, content: bytes) -> None:
        try:
            fd = os.open(name, os.O_WRONLY | _FILE_FLAGS | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self.fd)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock for the block; WatchLockedError if another watcher holds it."""
        fd = self._open(LOCK_FILE, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                raise WatchLockedError(
                    f"{self.path / LOCK_FILE}: another rapidrelease watch is running on this inbox "
                    f"({printable(holder)}); this one exits."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {utc_now()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    def read_state(self) -> dict[str, Any] | None:
        """The saved state, or None before the first scan."""
        try:
            fd = os.open(STATE_FILE, os.O_RDONLY | _FILE_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise WatchStateError(
                    f"{self.path / STATE_FILE}: is a symbolic link; the watcher never reads or writes "
                    "through a link in its state folder — remove it."
                ) from None
            raise
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise WatchStateError(f"{self.path / STATE_FILE}: is not a plain file; remove it.")
            data = fh.read()
        try:
            state = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            state = None
        if not isinstance(state, dict):
            raise WatchStateError(
                f"{self.path / STATE_FILE}: is not the watcher's state (not a JSON object); move it "
                "aside to start afresh."
            )
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace state.json atomically: a new file made with O_EXCL, renamed over the old one."""
        temporary = f".{STATE_FILE}.{os.getpid()}.tmp"
        with suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=self.fd)
        fd = self._open(temporary, os.O_WRONLY)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write((json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode())
                fh.flush()
                os.fsync(fh.fileno())
            # rename replaces a link planted at the name itself instead of writing through it
            os.replace(temporary, STATE_FILE, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=self.fd)
            raise

    def open_log(self) -> int:
        """watch.log, opened for appending; kept open while the watcher runs."""
        return self._open(LOG_FILE, os.O_WRONLY | os.O_APPEND)

    def new_run_log(self, name: str) -> tuple[Path, int]:
        """A new file in runs/ for one Snakemake run's output: its path and an open descriptor."""
        runs = _open_folder(RUNS_DIR, self.path / RUNS_DIR, dir_fd=self.fd)
        try:
            return self.path / RUNS_DIR / name, self._open(
                name, os.O_WRONLY, dir_fd=runs, shown=self.path / RUNS_DIR / name
            )
        finally:
            os.close(runs)


def printable(text: str) -> str:
    """``text`` with every character that could move the cursor or forge a line shown escaped."""
    return "".join(
        ch if ch.isprintable() or ch == "\n" else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
