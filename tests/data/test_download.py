"""Downloads and extraction against a local HTTP server (127.0.0.1, a thread) serving archives built here.

The server supports Range requests (unless told not to), can cut a file's connection half-way once, and
logs every request, so that resuming, not re-downloading and refusing are all observable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from hgstudy import cli
from hgstudy.core import transfer
from hgstudy.core.errors import UserError
from hgstudy.data import download
from hgstudy.data.archive import extract, is_extracted, unsafe_reason
from hgstudy.data.download import RemoteFile, acquire, mirror_url

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class Server:
    """Serves files under `root`; `cut_once` paths send half their bytes then drop the connection, once;
    `stall_once` paths ({path: n}) send n bytes then go silent (until the client gives up or the server
    closes), once, and set `stalled`; with `shift` a range request is answered from `shift` bytes after the
    byte asked for; `endless` paths send no Content-Length and repeat the file without end; `drip` paths
    ({path: seconds}) send one byte per that many seconds; `no_length` paths send no Content-Length. Every
    response ends within 10 s."""

    def __init__(self, root: Path):
        self.root, self.requests, self.cut_once, self.ranges = root, [], set(), True
        self.stall_once, self.shift, self.closing, self.stalled = {}, 0, threading.Event(), threading.Event()
        self.endless, self.drip, self.no_length = set(), {}, set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                path = server.root / unquote(self.path.lstrip("/"))
                if not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                if self.path in server.endless:
                    self.send_response(200)
                    self.end_headers()
                    self.send_endless(data)
                    return
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                start = int(match.group(1)) if match and server.ranges else 0
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if start and server.shift:
                    start = min(start + server.shift, len(data) - 1)
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if self.path not in server.no_length:
                    self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if self.path in server.cut_once:
                    server.cut_once.discard(self.path)
                    body = body[: len(body) // 2]
                if self.path in server.stall_once:
                    self.wfile.write(body[: server.stall_once.pop(self.path)])
                    self.wfile.flush()
                    server.stalled.set()
                    server.closing.wait(10)  # silent: the client's timeout fires first
                    return
                if self.path in server.drip:
                    self.send_slowly(body, server.drip[self.path])
                    return
                self.wfile.write(body)

            def send_endless(self, data):
                end = time.monotonic() + 10
                with contextlib.suppress(OSError):  # the client hung up
                    while time.monotonic() < end and not server.closing.is_set():
                        self.wfile.write(data)

            def send_slowly(self, body, seconds):
                end = time.monotonic() + 10
                with contextlib.suppress(OSError):
                    for i in range(len(body)):
                        if server.closing.wait(seconds) or time.monotonic() > end:
                            return
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def put(self, relative: str, data: bytes) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.url}/{relative}"

    def close(self):
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "served")
    yield s
    s.close()


@pytest.fixture
def toy(monkeypatch):
    """Register a dataset "toy" made of the given RemoteFiles."""

    def register(*files):
        monkeypatch.setitem(download.DATASETS, "toy", tuple(files))

    return register


def blob(n=3_000_000, seed=0) -> bytes:
    return bytes((i * 7919 + seed) % 251 for i in range(256)) * (n // 256)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def quiet(message):
    pass


def test_mirror_url_keeps_the_path():
    official = "https://raw.githubusercontent.com/princeton-vl/pose-hg-train/master/data/mpii/annot/valid.h5"
    assert mirror_url(official, "http://127.0.0.1:8000/pfx/") == (
        "http://127.0.0.1:8000/pfx/princeton-vl/pose-hg-train/master/data/mpii/annot/valid.h5")
    assert mirror_url(official, None) == official
    with pytest.raises(UserError, match="mirror"):
        mirror_url(official, "not a url")


def test_success_records_and_never_downloads_twice(server, toy, tmp_path, capsys):
    data = blob()
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), sha(data), len(data)))
    root = tmp_path / "data"
    acquire("toy", root)
    assert (root / "toy" / "blob.bin").read_bytes() == data
    assert not (root / "toy" / "blob.bin.part").exists()
    ledger = json.loads((root / "checksums.json").read_text())["files"]
    assert ledger["toy/blob.bin"]["sha256"] == sha(data) and ledger["toy/blob.bin"]["size"] == len(data)
    assert len(server.requests) == 1
    acquire("toy", root)
    assert len(server.requests) == 1  # verified before: not fetched again
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "blob.bin" in line]) <= 2  # not a terminal: no bar spam


def test_resume_after_cut_connection(server, toy, tmp_path):
    data = blob()
    url = server.put("x/blob.bin", data)
    server.cut_once.add("/x/blob.bin")
    toy(RemoteFile("toy/blob.bin", url, sha(data), len(data)))
    root = tmp_path / "data"
    with pytest.raises(UserError, match="resume") as info:
        acquire("toy", root, log=quiet)
    assert "toy/blob.bin" in str(info.value) and url in str(info.value)
    part = root / "toy" / "blob.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not (root / "toy" / "blob.bin").exists()
    assert not (root / "checksums.json").exists()
    acquire("toy", root, log=quiet)
    assert server.requests[-1] == ("/x/blob.bin", f"bytes={kept}-")  # only the rest was asked for
    assert (root / "toy" / "blob.bin").read_bytes() == data and not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, toy, tmp_path):
    data = blob()
    server.ranges = False
    server.cut_once.add("/x/blob.bin")
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), sha(data), len(data)))
    with pytest.raises(UserError):
        acquire("toy", tmp_path, log=quiet)
    acquire("toy", tmp_path, log=quiet)
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == data


def test_checksum_mismatch_is_refused(server, toy, tmp_path):
    data = blob()
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), "0" * 64))
    with pytest.raises(UserError, match="SHA-256") as info:
        acquire("toy", tmp_path, log=quiet)
    assert "place it at" in str(info.value) and str((tmp_path / "toy" / "blob.bin").resolve()) in str(info.value)
    assert not (tmp_path / "toy" / "blob.bin").exists() and not (tmp_path / "toy" / "blob.bin.part").exists()
    assert (tmp_path / "toy" / "blob.bin.rejected").exists()


def test_recorded_checksum_is_enforced_later(server, toy, tmp_path):
    first, second = blob(seed=1), blob(seed=2)
    url = server.put("x/blob.bin", first)
    toy(RemoteFile("toy/blob.bin", url))  # no pinned checksum: the first verified download is recorded
    ledger = tmp_path / "project" / "data.lock.json"
    acquire("toy", tmp_path / "a", checksums=ledger, log=quiet)
    assert json.loads(ledger.read_text())["files"]["toy/blob.bin"]["sha256"] == sha(first)
    server.put("x/blob.bin", second)  # the server now serves something else
    with pytest.raises(UserError, match=sha(first)):
        acquire("toy", tmp_path / "b", checksums=ledger, log=quiet)
    assert not (tmp_path / "b" / "toy" / "blob.bin").exists()


def test_http_404_and_no_network(server, toy, tmp_path):
    toy(RemoteFile("toy/missing.bin", f"{server.url}/x/missing.bin"))
    with pytest.raises(UserError, match="404") as info:
        acquire("toy", tmp_path, log=quiet)
    assert f"{server.url}/x/missing.bin" in str(info.value) and "place it at" in str(info.value)
    assert not list((tmp_path / "toy").iterdir())
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    toy(RemoteFile("toy/x.bin", f"http://127.0.0.1:{port}/x.bin"))
    with pytest.raises(UserError, match="cannot reach"):
        acquire("toy", tmp_path, log=quiet)


def tar_bytes(members) -> bytes:
    """A .tar.gz of (name, content or ('symlink', target))."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


