"""Reading and writing the files a command touches.

Reads are bounded: a path may name a FIFO, a device (/dev/zero) or a file
of gigabytes, so `read_regular` refuses anything but a regular file and
reads at most one byte past its limit. Writes are atomic (a temporary file
beside the target, fsync, rename), so an interrupted write never leaves half
a file that looks whole; a target that exists and is not a regular file
(/dev/null, a FIFO, a symlink such as /dev/stdout) is written in place
instead, never replaced.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Union

__all__ = ["FileRefused", "read_regular", "write_atomic"]


class FileRefused(OSError):
    """A path that is not a regular file, or a file over its size limit; str() is the reason."""


def read_regular(path: Union[str, Path], limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Raises
    FileRefused (not a regular file, too large) or OSError (not found...)."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW is not
    # wanted (a symlink to a regular file is fine, the caller confines the real path).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused("not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileRefused(f"larger than {limit} bytes")
    return b"".join(chunks)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Union[str, Path], data: Union[str, bytes], durable: bool = True) -> Path:
    """Write `data` to `path`. Raises IsADirectoryError for a folder, and
    OSError when the folder it would go in cannot be made. `durable=False`
    skips the fsync: still atomic for every other process (the rename is), but
    a power cut may lose it; for progress milestones a later durable write
    supersedes."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = os.stat(path).st_mode   # through a symlink: what it names
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    if mode is not None and not stat.S_ISREG(mode):
        return _write_in_place(path, raw)
    if path.is_symlink():   # a link to a regular file: replace the file it names, keep the link
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())   # mkstemp makes 0600; outputs are ordinary files
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_in_place(path: Path, raw: bytes) -> Path:
    """A device, FIFO or link to one: open it for writing as it is (no rename over it)."""
    with open(path, "wb") as fh:
        fh.write(raw)
    return path
