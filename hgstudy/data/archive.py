"""Safe, all-or-nothing extraction of tar and zip archives, safe by construction on every Python.

The datasets' archives hold regular files and folders only, so nothing else is accepted: a symbolic or hard
link, a device or FIFO, an absolute name, a `..` component, a NUL byte or an over-long name is refused with
an error naming the member. tarfile's extract/extractall are never called (their `data` filter has known
bypasses, such as CVE-2025-4517's symlink chain past PATH_MAX on Python < 3.11.13): each member's bytes are
read with `extractfile` (zip: `open`) and written here into a fresh private folder, walked one component at a
time through folder descriptors with O_NOFOLLOW, so a link on disk is never followed and every file lands
where its normalised name says. Only when every member is written are the top-level entries moved into the
target (one rename each) and a marker written, so a failed or interrupted run never leaves a half-extracted
dataset that looks complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from hgstudy.core.errors import UserError
from hgstudy.core.files import disk_error, write_text

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")
NAME_MAX, PATH_MAX = 255, 4096  # bytes of one name component / of a member's whole relative path
_NO_LINKS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)  # POSIX; see _Tree for other systems
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NO_LINKS
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NO_LINKS


def marker_path(archive: Path, dest: Path) -> Path:
    return Path(dest) / f".{Path(archive).name}.extracted"


def is_extracted(archive: Path, dest: Path) -> bool:
    """True when `archive` was completely extracted into `dest` (its marker exists and its entries are there)."""
    marker = marker_path(archive, dest)
    if not marker.is_file():
        return False
    try:
        entries = json.loads(marker.read_text())["entries"]
    except (ValueError, KeyError, TypeError, OSError):
        return False
    return all((Path(dest) / e).exists() for e in entries)


def name_parts(name: str) -> list[str]:
    """The components of a member name, normalised (backslashes are separators, '' and '.' dropped)."""
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def unsafe_reason(name: str) -> str | None:
    """Why a member called `name` could not be written inside the target folder as a plain path, or None."""
    if "\x00" in name:
        return "a NUL byte in its name"
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"[A-Za-z]:", clean):
        return "absolute path"
    parts = name_parts(name)
    if ".." in parts:
        return "path outside the target folder ('..')"
    if any(len(p.encode("utf-8", "surrogateescape")) > NAME_MAX for p in parts):
        return f"a name component longer than {NAME_MAX} bytes"
    if len("/".join(parts).encode("utf-8", "surrogateescape")) > PATH_MAX:
        return f"a path longer than {PATH_MAX} bytes"
    return None


def _refuse(archive: Path, member: str, reason: str) -> UserError:
    return UserError(
        f"refusing to extract {archive}: member {member!r} is unsafe ({reason}). Nothing was extracted; "
        "the archive is not the official one or has been tampered with: download it again from the official site."
    )


def _copy(source, target) -> None:
    """Copy one member's bytes (a function of its own so that tests can make the disk fill up here)."""
    shutil.copyfileobj(source, target, 1 << 20)


class _Tree:
    """Folders and regular files created under one private folder, reached only through folder descriptors.

    Every component is opened with O_NOFOLLOW relative to its parent's descriptor, so even a link that
    somehow existed on disk would be refused (ELOOP), never followed.
    """

    def __init__(self, archive: Path, root: Path):
        self.archive = archive
        if not (_NO_LINKS and os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd):
            raise UserError(f"cannot extract {archive} safely here: this system lacks O_NOFOLLOW or folder "
                            "descriptors (Linux and macOS have both); extract it by hand and run again")
        os.mkdir(root, 0o700)  # fresh: fails if anything is there already
        self.fd = os.open(root, _DIR_FLAGS)
        self.kinds: dict[tuple[str, ...], str] = {(): "dir"}

    def close(self) -> None:
        os.close(self.fd)

    def _clash(self, name: str) -> UserError:
        return _refuse(self.archive, name, "a file and a folder of the same name")

    def _open_dir(self, parts: list[str], name: str) -> int:
        fd = os.dup(self.fd)
        for i, part in enumerate(parts, 1):
            kind = self.kinds.get(tuple(parts[:i]))
            try:
                if kind == "file":
                    raise self._clash(name)
                if kind is None:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    self.kinds[tuple(parts[:i])] = "dir"
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            finally:
                os.close(fd)
            fd = child
        return fd

    def add(self, name: str, is_dir: bool, open_source) -> None:
        """Create folder `name`, or file `name` with the bytes of `open_source()` (a binary file object)."""
        parts = name_parts(name)
        if is_dir:
            os.close(self._open_dir(parts, name))
            return
        if not parts:
            raise _refuse(self.archive, name, "a file without a name")
        if self.kinds.get(tuple(parts)) == "dir":
            raise self._clash(name)
        fd = self._open_dir(parts[:-1], name)
        try:
            out = os.open(parts[-1], _FILE_FLAGS, 0o644, dir_fd=fd)
        finally:
            os.close(fd)
        self.kinds[tuple(parts)] = "file"
        with os.fdopen(out, "wb") as target, open_source() as source:
            _copy(source, target)