@pytest.mark.parametrize("bad", ["../evil.txt", "ABSOLUTE", "images/../../evil.txt", "LINK"])
def test_unsafe_tar_is_refused(server, toy, tmp_path, bad):
    outside = tmp_path / "evil.txt"
    member = (str(outside) if bad == "ABSOLUTE" else "images/link" if bad == "LINK" else bad)
    content = ("symlink", "../../evil.txt") if bad == "LINK" else b"gotcha"
    data = tar_bytes([("images/ok.jpg", b"fine"), (member, content)])
    toy(RemoteFile("toy/arch.tar.gz", server.put("a/arch.tar.gz", data), extract=True))
    root = tmp_path / "data"
    with pytest.raises(UserError, match="unsafe") as info:
        acquire("toy", root, log=quiet)
    assert member in str(info.value)
    assert not outside.exists() and not (root / "evil.txt").exists()
    assert sorted(p.name for p in (root / "toy").iterdir()) == ["arch.tar.gz.rejected"]  # nothing looks complete


def zip_bytes(members) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members:
            zf.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_truncated_archive_leaves_nothing_complete(server, toy, tmp_path, kind):
    members = [(f"FLIC/images/{i}.jpg", blob(40_000, seed=i)) for i in range(20)]
    data = zip_bytes(members) if kind == "zip" else tar_bytes(members)
    cut = data[: int(len(data) * 0.6)]
    toy(RemoteFile(f"toy/FLIC.{kind}", server.put(f"v/FLIC.{kind}", cut), extract=True))
    with pytest.raises(UserError, match="damaged or truncated"):
        acquire("toy", tmp_path, log=quiet)
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == [f"FLIC.{kind}.rejected"]
    assert not (tmp_path / "checksums.json").exists()


