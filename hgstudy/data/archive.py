"""Safe, all-or-nothing extraction of tar and zip archives.

Every member is checked before it is written: an absolute path, a path that climbs out with `..`, a link
that points outside the target folder, or a device/FIFO member is refused with an error naming it.
Members are extracted into a temporary folder next to the target; only when the whole archive has been read
without error are its top-level entries moved into the target (one rename each) and a marker written, so a
failed or interrupted run never leaves a half-extracted dataset that looks complete.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from hgstudy.core.errors import UserError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")


def marker_path(archive: Path, dest: Path) -> Path:
    return Path(dest) / f".{Path(archive).name}.extracted"


def is_extracted(archive: Path, dest: Path) -> bool:
    """True when `archive` was completely extracted into `dest` (its marker exists and its entries are there)."""
    marker = marker_path(archive, dest)
    if not marker.is_file():
        return False
    try:
        entries = json.loads(marker.read_text())["entries"]
    except (ValueError, KeyError, OSError):
        return False
    return all((Path(dest) / e).exists() for e in entries)


def unsafe_reason(name: str, link_target: str | None = None, hardlink: bool = False) -> str | None:
    """Why a member called `name` (a link to `link_target`) would land outside the target folder, or None."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        return "absolute path"
    norm = posixpath.normpath(clean)
    if norm == ".." or norm.startswith("../"):
        return "path outside the target folder ('..')"
    if link_target is not None:
        target = link_target.replace("\\", "/")
        if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
            return f"link to an absolute path ({link_target})"
        # a symlink resolves relative to its own folder; a hard link relative to the archive root
        base = "" if hardlink else posixpath.dirname(norm)
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../"):
            return f"link pointing outside the target folder ({link_target})"
    return None


def _refuse(archive: Path, member: str, reason: str) -> UserError:
    return UserError(
        f"refusing to extract {archive}: member {member!r} is unsafe ({reason}). Nothing was extracted; "
        "the archive is not the official one or has been tampered with: download it again from the official site."
    )


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    link = member.linkname if (member.issym() or member.islnk()) else None
    reason = unsafe_reason(member.name, link, hardlink=member.islnk())
    if reason is None and not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        reason = "device, FIFO or other special file"
    if reason:
        raise _refuse(archive, member.name, reason)


def _extract_tar(archive: Path, tmp: Path) -> None:
    # Python >= 3.11.4 / 3.10.12 also has tarfile's "data" filter: a second line of defence.
    options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    filter_error = getattr(tarfile, "FilterError", None)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:  # one pass: a member is checked before it is written
            _check_tar_member(archive, member)
            try:
                tar.extract(member, tmp, **options)
            except tarfile.TarError as exc:
                if filter_error is not None and isinstance(exc, filter_error):
                    raise _refuse(archive, member.name, str(exc)) from exc
                raise


def _extract_zip(archive: Path, tmp: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # the central directory lists every member up front: check all before writing
            reason = unsafe_reason(info.filename)
            mode = info.external_attr >> 16
            if reason is None and stat.S_ISLNK(mode):
                reason = "symbolic link"
            if reason:
                raise _refuse(archive, info.filename, reason)
        for info in infos:
            zf.extract(info, tmp)  # reads and CRC-checks every byte


def extract(archive: Path, dest: Path, log=print) -> list[str]:
    """Extract `archive` into folder `dest` safely and atomically; return its top-level entries.

    Does nothing when the archive's marker says it was already extracted. Raises UserError on an unsafe
    member, an unreadable or truncated archive, or a top-level entry that already exists without a marker.
    """
    archive, dest = Path(archive), Path(dest)
    if is_extracted(archive, dest):
        return json.loads(marker_path(archive, dest).read_text())["entries"]
    name = archive.name.lower()
    if not name.endswith(ARCHIVE_SUFFIXES):
        raise UserError(f"cannot extract {archive}: unknown archive type (known: {', '.join(ARCHIVE_SUFFIXES)})")
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{archive.name}.extracting"
    if tmp.exists():  # left by an interrupted run: ours, never complete
        shutil.rmtree(tmp)
    tmp.mkdir()
    log(f"extracting {archive} into {dest}")
    try:
        try:
            if name.endswith(".zip"):
                _extract_zip(archive, tmp)
            else:
                _extract_tar(archive, tmp)
        except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, ValueError) as exc:
            raise UserError(
                f"cannot extract {archive}: the archive is damaged or truncated ({type(exc).__name__}: {exc}). "
                f"Nothing was extracted. Delete it and download it again."
            ) from exc
        except OSError as exc:
            raise UserError(f"cannot extract {archive} into {dest}: {exc} (disk full or no permission?)") from exc
        entries = sorted(os.listdir(tmp))
        clashes = [e for e in entries if (dest / e).exists() or (dest / e).is_symlink()]
        if clashes:
            raise UserError(
                f"cannot extract {archive}: {', '.join(str(dest / c) for c in clashes)} already exist(s) but "
                f"{archive.name} was never recorded as extracted there (an interrupted run or a copy placed by hand). "
                "Remove or rename them and run again."
            )
        for entry in entries:
            os.replace(tmp / entry, dest / entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    marker = marker_path(archive, dest)
    partial = marker.with_name(marker.name + ".tmp")
    partial.write_text(json.dumps({"archive": archive.name, "entries": entries}, indent=1))
    os.replace(partial, marker)
    return entries
