"""Downloads and extraction against a local HTTP server (127.0.0.1, a thread) serving archives built here.

The server supports Range requests (unless told not to), can cut a file's connection half-way once, and
logs every request, so that resuming, not re-downloading and refusing are all observable.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from hgstudy import cli
from hgstudy.core.errors import UserError
from hgstudy.data import download
from hgstudy.data.archive import extract, is_extracted, unsafe_reason
from hgstudy.data.download import RemoteFile, acquire, mirror_url

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class Server:
    """Serves files under `root`; `cut_once` paths send half their bytes then drop the connection, once."""

    def __init__(self, root: Path):
        self.root, self.requests, self.cut_once, self.ranges = root, [], set(), True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                path = server.root / unquote(self.path.lstrip("/"))
                if not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                start = int(match.group(1)) if match and server.ranges else 0
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if self.path in server.cut_once:
                    server.cut_once.discard(self.path)
                    body = body[: len(body) // 2]
                self.wfile.write(body)

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
    assert unsafe_reason("images/a.jpg") is None and unsafe_reason("a/../b") is None
    assert "absolute" in unsafe_reason("/etc/passwd") and "absolute" in unsafe_reason("C:\\x")
    assert "outside" in unsafe_reason("a/../../x")
    assert unsafe_reason("a/link", "../b") is None
    assert "outside" in unsafe_reason("a/link", "../../b")
    assert "absolute" in unsafe_reason("a/link", "/etc")
    assert unsafe_reason("a/hard", "a/b", hardlink=True) is None
    assert "outside" in unsafe_reason("a/hard", "../b", hardlink=True)


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
def test_cli_mpii_failure_keeps_what_was_verified(server, tmp_path, capsys):
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