def test_unsafe_reasons_by_hand():
    assert unsafe_reason("images/a.jpg") is None and unsafe_reason("./images//a.jpg") is None
    assert "absolute" in unsafe_reason("/etc/passwd") and "absolute" in unsafe_reason("C:\\x")
    assert "outside" in unsafe_reason("a/../../x") and "outside" in unsafe_reason("a\\..\\..\\x")
    assert "outside" in unsafe_reason("a/../b")  # the official archives never climb: any '..' is refused
    assert "NUL" in unsafe_reason("a\x00b")
    assert "255" in unsafe_reason("a/" + "x" * 256) and unsafe_reason("a/" + "x" * 255) is None
    assert "4096" in unsafe_reason("/".join(["x" * 200] * 21)) and unsafe_reason("/".join(["x" * 200] * 20)) is None


def test_extract_is_atomic_and_idempotent(tmp_path):
    archive = tmp_path / "x.zip"
    archive.write_bytes(zip_bytes([("top/a.txt", b"a"), ("top/sub/b.txt", b"b"), ("README", b"r")]))
    dest = tmp_path / "out"
    assert extract(archive, dest, log=quiet) == ["README", "top"]
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"b" and is_extracted(archive, dest)
    assert extract(archive, dest, log=quiet) == ["README", "top"]  # already done: nothing happens
    other = tmp_path / "y.zip"
    other.write_bytes(zip_bytes([("top/c.txt", b"c")]))
    with pytest.raises(UserError, match="already exist"):  # never merges into what is there
        extract(other, dest, log=quiet)
    assert not (dest / "top" / "c.txt").exists() and not is_extracted(other, dest)


def h5_bytes(folder: Path, seed: int = 0) -> bytes:
    import h5py
    import numpy as np

    path = folder / f"tmp{seed}.h5"
    with h5py.File(path, "w") as f:
        f["part"] = np.random.default_rng(seed).uniform(0, 500, (300, 16, 2))
    data = path.read_bytes()
    path.unlink()
    return data


