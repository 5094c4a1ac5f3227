"""Writing files so that a reader never mistakes a partial file for a complete one, and disk errors read well.

Every file the package writes goes through `atomic_path`: the content is written to
`<name>.<pid>.<random>.partial` beside the target (a name of its own, so two writers never share one) and
renamed onto it only when complete, so a crash, a kill or a full disk leaves the previous version intact and no
half-written file under the real name. Operating-system failures (no space, a read-only folder, no permission)
become one `UserError` that names the path and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hgstudy.core.errors import UserError

PARTIAL = ".partial"
_LOW_SPACE = 1 << 20  # bytes: below this a failed write is taken to be a full disk


class DiskError(UserError):
    """A full disk, a read-only folder or a permission error: the user's environment, not the file, is at fault."""


def disk_error(exc: BaseException, path, doing: str = "writing",
               kept: str = "Any previous version of it is intact") -> DiskError | None:
    """A UserError for an operating-system failure while `doing` `path`, or None if it is not one.

    `kept` says what the failure left intact (or where the partial result is).
    """
    path = Path(path)
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc, RuntimeError) and _free_bytes(path) < _LOW_SPACE:
        code = errno.ENOSPC  # torch.save reports a full disk as RuntimeError("... unexpected pos ...")
    reasons = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
    }
    if code not in reasons:
        return None
    fix = ("free some space or choose another folder" if code in (errno.ENOSPC, errno.EDQUOT)
           else "choose a folder you can write to")
    return DiskError(f"{reasons[code]} while {doing} {path}; {fix}" + (f". {kept}" if kept else ""))


def _free_bytes(path: Path) -> int:
    for folder in (path.parent, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return _LOW_SPACE
    return _LOW_SPACE


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield `<path>.<pid>.<random>.partial` to write; rename it onto `path` on success, remove it on any failure.

        with atomic_path(out / "model.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}{PARTIAL}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        friendly = disk_error(exc, path) if isinstance(exc, OSError | RuntimeError) else None
        if friendly is not None:
            raise friendly from exc
        raise


def write_text(path, text: str) -> Path:
    """Write a text file atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def check_writable(folder) -> Path:
    """Fail now, not after hours of work, if `folder` cannot be created or written to."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise (disk_error(exc, folder, "creating a file in") or
               UserError(f"cannot write to {folder} ({exc}); choose another folder")) from exc
    return folder


def check_space(folder, need: int, what: str) -> None:
    """Fail now, not when the disk fills up half-way, if `folder` has less than `need` bytes free for `what`."""
    free = _free_bytes(Path(folder) / "x")
    if free < need:
        raise DiskError(f"no space left on device for {what} in {folder}: it needs {need / 1e9:.2f} GB, "
                        f"{free / 1e9:.2f} GB are free; free some space or choose another folder")
