"""Fetch MPII and FLIC from their official locations (`hgstudy download mpii|flic`).

Each file is streamed to `NAME.part`, resumed with an HTTP Range request when a previous run was cut, and
takes its final name only after it is verified. Files whose official bytes are known are pinned here (split
files by SHA-256 and size, MPII's train.h5/test.h5 by their git blob id in pose-hg-train); the image archives
publish no checksum, so the SHA-256 of the first verified download is recorded in a ledger (`<root>/checksums.json`
by default; commit it to pin a project's data), and the extractor (`hgstudy.data.archive`) is safe whatever an
unpinned archive holds. The transfer (`hgstudy.core.transfer`) never writes more than a file's expected size and
gives up a mirror slower than a floor rate; a stall, a slow mirror or a kill keeps the bytes received, a range other
than the one asked for restarts the file, a full disk or read-only folder is one clear error; other failures
never stop the other files: the command ends with one error listing each and what to do about it. Tests only:
`--mirror-pins` (see `acquire`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path

from hgstudy.core.errors import UserError
from hgstudy.core.files import DiskError, check_writable, disk_error, write_text
from hgstudy.core.transfer import FLOOR_RATE, GRACE_TIMEOUTS, DownloadError, hash_file, sha256_file, stream
from hgstudy.data.archive import extract, is_extracted
from hgstudy.data.flic import FLIC
from hgstudy.data.mpii import MPII

HG_TRAIN = "https://raw.githubusercontent.com/princeton-vl/pose-hg-train/master/data"
MPII_HOST = "https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr"
# FLIC.zip: the historical direct link used by most scripts. The dataset page (bensapp.github.io/flic-dataset.html)
# now points to a copy on Google Drive: check this location, or use --mirror / place the file by hand.
FLIC_ZIP = "http://vision.grasp.upenn.edu/video/FLIC.zip"


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path under the data root, e.g. "mpii/valid.h5"
    url: str
    sha256: str | None = None  # pinned (None: recorded on the first verified download)
    size: int | None = None
    extract: bool = False  # archives are extracted into the folder that holds them
    git_blob: str | None = None  # pinned by git's blob id (SHA-1 of "blob <size>\0" + content) where no SHA-256 is


DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "mpii": (
        RemoteFile("mpii/train.h5", f"{HG_TRAIN}/mpii/annot/train.h5",
                   git_blob="50cb99ed82aa1873fda3f419e7dc71208931db9a"),
        RemoteFile("mpii/valid.h5", f"{HG_TRAIN}/mpii/annot/valid.h5",
                   "6c9e29d1472945abf370339d8a75e0da4117be52dcc3f589cb9f4a77cac2b760", 1350310),
        RemoteFile("mpii/test.h5", f"{HG_TRAIN}/mpii/annot/test.h5",
                   git_blob="a72a6f875d2a95328ab9ea9ab97d0abd545ba808"),
        RemoteFile("mpii/mpii_human_pose_v1_u12_2.zip", f"{MPII_HOST}/mpii_human_pose_v1_u12_2.zip", extract=True),
        RemoteFile("mpii/mpii_human_pose_v1.tar.gz", f"{MPII_HOST}/mpii_human_pose_v1.tar.gz", extract=True),
    ),
    "flic": (
        RemoteFile("flic/train.h5", f"{HG_TRAIN}/flic/annot/train.h5",
                   "b736543395c47120efefdb5d3230d07d1a5d32c834892a74249b4b4f9be891fe", 1419577),
        RemoteFile("flic/valid.h5", f"{HG_TRAIN}/flic/annot/valid.h5",
                   "0c4d4c20bb5a69cf22e2c68adebe0cb8ce6686bdcb50d7a7180680616d9e4fec", 364872),
        RemoteFile("flic/FLIC.zip", FLIC_ZIP, extract=True),
    ),
}


def mirror_url(url: str, mirror: str | None) -> str:
    """Replace scheme and host of `url` by `mirror` (which may carry a path prefix); keep the path."""
    if not mirror:
        return url
    base = urllib.parse.urlsplit(mirror)
    if not base.scheme or not base.netloc:
        raise UserError(f"--mirror {mirror!r} is not a URL like https://host[/prefix]")
    path = urllib.parse.urlsplit(url).path
    return urllib.parse.urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + path, "", ""))


def git_blob_id(path: Path) -> str:
    """The id git gives a file's content (what `git ls-tree` lists): SHA-1 of b"blob <size>\\0" + the bytes."""
    header = f"blob {Path(path).stat().st_size}\0".encode()
    return hash_file(path, hashlib.sha1(header, usedforsecurity=False)).hexdigest()