def test_truncated_h5_without_checksum_is_rejected(server, toy, tmp_path):
    data = h5_bytes(tmp_path)
    toy(RemoteFile("toy/train.h5", server.put("a/train.h5", data[: len(data) * 2 // 3])))
    with pytest.raises(UserError, match="HDF5"):
        acquire("toy", tmp_path / "data", log=quiet)
    assert sorted(p.name for p in (tmp_path / "data" / "toy").iterdir()) == ["train.h5.rejected"]
    server.put("a/train.h5", data)
    acquire("toy", tmp_path / "data", log=quiet)  # a good copy later is accepted and recorded
    assert (tmp_path / "data" / "toy" / "train.h5").read_bytes() == data


def serve_release(server, dataset: str, missing=()):
    """Put the files of DATASETS[dataset] where --mirror server.url finds them (real split files when pinned)."""
    for f in download.DATASETS[dataset]:
        name = Path(f.name).name
        if name in missing:
            continue
        if f.sha256:
            data = (SHARED / f.name).read_bytes()
        elif name.endswith(".zip"):
            data = zip_bytes([(f"{Path(name).stem}/images/a.jpg", b"jpeg"), (f"{Path(name).stem}/x.mat", b"m")])
        elif name.endswith(".tar.gz"):
            data = tar_bytes([("images/000001163.jpg", b"jpeg"), ("images/000003072.jpg", b"jpeg")])
        else:
            data = h5_bytes(server.root.parent, seed=len(name))  # train.h5 / test.h5 of MPII: not pinned
        server.put(mirror_url(f.url, server.url).split("/", 3)[3], data)


@pytest.mark.skipif(not (SHARED / "flic" / "train.h5").exists(), reason="shared FLIC files missing")
def test_cli_flic_end_to_end(server, tmp_path, capsys):
    serve_release(server, "flic")
    root = tmp_path / "data"
    assert cli.main(["download", "flic", "--root", str(root), "--mirror", server.url]) == 0
    assert (root / "flic" / "FLIC" / "images" / "a.jpg").read_bytes() == b"jpeg"
    assert sha((root / "flic" / "valid.h5").read_bytes()) == sha((SHARED / "flic" / "valid.h5").read_bytes())
    assert set(json.loads((root / "checksums.json").read_text())["files"]) == {
        "flic/train.h5", "flic/valid.h5", "flic/FLIC.zip"}
    requests = len(server.requests)
    assert cli.main(["download", "flic", "--root", str(root), "--mirror", server.url]) == 0
    assert len(server.requests) == requests


@pytest.mark.skipif(not (SHARED / "mpii" / "valid.h5").exists(), reason="shared MPII files missing")
def test_cli_mpii_failure_keeps_what_was_verified(server, tmp_path, capsys, monkeypatch):
    # train.h5 and test.h5 are pinned by git blob id, but not here: the test serves stand-ins for them
    monkeypatch.setitem(download.DATASETS, "mpii", tuple(dataclasses.replace(f, git_blob=None)
                                                         for f in download.DATASETS["mpii"]))
    serve_release(server, "mpii", missing={"train.h5"})
    root = tmp_path / "data"
    assert cli.main(["download", "mpii", "--root", str(root), "--mirror", server.url]) == 2
    err = capsys.readouterr().err
    assert "1 of 5 mpii file(s) failed" in err and "mpii/train.h5 from" in err and "HTTP 404" in err
    assert str((root / "mpii" / "train.h5").resolve()) in err
    assert (root / "mpii" / "images" / "000001163.jpg").exists() and (root / "mpii" / "valid.h5").exists()
    before = {p: p.stat().st_mtime_ns for p in (root / "mpii").iterdir()}
    serve_release(server, "mpii")
    requests = len(server.requests)
    assert cli.main(["download", "mpii", "--root", str(root), "--mirror", server.url]) == 0
    assert [r[0] for r in server.requests[requests:]] == [
        "/princeton-vl/pose-hg-train/master/data/mpii/annot/train.h5"]  # nothing else fetched again
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # nor touched
    shutil.rmtree(server.root)


# ------------------------------------------------------------------------------ hostile servers, full disks
def test_a_stall_keeps_the_bytes_received_and_the_next_run_resumes(server, toy, tmp_path):
    data = blob()
    url = server.put("x/blob.bin", data)
    server.stall_once["/x/blob.bin"] = 450_000
    toy(RemoteFile("toy/blob.bin", url, sha(data), len(data)))
    with pytest.raises(UserError, match="lost or stalled after 450,000 of 2,999,808 bytes"):
        acquire("toy", tmp_path, timeout=0.5, log=quiet)
    part = tmp_path / "toy" / "blob.bin.part"
    assert part.read_bytes() == data[:450_000]  # nothing that arrived was thrown away
    acquire("toy", tmp_path, timeout=5, log=quiet)
    assert server.requests[-1] == ("/x/blob.bin", "bytes=450000-")
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == data and not part.exists()


def test_a_range_from_the_wrong_offset_restarts_the_file_cleanly(server, toy, tmp_path):
    data = blob()
    server.cut_once.add("/x/blob.bin")
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data)))  # not pinned: only the ledger would notice
    with pytest.raises(UserError, match="resume"):
        acquire("toy", tmp_path, log=quiet)
    kept = (tmp_path / "toy" / "blob.bin.part").stat().st_size
    server.shift = 1000  # answers "206 bytes kept+1000-": splicing it in would lose 1000 bytes
    acquire("toy", tmp_path, log=quiet)
    assert server.requests[-2:] == [("/x/blob.bin", f"bytes={kept}-"), ("/x/blob.bin", None)]
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == data
    assert json.loads((tmp_path / "checksums.json").read_text())["files"]["toy/blob.bin"]["sha256"] == sha(data)


class FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written (what a full disk does)."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, block):
        if len(block) > self.room:
            self.f.write(block[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(block)
        return self.f.write(block)

    def flush(self):
        self.f.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_full_disk_while_downloading_is_one_clear_error_and_keeps_the_partial_file(server, toy, tmp_path,
                                                                                    monkeypatch, capsys):
    data = blob()
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), sha(data), len(data)))
    real_open = open
    root = tmp_path / "data"
    with monkeypatch.context() as m, pytest.raises(UserError) as info:
        m.setattr(transfer, "open", lambda path, mode="r", *a: FullDisk(real_open(path, mode, *a), 1_200_000)
                  if "w" in mode or "a" in mode else real_open(path, mode, *a), raising=False)
        m.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0))
        acquire("toy", root, log=quiet)
    part = root / "toy" / "blob.bin.part"
    assert str(info.value) == (f"no space left on device while downloading into {part}; free some space or choose "
                               f"another folder. The partial file {part} is kept: run the same command again to "
                               "resume")
    assert part.read_bytes() == data[:1_200_000] and not (root / "toy" / "blob.bin").exists()
    assert not (root / "checksums.json").exists()
    acquire("toy", root, log=quiet)  # space freed: the same command resumes and completes
    assert server.requests[-1][1] == "bytes=1200000-" and (root / "toy" / "blob.bin").read_bytes() == data


