"""Reading an input file for a command (``linkpact import FILE``, ``linkpact agreement import FILE``)
within a size cap, enforced while reading: a device that never ends (``/dev/zero``) or a pipe must not
run the process out of memory."""

from __future__ import annotations

import os
import stat
import sys
from typing import BinaryIO

from bot.errors import InputError

# What a name given as the file means "read standard input" (``cat export.csv | linkpact import -``).
STDIN_NAME = "-"
# Bytes asked of the operating system per read: one call for most files, few for the largest.
READ_CHUNK_BYTES = 16 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_input_file(name: str, *, max_bytes: int) -> bytes:
    """The bytes of the file ``name`` (``-``: standard input), at most ``max_bytes`` of them.

    Only regular files are opened as files: a directory, a device (``/dev/zero``), a named pipe or a
    socket is refused before anything is read (a pipe goes through ``-``). The cap is enforced while
    reading, so a stream longer than announced (or with no size at all) stops at ``max_bytes + 1``
    bytes. Raises :class:`InputError` with the reason.
    """
    if name == STDIN_NAME:
        if sys.stdin is None:  # started with standard input closed
            raise InputError("there is no standard input to read the file from")
        return _read_capped(sys.stdin.buffer, "standard input", max_bytes)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused (it changes
        # nothing for a regular file).
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((label for test, label in _KINDS if test(info.st_mode)), "not a regular file")
            raise InputError(
                f"{name} is {kind}, not a file: save the export to a file first, or pipe it in with "
                f"{STDIN_NAME} as the file name"
            )
        if info.st_size > max_bytes:
            size = info.st_size
            raise InputError(f"{name} is {size:,} bytes; the limit is {max_bytes:,}: split the export")
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            # Ask for the whole file at once (plus one byte, to see it grow): one read, no joining.
            return _read_capped(handle, name, max_bytes, first=info.st_size + 1)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _read_capped(stream: BinaryIO, name: str, max_bytes: int, *, first: int = READ_CHUNK_BYTES) -> bytes:
    """Read ``stream`` to its end, refusing it as soon as more than ``max_bytes`` have arrived."""
    chunks: list[bytes] = []
    total = 0
    size = first
    while True:
        chunk = stream.read(min(size, max_bytes + 1 - total))
        size = READ_CHUNK_BYTES
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise InputError(f"{name} is over the limit of {max_bytes:,} bytes: split the export")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