class Ledger:
    """The JSON record of verified files: {"files": {name: {"sha256", "size", "url", "verified"}}}."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.files: dict[str, dict] = {}
        if self.path.exists():
            try:
                self.files = dict(json.loads(self.path.read_text())["files"])
            except (ValueError, KeyError, TypeError, OSError) as exc:
                raise UserError(f"checksum ledger {self.path} is not valid JSON with a 'files' object ({exc}); "
                                "restore it from version control or delete it") from exc
            for name, entry in self.files.items():
                if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                        and isinstance(entry.get("size"), int) and not isinstance(entry.get("size"), bool)):
                    raise UserError(f"checksum ledger {self.path}: the entry of {name!r} is not "
                                    "{'sha256': '<hex>', 'size': <bytes>, ...}; restore it or delete it")

    def get(self, name: str) -> dict | None:
        return self.files.get(name)

    def record(self, name: str, sha256: str, size: int, url: str) -> None:
        self.files[name] = {"sha256": sha256, "size": size, "url": url,
                            "verified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        text = json.dumps({"comment": "SHA-256 of files verified by `hgstudy download`; later downloads must match.",
                           "files": dict(sorted(self.files.items()))}, indent=1)
        write_text(self.path, text + "\n")  # atomic; a full disk or read-only folder is a UserError


def fetch(remote: RemoteFile, root: Path, ledger: Ledger, mirror: str | None = None, timeout: float = 60.0,
          log=print) -> tuple[Path, str, int, bool]:
    """Make sure `remote` is at root/remote.name with a verified checksum.

    Returns (path, sha256, size, known): `known` says the checksum was checked against a pinned or recorded
    value (otherwise this is the first verified download and the caller records it). Never deletes or
    re-downloads a file that is already in place; raises DownloadError with the reason otherwise.
    """
    dest = Path(root) / remote.name
    url = mirror_url(remote.url, mirror)
    entry = ledger.get(remote.name)
    if (remote.sha256 and entry and entry.get("sha256") != remote.sha256) or remote.git_blob:
        entry = None  # a stale record never overrides a pin (files pinned by git blob are small: re-checked)
    expected = remote.sha256 or (entry or {}).get("sha256")
    expected_size = remote.size or (entry or {}).get("size")
    known = expected is not None or remote.git_blob is not None
    if dest.exists():
        size = dest.stat().st_size
        if entry and entry.get("size") == size:
            return dest, entry["sha256"], size, True  # verified before (re-hashing 13 GB each run would be slow)
        digest = sha256_file(dest)
        problem = _mismatch(remote, dest, digest, size, expected, None)
        if problem:
            raise DownloadError(f"{dest} already exists but {problem}: it is not the expected file. Move it away "
                                "(it was not deleted) and run again")
        log(f"{remote.name}: found in place, SHA-256 {digest}")
        return dest, digest, size, known
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log(f"{remote.name}: downloading {url}" + (" (resuming)" if part.exists() else ""))
    digest, size = stream(url, part, remote.name, timeout, expected_size)
    problem = _mismatch(remote, part, digest, size, expected, expected_size)
    if problem:
        rejected = dest.with_name(dest.name + ".rejected")
        os.replace(part, rejected)
        raise DownloadError(f"the download is corrupt or not the expected file: {problem}; "
                            f"it was moved to {rejected} and will be downloaded afresh next time")
    os.replace(part, dest)
    return dest, digest, size, known


def _mismatch(remote: RemoteFile, path: Path, digest: str, size: int, expected, expected_size) -> str | None:
    """What makes the file at `path` (of SHA-256 `digest`) not the expected one, or None."""
    if expected_size is not None and size != expected_size:
        return f"it has {size:,} bytes, not the expected {expected_size:,}"
    if expected and digest != expected:
        return f"its SHA-256 is {digest}, not the expected {expected}"
    if remote.git_blob and (blob := git_blob_id(path)) != remote.git_blob:
        return f"its git blob id is {blob}, not the official {remote.git_blob}"
    return None


def check_h5(path: Path) -> None:
    """Read every dataset of an HDF5 file whose checksum is not known yet (a truncated file fails here)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path} is not a readable HDF5 file ({exc}).") from exc