def _tar_kind(member: tarfile.TarInfo) -> str | None:
    """Why a tar member's type is refused, or None for a regular file or a folder."""
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        return f"symbolic link to {member.linkname!r}; the dataset's archives hold none"
    if member.islnk():
        return f"hard link to {member.linkname!r}; the dataset's archives hold none"
    return "device, FIFO or other special file"


def _extract_tar(archive: Path, tree: _Tree) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:  # one pass: a member is checked before it is written
            reason = unsafe_reason(member.name) or _tar_kind(member)
            if reason:
                raise _refuse(archive, member.name, reason)
            tree.add(member.name, member.isdir(), lambda m=member: tar.extractfile(m))


def _zip_kind(info: zipfile.ZipInfo) -> str | None:
    kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0  # 3: made on Unix
    if stat.S_ISLNK(kind):
        return "symbolic link; the dataset's archives hold none"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "device, FIFO or other special file"
    return None


def _extract_zip(archive: Path, tree: _Tree) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # the central directory lists every member up front: check all before writing
            reason = unsafe_reason(info.filename) or _zip_kind(info)
            if reason:
                raise _refuse(archive, info.filename, reason)
        for info in infos:
            tree.add(info.filename, info.is_dir(), lambda i=info: zf.open(i))  # reading checks each CRC


def _clear(path: Path) -> None:
    """Remove what an interrupted run left at `path` (never following a link planted there)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _move_into_place(archive: Path, tmp: Path, dest: Path, reserved: set) -> list[str]:
    """Rename each top-level entry of `tmp` into `dest`, refusing to replace or plant anything."""
    entries = sorted(os.listdir(tmp))
    planted = [e for e in entries if e in reserved]
    if planted:
        raise _refuse(archive, planted[0], f"it would stand in for the dataset's own file {dest / planted[0]}")
    clashes = [e for e in entries if (dest / e).exists() or (dest / e).is_symlink()]
    if clashes:
        raise UserError(
            f"cannot extract {archive}: {', '.join(str(dest / c) for c in clashes)} already exist(s) but "
            f"{archive.name} was never recorded as extracted there (an interrupted run or a copy placed by hand). "
            "Remove or rename them and run again."
        )
    try:
        for entry in entries:
            os.replace(tmp / entry, dest / entry)
    except OSError as exc:
        raise (disk_error(exc, dest / entry, "moving extracted files into") or UserError(
            f"cannot move {entry} of {archive} into {dest}: {exc}")) from exc
    return entries


def extract(archive: Path, dest: Path, log=print, reserved=()) -> list[str]:
    """Extract `archive` into folder `dest` safely and atomically; return its top-level entries.

    Does nothing when the archive's marker says it was already extracted. Raises UserError on an unsafe
    member, an unreadable or truncated archive, a full disk, or a top-level entry that already exists without
    a marker or is one of the `reserved` names (the dataset's other files, which an archive must not plant).
    """
    archive, dest = Path(archive), Path(dest)
    if is_extracted(archive, dest):
        return json.loads(marker_path(archive, dest).read_text())["entries"]
    name = archive.name.lower()
    if not name.endswith(ARCHIVE_SUFFIXES):
        raise UserError(f"cannot extract {archive}: unknown archive type (known: {', '.join(ARCHIVE_SUFFIXES)})")
    tmp = dest / f".{archive.name}.extracting"
    log(f"extracting {archive} into {dest}")
    tree = None
    try:
        try:
            dest.mkdir(parents=True, exist_ok=True)
            _clear(tmp)  # left by an interrupted run: ours, never complete
            tree = _Tree(archive, tmp)
            if name.endswith(".zip"):
                _extract_zip(archive, tree)
            else:
                _extract_tar(archive, tree)
        except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, ValueError,
                NotImplementedError, RuntimeError) as exc:  # zip: RuntimeError for an encrypted member
            raise UserError(
                f"cannot extract {archive}: the archive is damaged or truncated ({type(exc).__name__}: {exc}). "
                f"Nothing was extracted. Delete it and download it again."
            ) from exc
        except OSError as exc:
            raise (disk_error(exc, tmp, "extracting into") or UserError(
                f"cannot extract {archive} into {dest}: {exc}. Nothing was extracted")) from exc
        entries = _move_into_place(archive, tmp, dest, set(reserved))
    finally:
        if tree is not None:
            tree.close()
            shutil.rmtree(tmp, ignore_errors=True)
    write_text(marker_path(archive, dest), json.dumps({"archive": archive.name, "entries": entries}, indent=1))
    return entries
