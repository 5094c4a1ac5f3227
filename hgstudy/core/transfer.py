"""Stream one URL into a partial file, bounded in size and in time, resumable (used by `hgstudy.data.download`).

A response never writes more than the file's expected size (pinned or recorded), else its declared
Content-Length, else `UNDECLARED_CAP`: one that announces or sends more is refused. A response whose average
rate stays below `FLOOR_RATE` past a grace time is given up, whatever the file's size. Every block is flushed to
the partial file as it arrives, so that a stall, a slow mirror, a cut connection or a killed process keeps the
bytes received and the next run resumes from them with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from hgstudy.core.errors import UserError
from hgstudy.core.files import disk_error

CHUNK = 1 << 20
# Slower than this on average since the response began, a file is given up (its bytes kept for a resume): at
# 20 kB/s MPII's 12.9 GB image archive takes a week, and a mirror stuck at a few bytes/s is better left for another.
FLOOR_RATE = 20_000  # bytes/s
# The rate is judged only after this many --timeout (4 min by default): tied to --timeout, so that who raises it for
# a slow-starting link gets more grace too, with no second knob; a 1 byte/s mirror is left after about that long.
GRACE_TIMEOUTS = 4
UNDECLARED_CAP = 16 << 30  # bytes, when neither a pin nor the server gives a size (the largest file is 12.9 GB)


class DownloadError(Exception):
    """One file's failure (reported with its name, source and remedy by `hgstudy.data.download.acquire`)."""


def hash_file(path: Path, digest):
    """`digest` updated with the bytes of `path`."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest


def sha256_file(path: Path) -> str:
    return hash_file(path, hashlib.sha256()).hexdigest()


def _progress(name: str, total: int | None, initial: int):
    tty = sys.stderr.isatty()
    # not a terminal: tqdm prints its first and last state only (about one line per file)
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                file=sys.stderr, mininterval=0.5 if tty else 1e9, leave=True, dynamic_ncols=tty)


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a `Content-Range: bytes a-b/n` header."""
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", header or "")
    if not match:
        return None, None
    return int(match.group(1)), (None if match.group(2) == "*" else int(match.group(2)))


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "hgstudy-download/1", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to send: the partial file may already be whole
            return exc
        raise DownloadError(f"the server answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot reach the server ({exc.reason})") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"cannot reach the server ({exc})") from exc


def _disk(exc: OSError, part: Path) -> UserError | DownloadError:
    """A full disk or read-only folder stops everything (one clear error); any other OSError fails this file."""
    return disk_error(exc, part, "downloading into", f"The partial file {part} is kept: run the same command "
                      "again to resume") or DownloadError(f"cannot write {part} ({exc})")


def stream(url: str, part: Path, label: str, timeout: float = 60.0, limit: int | None = None,
           restarted: bool = False) -> tuple[str, int]:
    """Download `url` into `part`, resuming from its current length where the server allows (HTTP Range).

    `limit` is the file's expected size, if known. Returns (sha256, size) of the whole file. Raises
    DownloadError on HTTP errors, a cut or stalled connection or an average rate below FLOOR_RATE after
    GRACE_TIMEOUTS x `timeout` (the bytes received are kept in the partial file for the next run to resume),
    a response shorter than announced, or one longer than expected (moved to NAME.rejected); UserError on a
    full disk or a read-only folder.
    """
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start, timeout)
    digest = hashlib.sha256()
    if isinstance(response, urllib.error.HTTPError):  # 416: is the partial file already the whole file?
        match = re.match(r"bytes \*/(\d+)", response.headers.get("Content-Range") or "")
        response.close()
        if match and int(match.group(1)) == start:
            return sha256_file(part), start
        part.unlink()  # unverified and unusable: start over
        return stream(url, part, label, timeout, limit, restarted=True)
    with response:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        first, full = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and first != start:  # not the range asked for: never splice it in
            if start and not restarted:
                part.unlink()  # start over with a plain request
                response.close()
                return stream(url, part, label, timeout, limit, restarted=True)
            raise DownloadError(f"asked for the whole file, the server sent bytes {first}- only; try another --mirror")
        if response.status == 206 and start:
            mode, total = "ab", full if full is not None else (start + total if total is not None else None)
        else:  # the whole file (a server that ignores Range starts over)
            mode, start = "wb", 0
            total = full if response.status == 206 and full is not None else total
        if limit is not None and total is not None and total > limit:
            raise DownloadError(f"the server announced {total:,} bytes, more than the {limit:,} expected: "
                                "it is not the expected file; try another --mirror")
        if mode == "ab":
            hash_file(part, digest)  # the hash covers the bytes already there
        cap = limit if limit is not None else total if total is not None else UNDECLARED_CAP
        size, longer, began = start, False, time.monotonic()  # the rate counts this response's bytes only
        try:
            with open(part, mode) as out, _progress(label, total or limit, start) as bar:
                while True:
                    try:  # what has arrived (a stall loses nothing), one byte past the cap to tell a longer response
                        block = response.read1(min(CHUNK, cap - size + 1))
                    except (http.client.HTTPException, OSError) as exc:
                        partial = getattr(exc, "partial", b"") or b""  # IncompleteRead's last bytes
                        size += out.write(partial[: cap - size])
                        of = "?" if total is None else f"{total:,}"
                        raise DownloadError(
                            f"the connection was lost or stalled after {size:,} of {of} bytes ({type(exc).__name__}); "
                            f"the partial file {part} is kept: run the same command again to resume") from exc
                    if not block or size + len(block) > cap:
                        longer = bool(block)
                        break
                    out.write(block)
                    out.flush()  # into the file, not a buffer: a killed run keeps what arrived
                    digest.update(block)
                    size += len(block)
                    bar.update(len(block))
                    elapsed = time.monotonic() - began
                    if size < cap and elapsed > GRACE_TIMEOUTS * timeout and size - start < FLOOR_RATE * elapsed:
                        raise DownloadError(
                            f"gave up after {elapsed:.0f} s: {size - start:,} more bytes arrived "
                            f"({(size - start) / elapsed / 1000:.1f} kB/s on average), slower than "
                            f"{FLOOR_RATE / 1000:.0f} kB/s; the partial file {part} is kept: run the "
                            "same command again to resume, or try another --mirror")
            if longer:  # never taken for the file, nor resumed from
                rejected = part.with_name(part.name.removesuffix(".part") + ".rejected")
                os.replace(part, rejected)
                raise DownloadError(f"the server sent more than the {cap:,} bytes expected: it is not the expected "
                                    f"file; it was moved to {rejected}; try another --mirror")
        except OSError as exc:  # writing (or closing) the partial file
            raise _disk(exc, part) from exc
    if total is not None and size != total:
        raise DownloadError(f"the transfer stopped after {size:,} of {total:,} bytes; "
                            f"the partial file {part} is kept: run the same command again to resume")
    return digest.hexdigest(), size
