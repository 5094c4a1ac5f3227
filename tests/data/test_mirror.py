"""The synthetic MPII/FLIC mirror (scripts/paper_mirror.py): built small from the real annotation files, served on
127.0.0.1, fetched and verified by the real downloader, and read by the real loaders."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import h5py
import pytest

from hgstudy.core.errors import UserError
from hgstudy.data.download import acquire
from hgstudy.data.flic import FLIC
from hgstudy.data.mpii import MPII
from hgstudy.mannequin.poses import load_poses

ROOT = Path(__file__).resolve().parents[2]
TARBALL = "andriluka14cvpr/mpii_human_pose_v1.tar.gz"


def quiet(message):
    pass


@pytest.fixture(scope="module")
def paper_mirror():
    spec = importlib.util.spec_from_file_location("paper_mirror", ROOT / "scripts" / "paper_mirror.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mirror(paper_mirror, shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mirror")
    paper_mirror.build(out, shared_data, train=3, valid=8, log=quiet)
    return out


@pytest.fixture
def server(paper_mirror, mirror):
    s = paper_mirror.Server(mirror, seconds=60)
    yield s
    s.close()


def test_the_downloader_fetches_verifies_and_extracts_the_mirror(mirror, server, shared_data, tmp_path):
    root, pins = tmp_path / "data", mirror / "pins.json"
    for name in ("mpii", "flic"):
        acquire(name, root, mirror=server.url, pins=pins, log=quiet)
    pinned = json.loads(pins.read_text())["files"]
    assert "mpii/valid.h5" not in pinned  # the real file, verified by its official pin
    assert (root / "mpii" / "valid.h5").read_bytes() == (shared_data / "mpii" / "valid.h5").read_bytes()
    ledger = json.loads((root / "checksums.json").read_text())["files"]
    assert {name: entry["sha256"] for name, entry in ledger.items() if name in pinned} == {
        name: entry["sha256"] for name, entry in pinned.items()}
    poses = load_poses()
    sizes = {n.decode(): tuple(s) for n, s in zip(poses.image_names, poses.image_size, strict=True)}
    for split in ("train", "valid"):
        with h5py.File(root / "mpii" / f"{split}.h5") as f:
            names = [n.decode() for n in f["imgname"][: 3 if split == "train" else 8]]
        for name in names:  # the real names, at the real sizes
            height, width = cv2.imread(str(root / "mpii" / "images" / name)).shape[:2]
            assert (width, height) == sizes[name]
    train = MPII(root, "train")
    assert len(train) == 3 and train[0]["image"].shape == (3, 256, 256)
    assert len(MPII(root, "valid")) == 2958  # the real validation split; its first 8 people have images
    assert MPII(root, "valid")[7]["image"].max() > 0
    flic = FLIC(root, "valid")
    assert len(flic) == 8 and flic[7]["image"].shape == (3, 256, 256)
    frame = root / "flic" / "FLIC" / "images" / FLIC(root, "train").split.names[0]
    assert cv2.imread(str(frame)).shape == (480, 720, 3)
    messages = []
    for name in ("mpii", "flic"):  # verified files are not fetched again
        acquire(name, root, mirror=server.url, pins=pins, log=messages.append)
    assert not [m for m in messages if "downloading" in m]


def test_without_the_pins_the_fabricated_files_are_refused(server, tmp_path):
    with pytest.raises(UserError) as error:
        acquire("mpii", tmp_path, mirror=server.url, only=["train.h5", "test.h5"], log=quiet)
    assert str(error.value).count("not the official") == 2  # git blob ids: the default verification is intact
    with pytest.raises(UserError, match=r"flic/train.h5 .* not the expected 1,419,577"):  # its official size
        acquire("flic", tmp_path, mirror=server.url, only=["train.h5"], log=quiet)
    with pytest.raises(UserError, match=r"--mirror-pins .*missing or empty"):
        acquire("flic", tmp_path, mirror=server.url, pins=tmp_path / "nowhere.json", log=quiet)


def test_a_cut_download_resumes_with_a_range_request(mirror, server, tmp_path):
    data = (mirror / "www" / TARBALL).read_bytes()
    part = tmp_path / "mpii" / "mpii_human_pose_v1.tar.gz.part"
    part.parent.mkdir()
    part.write_bytes(data[: len(data) // 3])
    acquire("mpii", tmp_path, mirror=server.url, pins=mirror / "pins.json", only=[Path(TARBALL).name],
            do_extract=False, log=quiet)
    assert hashlib.sha256((tmp_path / "mpii" / Path(TARBALL).name).read_bytes()).digest() == \
        hashlib.sha256(data).digest()


def fetch(url: str, range_: str | None = None, method: str = "GET"):
    request = urllib.request.Request(url, headers={"Range": range_} if range_ else {}, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers, response.read()


def test_the_server_answers_byte_ranges_like_the_real_ones(mirror, server):
    url, data = f"{server.url}/{TARBALL}", (mirror / "www" / TARBALL).read_bytes()
    assert fetch(url)[2] == data
    status, headers, body = fetch(url, "bytes=5-9")
    assert (status, body, headers["Content-Range"]) == (206, data[5:10], f"bytes 5-9/{len(data)}")
    assert fetch(url, "bytes=-4")[2] == data[-4:] and fetch(url, f"bytes={len(data) - 3}-")[2] == data[-3:]
    status, headers, body = fetch(url, method="HEAD")
    assert (status, int(headers["Content-Length"]), body) == (200, len(data), b"")
    for path, range_, code in ((TARBALL, f"bytes={len(data)}-", 416), ("nothing.zip", None, 404),
                               ("andriluka14cvpr/", None, 404), ("../pins.json", None, 404)):
        with pytest.raises(urllib.error.HTTPError) as error:
            fetch(f"{server.url}/{path}", range_)
        assert error.value.code == code


def test_the_server_stops_by_itself(paper_mirror, mirror):
    s = paper_mirror.Server(mirror, seconds=0.3)
    s.thread.join(timeout=10)
    assert not s.thread.is_alive()
    s.close()
    with pytest.raises(urllib.error.URLError):
        fetch(f"{s.url}/{TARBALL}")


def test_a_bad_build_is_a_user_error(paper_mirror, mirror, tmp_path):
    with pytest.raises(UserError, match="already holds a mirror"):
        paper_mirror.build(mirror, log=quiet)
    with pytest.raises(UserError, match="FLIC split file"):
        paper_mirror.build(tmp_path / "m", tmp_path, train=2, valid=8, datasets=("flic",), log=quiet)
    assert paper_mirror.main(["serve", str(tmp_path / "none"), "--seconds", "1"]) == 2
