"""One writer per folder: an advisory lock (`fcntl.flock`) on `<folder>/<name>`, held while the work runs.

The operating system releases the lock when its holder dies, even by SIGKILL, so a crash never leaves the
folder locked; the file names the holder (pid, host, start time) for the error a second writer gets.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from hgstudy.core.errors import UserError


@contextlib.contextmanager
def folder_lock(folder, name: str, doing: str) -> Iterator[Path]:
    """Hold the lock `<folder>/<name>` for the `with` block, or raise a UserError naming its holder at once.

    `doing` completes "<folder> is being ... by pid N", e.g. "trained".
    """
    path = Path(folder) / name
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 1000).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"{folder} is being {doing} by {holder}; wait for it or stop it") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)  # the previous holder removed the file between our open and flock: lock the new one
    try:
        since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)  # written in place, not renamed: the lock belongs to this very file
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {since}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)  # before the lock is released, so no one locks a file about to vanish
        os.close(fd)
