"""Hostile archives: the extractor accepts regular files and folders only, and nothing it does follows a link.

The archives are built here, among them the CVE-2025-4517 symlink chain that defeats tarfile's own `data`
filter on Python < 3.11.13 (the one this project is tested on): served from 127.0.0.1 as the MPII image
archive, it must be refused with nothing written outside the data folder and no link left in it.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
import tarfile
import urllib.parse
import zipfile
from pathlib import Path

import pytest
from test_download import Server, quiet

from hgstudy import cli
from hgstudy.core.errors import UserError
from hgstudy.data import archive, download
from hgstudy.data.archive import extract, is_extracted

TARBALL = "mpii_human_pose_v1.tar.gz"


def tar_bytes(members, mode="w:gz") -> bytes:
    """A tar of (name, spec): bytes (a file), "dir", ("symlink", target), ("hardlink", target), "fifo", "chr"."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for name, spec in members:
            info = tarfile.TarInfo(name)
            if isinstance(spec, bytes):
                info.size = len(spec)
                tar.addfile(info, io.BytesIO(spec))
                continue
            if spec == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o777
            elif spec in ("fifo", "chr"):
                info.type = tarfile.FIFOTYPE if spec == "fifo" else tarfile.CHRTYPE
            else:
                info.type = tarfile.SYMTYPE if spec[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = spec[1]
            tar.addfile(info)
    return out.getvalue()


def cve_2025_4517_members(dest: Path, climb: int) -> list:
    """The symlink chain of CVE-2025-4517, for extraction into folder `dest`.

    Sixteen links `a`..`p`, each to a long folder name, make a path whose real form just fits PATH_MAX; a
    last link under it, pointing back up by 16, takes its real resolution past PATH_MAX, where Python's
    os.path.realpath (strict=False) stops resolving. tarfile's `data` filter, which checks links with
    realpath, then believes `escape` (that link, then `climb` levels up) stays inside `dest`; the kernel
    resolves it `climb` levels above `dest`. Through it a hard link reaches an outside file, which is then
    overwritten, and a new file is created outside.
    """
    steps = "abcdefghijklmnop"
    path_max = os.pathconf(dest.parents[-2], "PC_PATH_MAX")
    component = "d" * min(archive.NAME_MAX, (path_max - len(str(dest)) - 1) // (len(steps) + 1))
    members, path = [], ""
    for step in steps:
        members += [(os.path.join(path, component), "dir"), (os.path.join(path, step), ("symlink", component))]
        path = os.path.join(path, component)
    last = os.path.join(*steps, "l" * 254)
    members.append((last, ("symlink", os.path.join(*[".."] * len(steps)))))
    members.append(("escape", ("symlink", os.path.join(last, *[".."] * climb))))
    members.append(("flaglink", ("hardlink", "escape/victim.txt")))
    members.append(("flaglink", b"overwritten"))
    members.append(("escape/newfile.txt", b"created outside"))
    return members


def links_under(folder: Path) -> list[Path]:
    return [Path(top) / n for top, dirs, files in os.walk(folder) for n in dirs + files if (Path(top) / n).is_symlink()]


def snapshot(folder: Path, skip: set) -> dict:
    """Every path under `folder` (not under `skip`) with its content or kind: what an escape would change."""
    seen = {}
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if Path(top) / d not in skip]
        for name in files:
            p = Path(top) / name
            seen[p] = p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p)
    return seen


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "served")
    yield s
    s.close()


def serve_tarball(server: Server, data: bytes) -> None:
    remote = next(f for f in download.DATASETS["mpii"] if f.name.endswith(TARBALL))
    server.put(urllib.parse.urlsplit(remote.url).path.lstrip("/"), data)