def fake_read_only(monkeypatch, folder: Path) -> None:
    """Make `folder` refuse new files and folders: chmod where that binds, else (root) the calls themselves."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(real):
        def call(path, *args, **kwargs):
            if Path(path).resolve().is_relative_to(folder.resolve()) and kwargs.get("dir_fd") is None:
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "open", refuse(real_open))
    monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))


def test_a_read_only_data_folder_is_refused_before_anything_is_fetched(server, toy, tmp_path, monkeypatch):
    data = blob()
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), sha(data), len(data)))
    root = tmp_path / "data"
    fake_read_only(monkeypatch, root)
    try:
        with pytest.raises(UserError, match=r"(read-only|permission denied) while creating a file in .*data; "
                                            "choose a folder you can write to"):
            acquire("toy", root, log=quiet)
    finally:
        root.chmod(0o755)
    assert server.requests == [] and list(root.iterdir()) == []


def test_bad_timeout_and_workers_are_user_errors(tmp_path, capsys):
    for flag, value in (("--timeout", "-1"), ("--timeout", "nan"), ("--timeout", "0"), ("--workers", "0")):
        assert cli.main(["download", "flic", "--root", str(tmp_path / "d"), flag, value]) == 2
        err = capsys.readouterr().err
        assert f"{flag} must be" in err and "Traceback" not in err, (flag, value, err)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("ledger", "message"), [
    ("FOLDER", "not valid JSON"),
    ('{"files": {"toy/blob.bin": "abc"}}', r"the entry of 'toy/blob.bin' is not"),
    ('{"files": {"toy/blob.bin": {"sha256": "ab", "size": "12"}}}', r"the entry of 'toy/blob.bin' is not"),
    ('{"files": [1, 2]}', "not valid JSON"),
])
def test_a_malformed_ledger_is_a_user_error(toy, tmp_path, ledger, message):
    toy(RemoteFile("toy/blob.bin", "http://127.0.0.1:9/x"))
    path = tmp_path / "checksums.json"
    if ledger == "FOLDER":
        path.mkdir()
    else:
        path.write_text(ledger)
    with pytest.raises(UserError, match=message):
        acquire("toy", tmp_path, log=quiet)


def test_files_pinned_by_git_blob_id_refuse_other_bytes(server, toy, tmp_path):
    official, other = blob(seed=1), blob(seed=2)
    blob_id = hashlib.sha1(b"blob %d\0" % len(official) + official).hexdigest()
    url = server.put("x/train.h5", other)
    toy(RemoteFile("toy/train.h5", url, git_blob=blob_id))
    with pytest.raises(UserError, match=f"its git blob id is .*, not the official {blob_id}"):
        acquire("toy", tmp_path, log=quiet)
    assert sorted(os.listdir(tmp_path / "toy")) == ["train.h5.rejected"]
    (tmp_path / "toy" / "train.h5").write_bytes(other)  # the same bytes placed by hand: refused too
    with pytest.raises(UserError, match="already exists but its git blob id"):
        acquire("toy", tmp_path, log=quiet)
    (tmp_path / "toy" / "train.h5").unlink()
    server.put("x/train.h5", official)
    acquire("toy", tmp_path, log=quiet)  # pinned, so not read as HDF5 (these bytes are not): verified by the pin
    assert (tmp_path / "toy" / "train.h5").read_bytes() == official


def test_the_pinned_blob_ids_are_pose_hg_trains():
    # `git ls-tree -r HEAD data/mpii/annot` in princeton-vl/pose-hg-train; valid.h5's id checks the method
    pins = {Path(f.name).name: f.git_blob for f in download.DATASETS["mpii"] if f.git_blob}
    assert pins == {"train.h5": "50cb99ed82aa1873fda3f419e7dc71208931db9a",
                    "test.h5": "a72a6f875d2a95328ab9ea9ab97d0abd545ba808"}
    if (SHARED / "mpii" / "valid.h5").exists():
        assert download.git_blob_id(SHARED / "mpii" / "valid.h5") == "b9e088439064a351a24d0b2ecfc58fc86e5afe86"


def test_a_full_disk_while_recording_the_ledger_keeps_the_verified_file(server, toy, tmp_path, monkeypatch):
    data = blob()
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data)))
    real_write_text = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.endswith(".partial"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, *args, **kwargs)

    with monkeypatch.context() as m, pytest.raises(UserError) as info:
        m.setattr(Path, "write_text", write_text)
        acquire("toy", tmp_path, log=quiet)
    assert str(info.value).startswith(f"no space left on device while writing {tmp_path / 'checksums.json'}; ")
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == data and sorted(os.listdir(tmp_path)) == ["served", "toy"]
    requests = len(server.requests)
    acquire("toy", tmp_path, log=quiet)  # space freed: recorded without downloading again
    assert len(server.requests) == requests
    assert json.loads((tmp_path / "checksums.json").read_text())["files"]["toy/blob.bin"]["sha256"] == sha(data)


# ------------------------------------------------------------------------------ endless, slow and killed downloads
@pytest.mark.parametrize("pinned", [True, False])
def test_an_endless_response_is_cut_at_the_expected_size(server, toy, tmp_path, monkeypatch, pinned):
    data = blob(25_600)
    server.endless.add("/x/blob.bin")  # no Content-Length, the file over and over
    if not pinned:  # nothing declares a size: the ceiling for undeclared sizes bounds it
        monkeypatch.setattr(transfer, "UNDECLARED_CAP", len(data))
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), *((sha(data), len(data)) if pinned else ())))
    start = time.monotonic()
    with pytest.raises(UserError, match="sent more than the 25,600 bytes expected") as info:
        acquire("toy", tmp_path, timeout=5, log=quiet)
    assert time.monotonic() - start < 5 and "another --mirror" in str(info.value)
    files = {p.name: p.stat().st_size for p in (tmp_path / "toy").iterdir()}
    assert list(files) == ["blob.bin.rejected"]  # never taken for complete, nor resumed from
    assert files["blob.bin.rejected"] <= len(data)  # never more than expected on disk
    assert not (tmp_path / "checksums.json").exists()


def test_a_response_announced_longer_than_the_pinned_size_is_refused_unread(server, toy, tmp_path):
    data = blob()
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), sha(data[:1000]), 1000))
    with pytest.raises(UserError, match="announced 2,999,808 bytes, more than the 1,000 expected"):
        acquire("toy", tmp_path, log=quiet)
    assert list((tmp_path / "toy").iterdir()) == []


@pytest.mark.parametrize("known", [True, False])
def test_a_mirror_slower_than_the_floor_rate_is_given_up_after_the_grace_time(server, toy, tmp_path, known):
    data = blob(51_200)
    server.drip["/x/blob.bin"] = 0.05  # 20 bytes/s, each byte well within --timeout
    if not known:  # no pin, no Content-Length: the size cap is 16 GiB, days at the floor rate
        server.no_length.add("/x/blob.bin")
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), *((sha(data), len(data)) if known else ())))
    start = time.monotonic()
    with pytest.raises(UserError, match=r"kB/s on average\), slower than 20 kB/s") as info:
        acquire("toy", tmp_path, timeout=0.25, log=quiet)  # grace: 4 x 0.25 s = 1 s
    assert 0.95 < time.monotonic() - start < 3
    assert "run the same command again to resume" in str(info.value) and "another --mirror" in str(info.value)
    kept = (tmp_path / "toy" / "blob.bin.part").read_bytes()
    assert 0 < len(kept) < 100 and kept == data[: len(kept)]  # what arrived is kept for the next run
    assert not (tmp_path / "checksums.json").exists()


def test_a_mirror_above_the_floor_rate_is_never_cut_however_long_it_takes(server, toy, tmp_path, monkeypatch):
    data = blob(256)[:60]
    server.drip["/x/blob.bin"] = 0.025  # 40 bytes/s: 1.5 s, past the 1 s grace
    server.no_length.add("/x/blob.bin")
    monkeypatch.setattr(transfer, "FLOOR_RATE", 10)  # bytes/s, a quarter of the rate
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data)))
    start = time.monotonic()
    acquire("toy", tmp_path, timeout=0.25, log=quiet)
    assert time.monotonic() - start > 1  # judged after the grace time, and kept on
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == data


KILLED = """
import sys
from hgstudy.data import download
url, digest, size, root = sys.argv[1:]
download.DATASETS["toy"] = (download.RemoteFile("toy/blob.bin", url, digest, int(size)),)
download.acquire("toy", root, timeout=30)
"""


@pytest.mark.slow
def test_a_killed_download_keeps_what_arrived_and_resumes(server, toy, tmp_path):
    data = blob()
    url = server.put("x/blob.bin", data)
    server.stall_once["/x/blob.bin"] = 1_000  # less than a file buffer: only a flush puts it on disk
    child = subprocess.Popen([sys.executable, "-c", KILLED, url, sha(data), str(len(data)), str(tmp_path)],
                             cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    part = tmp_path / "toy" / "blob.bin.part"
    try:
        assert server.stalled.wait(20), "the child never asked for the file"
        end = time.monotonic() + 3
        while time.monotonic() < end and not (part.exists() and part.stat().st_size >= 1_000):
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert part.read_bytes() == data[:1_000]
    toy(RemoteFile("toy/blob.bin", url, sha(data), len(data)))
    acquire("toy", tmp_path, log=quiet)
    assert server.requests[-1] == ("/x/blob.bin", "bytes=1000-")
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == data and not part.exists()


def test_a_resumed_file_is_verified_before_it_takes_its_name(server, toy, tmp_path):
    data = blob()
    toy(RemoteFile("toy/blob.bin", server.put("x/blob.bin", data), sha(data), len(data)))
    part = tmp_path / "toy" / "blob.bin.part"
    part.parent.mkdir()
    part.write_bytes(b"\0" * 1000)  # a partial file that is not the start of the file
    with pytest.raises(UserError, match="its SHA-256 is"):
        acquire("toy", tmp_path, log=quiet)
    assert server.requests == [("/x/blob.bin", "bytes=1000-")]
    assert sorted(os.listdir(tmp_path / "toy")) == ["blob.bin.rejected"]