def acquire(dataset: str, root: Path, mirror: str | None = None, checksums: Path | None = None,
            only: list[str] | None = None, do_extract: bool = True, timeout: float = 60.0, log=print,
            pins: Path | None = None) -> list[Path]:
    """Download, verify and extract every file of `dataset` ("mpii" or "flic"); return their paths.

    A file whose checksum is not pinned is recorded in the ledger `checksums` (default root/checksums.json)
    once verified (archives: once extracted without error). Raises one UserError listing every failure.
    """
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise UserError(f"--timeout must be a positive number of seconds, not {timeout!r}")
    root = Path(root)
    ledger = Ledger(Path(checksums) if checksums else root / "checksums.json")
    files = [f for f in DATASETS[dataset] if not only or Path(f.name).name in only or f.name in only]
    # pins, tests only: a synthetic mirror's ledger; its SHA-256s replace the official pins of the files it lists
    pinned = Ledger(pins).files if pins else {}  # (scripts/paper_mirror.py: fabricated files cannot match those)
    if pins and not pinned:
        raise UserError(f"--mirror-pins {pins}: missing or empty (scripts/paper_mirror.py writes it)")
    files = [replace(f, git_blob=None, **{k: pinned[f.name][k] for k in ("sha256", "size")}) if f.name in pinned else f
             for f in files]
    if only and not files:
        names = ", ".join(Path(f.name).name for f in DATASETS[dataset])
        raise UserError(f"--only {' '.join(only)} matches no file of {dataset}; its files are: {names}")
    for folder in {root, ledger.path.parent}:  # now, not after gigabytes have arrived
        check_writable(folder)
    done, failures = [], []
    for remote in files:
        url, dest = mirror_url(remote.url, mirror), root / remote.name
        try:
            path, digest, size, known = fetch(remote, root, ledger, mirror, timeout, log)
            try:
                if not known and path.suffix == ".h5":
                    check_h5(path)
                if remote.extract and do_extract and not is_extracted(path, path.parent):
                    extract(path, path.parent, log=log, reserved=_reserved(dataset))
            except DiskError:
                raise  # the file may be fine: keep it, and stop (the next files would fail the same way)
            except UserError as exc:
                if not known:  # never verified by a checksum: it must not pass for a good download
                    rejected = path.with_name(path.name + ".rejected")
                    os.replace(path, rejected)
                    raise DownloadError(f"{exc} The file was moved to {rejected}") from exc
                raise DownloadError(str(exc)) from exc
            entry = ledger.get(remote.name)
            if entry is None or entry.get("sha256") != digest or entry.get("size") != size:
                ledger.record(remote.name, digest, size, url)
            done.append(path)
            log(f"{remote.name}: verified (SHA-256 {digest[:16]}..., {size:,} bytes)")
        except OSError as exc:  # creating the folder, renaming a verified file
            error = disk_error(exc, dest, "downloading", "Nothing verified was lost")
            if error is not None:
                raise error from exc
            failures.append(f"- {remote.name}: cannot write it under {root} ({exc})")
        except DownloadError as exc:
            failures.append(f"- {remote.name} from {url}: {exc}.\n  To fix: rerun, use --mirror URL, or download "
                            f"it by hand and place it at {dest.resolve()}")
    if failures:
        raise UserError(f"{len(failures)} of {len(files)} {dataset} file(s) failed:\n" + "\n".join(failures))
    return done


def _reserved(dataset: str) -> set[str]:
    """Names an archive must not plant beside itself: the dataset's other files, their partial and rejected
    copies and the crop stores (an unpinned one planted there would be taken as downloaded)."""
    names = {"crops-train", "crops-valid", "checksums.json"}
    for f in DATASETS[dataset]:
        name = Path(f.name).name
        names |= {name, name + ".part", name + ".rejected"}
    return names


def add_arguments(parser) -> None:
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which dataset to fetch")
    parser.add_argument("--root", type=Path, default=Path("data"), help="data folder (default: data/)")
    parser.add_argument("--mirror", default=None,
                        help="replace scheme and host of every official URL by this one (file paths are kept)")
    parser.add_argument("--checksums", type=Path, default=None,
                        help="ledger of verified SHA-256s (default: ROOT/checksums.json); commit it to pin the data")
    parser.add_argument("--only", nargs="+", metavar="FILE", help="fetch only these files (e.g. valid.h5 train.h5)")
    parser.add_argument("--no-extract", action="store_true", help="download and verify, do not extract archives")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds without data before giving up (and a file slower than "
                             f"{FLOOR_RATE // 1000} kB/s on average, after {GRACE_TIMEOUTS} x this)")
    parser.add_argument("--mirror-pins", type=Path, help="tests only: a synthetic mirror's ledger, replacing the pins")
    parser.add_argument("--prepare", action="store_true",
                        help="then decode each image once into crop stores ROOT/DATASET/crops-{train,valid} "
                             "(fast loading: pass store=... to the dataset)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for --prepare")


def prepare_stores(dataset: str, root: Path, workers: int = 1) -> list[Path]:
    """Decode each image of both splits once into root/<dataset>/crops-<split> (see hgstudy.data.store)."""
    Dataset = MPII if dataset == "mpii" else FLIC
    return [Dataset(root, split).prepare(Path(root) / dataset / f"crops-{split}", workers=workers)
            for split in ("train", "valid")]


def main(args) -> None:
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, not {args.workers}")
    paths = acquire(args.dataset, args.root, mirror=args.mirror, checksums=args.checksums, only=args.only,
                    do_extract=not args.no_extract, timeout=args.timeout, pins=args.mirror_pins)
    print(f"{args.dataset}: {len(paths)} file(s) verified under {Path(args.root).resolve()}")
    if args.prepare:
        for store in prepare_stores(args.dataset, args.root, args.workers):
            print(f"crop store ready: {store}")
