"""Crash-safe file writing shared by everything pytest-soft writes, and the fit's lock.

A write goes to a temporary file in the same directory, is flushed to disk, and replaces the
target with ``os.replace``: a reader sees the old file or the new one, never a mix. Temporary
files carry the writer's process id, so a later write sweeps those a killed run left behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: Temporary files carry this marker so the plugin can recognise (and sweep) its own.
TEMP_MARKER = ".pytest-soft-tmp"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    A symbolic link is written through (the file it points to is replaced, the link stays).
    A file the user made read-only is never replaced: that raises PermissionError.
    """
    target = Path(path)
    if os.path.islink(target):
        target = Path(os.path.realpath(target))
    _refuse_read_only(target)
    sweep_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_MARKER, dir=target.parent or "."
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            # Keep the user's permission bits rather than mkstemp's private 0600.
            os.chmod(tmp_name, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(target.parent)


def _refuse_read_only(target: Path) -> None:
    """Raise PermissionError when ``target`` is a file without write permission. os.replace
    would replace it all the same (only the directory's permissions count), and root may write
    anything, so the permission bits are checked too."""
    try:
        status = os.stat(target)
    except OSError:
        return
    if stat.S_ISREG(status.st_mode) and (
        not status.st_mode & 0o222 or not os.access(target, os.W_OK)
    ):
        raise PermissionError(
            errno.EACCES,
            "the file is read-only, so pytest-soft leaves it alone (make it writable, e.g. "
            "chmod u+w, to let it be replaced)",
            str(target),
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process (or no way to tell): leave its file alone
    return True


def sweep_stale_temporaries(target: Path) -> list[Path]:
    """Delete the temporary files that writes of ``target`` by dead processes left behind."""
    directory = target.parent if str(target.parent) else Path(".")
    pattern = re.compile(
        re.escape(f".{target.name}.") + r"(\d+)\.[^/]*" + re.escape(TEMP_MARKER) + "$"
    )
    swept: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return swept
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
            swept.append(Path(entry.path))
        except OSError:
            pass
    return swept


class LockTimeout(Exception):
    """The lock stayed taken for longer than the caller was willing to wait."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder}")
        self.path = path
        self.holder = holder


def project_lock_path(root: Path) -> Path:
    """The fit lock of a project: in the temporary directory, named after the project root, so
    it never clutters the project itself."""
    digest = hashlib.sha256(str(Path(root).resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pytest-soft-fit-{digest}.lock"


@contextlib.contextmanager
def exclusive_lock(
    path: Path,
    timeout: float,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.1,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block.

    When another process holds it, call ``on_wait(holder)`` once and wait up to ``timeout``
    seconds, then raise :class:`LockTimeout`. The operating system releases the lock when its
    holder dies, so a killed run never leaves it taken. Where ``fcntl`` is missing (Windows)
    the block runs without a lock.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(fd)
                if not told and on_wait is not None:
                    on_wait(holder)
                    told = True
                if time.monotonic() >= deadline:
                    raise LockTimeout(path, holder) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 100, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return f"process {text[4:]}" if text.startswith("pid ") else "another process"
