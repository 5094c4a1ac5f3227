"""Writing files: atomic replacement, and full disks, read-only folders and permissions as one clear error.

A full disk is simulated without root by making the write raise what the operating system (or torch.save)
raises, with shutil.disk_usage reporting no free space; a read-only folder with chmod where that binds (not
as root, where chmod stops nothing) and otherwise by making the calls themselves fail with EROFS.
"""

import errno
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hgstudy.core.errors import UserError
from hgstudy.core.files import DiskError, atomic_path, check_space, check_writable, disk_error, write_text
from hgstudy.data import store


def no_space(monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12, 0))


def test_atomic_path_keeps_the_previous_version_and_no_partial(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(KeyError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise KeyError("killed half-way")
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_two_writers_of_one_file_never_share_a_partial_name(tmp_path):
    path = tmp_path / "checkpoint.pt"
    with atomic_path(path) as a, atomic_path(path) as b:
        assert a != b and a.parent == b.parent == tmp_path
        assert a.name.startswith(f"checkpoint.pt.{os.getpid()}.") and a.name.endswith(".partial")
        a.write_text("a")
        b.write_text("b")
    assert path.read_text() == "a" and os.listdir(tmp_path) == ["checkpoint.pt"]  # each renamed its own file


def test_torch_style_full_disk_error_is_named(tmp_path, monkeypatch):
    path = write_text(tmp_path / "model.pt", "old")
    no_space(monkeypatch)
    with pytest.raises(DiskError) as info, atomic_path(path) as tmp:
        tmp.write_bytes(b"x" * 100)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    assert str(info.value) == (f"no space left on device while writing {path}; free some space or choose another "
                               "folder. Any previous version of it is intact")
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["model.pt"]


def test_a_runtime_error_with_space_left_is_not_called_a_full_disk(tmp_path):
    with pytest.raises(RuntimeError, match="something else"), atomic_path(tmp_path / "x") as tmp:
        tmp.write_text("x")
        raise RuntimeError("something else")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("code", "text"), [(errno.ENOSPC, "no space left on device"),
                                             (errno.EDQUOT, "disk quota exceeded"),
                                             (errno.EROFS, "the file system is read-only"),
                                             (errno.EACCES, "permission denied")])
def test_disk_errors_say_what_and_where(tmp_path, code, text):
    error = disk_error(OSError(code, os.strerror(code)), tmp_path / "f", "writing")
    assert isinstance(error, DiskError) and str(error).startswith(f"{text} while writing {tmp_path / 'f'}; ")
    assert disk_error(OSError(errno.ENOENT, "gone"), tmp_path / "f") is None  # not the disk's fault


@pytest.mark.parametrize("route", ["chmod", "erofs"])
def test_check_writable_refuses_a_read_only_folder(tmp_path, route, refuse_writes):
    folder = tmp_path / "ro"
    folder.mkdir()
    if route == "erofs":
        refuse_writes(folder)
    elif os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root's writes (the 'erofs' variant covers this)")
    else:
        folder.chmod(0o555)
    try:
        with pytest.raises(UserError, match=rf"(permission denied|read-only) while creating a file in {folder}; "
                                            "choose a folder you can write to"):
            check_writable(folder)
        with pytest.raises(UserError, match="while creating a file in"):
            check_writable(folder / "sub" / "run")
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_check_writable_under_a_file_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=f"cannot write to {tmp_path / 'file' / 'out'}"):
        check_writable(tmp_path / "file" / "out")


def test_check_space(tmp_path, monkeypatch):
    check_space(tmp_path, 1, "a test")
    no_space(monkeypatch)
    with pytest.raises(DiskError, match=r"no space left on device for a test in .*: it needs 2.00 GB, 0.00 GB"):
        check_space(tmp_path / "not" / "yet", 2 * 10**9, "a test")


# ----------------------------------------------------------------------------------------- the crop store
def store_inputs(tmp_path: Path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    return [f"{i}.png" for i in range(3)], np.full((3, 2), 40.0), np.full(3, 0.2), images


def test_crop_store_checks_the_space_before_decoding(tmp_path, monkeypatch):
    names, centers, scales, images = store_inputs(tmp_path)
    no_space(monkeypatch)
    monkeypatch.setattr(store, "_crop_group", lambda task: pytest.fail("decoded before the space was checked"))
    with pytest.raises(DiskError, match="no space left on device for the crop store"):
        store.prepare_store(names, centers, scales, images, tmp_path / "crops", size=32, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["images"]


def test_crop_store_on_a_disk_that_fills_up_leaves_nothing(tmp_path, monkeypatch):
    names, centers, scales, images = store_inputs(tmp_path)

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_allocate", full)
    with pytest.raises(DiskError, match=r"no space left on device while preparing .*crops.partial; .* Nothing was "
                                        "kept: run it again"):
        store.prepare_store(names, centers, scales, images, tmp_path / "crops", size=32, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["images"]
    monkeypatch.undo()
    store.prepare_store(names, centers, scales, images, tmp_path / "crops", size=32, progress=False)
    assert store.CropStore(tmp_path / "crops").crops.shape == (3, 32, 32, 3)