def test_cve_2025_4517_chain_is_refused_and_nothing_escapes(server, tmp_path, capsys):
    root = tmp_path / "data"
    victim = tmp_path / "victim.txt"  # outside --root: the attack overwrites it with the archive's bytes
    victim.write_bytes(b"precious")
    dest = root / "mpii" / f".{TARBALL}.extracting"  # where the extractor unpacks before moving into place
    serve_tarball(server, tar_bytes(cve_2025_4517_members(dest, climb=3)))
    before = snapshot(tmp_path, {root, server.root})

    argv = ["download", "mpii", "--root", str(root), "--mirror", server.url, "--only", TARBALL]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "unsafe (symbolic link" in err and "Nothing was extracted" in err
    assert snapshot(tmp_path, {root, server.root}) == before  # nothing outside was written or overwritten
    assert victim.read_bytes() == b"precious" and not (tmp_path / "newfile.txt").exists()
    assert links_under(root) == []
    assert sorted(p.name for p in (root / "mpii").iterdir()) == [f"{TARBALL}.rejected"]  # nothing looks verified
    assert not (root / "checksums.json").exists()


def test_the_chain_really_defeats_tarfiles_own_data_filter_on_this_python(tmp_path):
    """The archive above is a real attack: where tarfile has the bug, its `data` filter lets it out."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "demo" / "mpii" / f".{TARBALL}.extracting"  # as long as the real one: same chain
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(cve_2025_4517_members(dest, climb=3)))) as tar:
        try:
            tar.extractall(dest, filter="data")
        except (OSError, KeyError, tarfile.TarError) as exc:
            pytest.skip(f"this Python's tarfile refuses the chain itself ({type(exc).__name__}): it is patched")
    assert victim.read_bytes() == b"overwritten" and (tmp_path / "newfile.txt").read_bytes() == b"created outside"


@pytest.mark.parametrize(("members", "reason"), [
    ([("images/a.jpg", b"ok"), ("images/b.jpg", ("symlink", "a.jpg"))], "symbolic link to 'a.jpg'"),
    ([("images/a.jpg", b"ok"), ("images/b.jpg", ("hardlink", "images/a.jpg"))], "hard link to 'images/a.jpg'"),
    ([("images/fifo", "fifo")], "device, FIFO"),
    ([("images/tty", "chr")], "device, FIFO"),
    ([("images/../../x.jpg", b"x")], "'..'"),
    ([("/tmp/x.jpg", b"x")], "absolute path"),
    ([("images/" + "x" * 256, b"x")], "longer than 255 bytes"),
    ([("images", b"a file"), ("images/a.jpg", b"x")], "a file and a folder of the same name"),
    ([("images/a.jpg", b"x"), ("images/a.jpg/b.jpg", b"x")], "a file and a folder of the same name"),
    ([("images/a", "dir"), ("images/a", b"x")], "a file and a folder of the same name"),
])
def test_anything_but_files_and_folders_is_refused(tmp_path, members, reason):
    path = tmp_path / "x.tar"
    path.write_bytes(tar_bytes(members, mode="w"))
    dest = tmp_path / "out"
    with pytest.raises(UserError, match="unsafe") as info:
        extract(path, dest, log=quiet)
    assert reason in str(info.value) and repr(members[-1][0]) in str(info.value)
    assert list(dest.iterdir()) == [] and sorted(os.listdir(tmp_path)) == ["out", "x.tar"]


def zip_info(name: str, kind: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system, info.external_attr = 3, (kind | 0o777) << 16
    return info


@pytest.mark.parametrize(("entry", "reason"), [
    ((zip_info("FLIC/link", stat.S_IFLNK), b"/etc/passwd"), "symbolic link"),
    ((zip_info("FLIC/fifo", stat.S_IFIFO), b""), "device, FIFO"),
    (("../evil.txt", b"x"), "'..'"),
    (("/abs.txt", b"x"), "absolute path"),
    (("FLIC\\..\\..\\evil.txt", b"x"), "'..'"),
])
def test_hostile_zips_are_refused_before_anything_is_written(tmp_path, entry, reason):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("FLIC/images/a.jpg", b"fine")
        zf.writestr(*entry)
    path = tmp_path / "FLIC.zip"
    path.write_bytes(out.getvalue())
    with pytest.raises(UserError, match="unsafe") as info:
        extract(path, tmp_path / "out", log=quiet)
    assert reason in str(info.value)
    assert list((tmp_path / "out").iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_regular_archive_is_extracted_with_normalised_names_and_plain_modes(tmp_path):
    members = [(".", "dir"), ("./images", "dir"), ("./images//a.jpg", b"a"), ("images/sub/b.jpg", b"b")]
    path = tmp_path / "x.tar.gz"
    path.write_bytes(tar_bytes(members))
    assert extract(path, tmp_path / "out", log=quiet) == ["images"]
    assert (tmp_path / "out" / "images" / "a.jpg").read_bytes() == b"a"
    assert (tmp_path / "out" / "images" / "sub" / "b.jpg").read_bytes() == b"b"
    assert stat.S_IMODE((tmp_path / "out" / "images" / "a.jpg").stat().st_mode) & 0o7022 == 0  # no setuid, no o+w
    assert is_extracted(path, tmp_path / "out") and links_under(tmp_path / "out") == []


def test_a_link_planted_where_the_extractor_works_is_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    path = tmp_path / "x.tar.gz"
    path.write_bytes(tar_bytes([("images/a.jpg", b"a")]))
    (dest / f".{path.name}.extracting").symlink_to(outside)  # as if a previous run had been subverted
    assert extract(path, dest, log=quiet) == ["images"]
    assert list(outside.iterdir()) == [] and links_under(dest) == []
    assert (dest / "images" / "a.jpg").read_bytes() == b"a"


def test_an_archive_may_not_plant_the_datasets_own_files(server, tmp_path, monkeypatch):
    # train.h5 not downloaded yet: a tarball carrying one would have it taken for the real file
    data = tar_bytes([("images/a.jpg", b"jpeg"), ("train.h5", b"fake annotations")])
    serve_tarball(server, data)
    root = tmp_path / "data"
    with pytest.raises(UserError, match=r"member 'train.h5' is unsafe \(it would stand in for the dataset's own"):
        download.acquire("mpii", root, mirror=server.url, only=[TARBALL], log=quiet)
    assert sorted(os.listdir(root / "mpii")) == [f"{TARBALL}.rejected"]


def test_disk_full_while_extracting_keeps_the_archive_and_leaves_nothing_half_done(server, tmp_path, monkeypatch):
    serve_tarball(server, tar_bytes([(f"images/{i}.jpg", b"x" * 1000) for i in range(5)]))
    calls = []

    def fill_up(source, target):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        shutil.copyfileobj(source, target)

    monkeypatch.setattr(archive, "_copy", fill_up)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0))
    root = tmp_path / "data"
    with pytest.raises(UserError, match=r"no space left on device while extracting into .*; free some space"):
        download.acquire("mpii", root, mirror=server.url, only=[TARBALL], log=quiet)
    # the archive itself is fine: kept under its name to extract next time, but never recorded as verified
    assert sorted(os.listdir(root / "mpii")) == [TARBALL]
    assert not (root / "checksums.json").exists()
    monkeypatch.undo()
    download.acquire("mpii", root, mirror=server.url, only=[TARBALL], log=quiet)  # space freed: it completes
    assert sorted(os.listdir(root / "mpii" / "images")) == [f"{i}.jpg" for i in range(5)]
    assert json.loads((root / "checksums.json").read_text())["files"][f"mpii/{TARBALL}"]["size"] > 0


def test_zip_members_are_crc_checked(tmp_path):
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("FLIC/a.txt", b"a" * 10_000)
    data = bytearray(stored.getvalue())
    data[data.index(b"aaaa") + 100] = ord("b")  # one byte flipped inside the member
    path = tmp_path / "FLIC.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="damaged or truncated"):
        extract(path, tmp_path / "out", log=quiet)
    assert list((tmp_path / "out").iterdir()) == []
