import errno
import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real MPII/FLIC annotation files beside the project (../shared/data), as in CI."""
    path = TESTS.parents[1] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared reference data not found at {path}")
    return path


@pytest.fixture
def refuse_writes(monkeypatch):
    """`refuse_writes(folder)`: a read-only remount of `folder`, new files and folders there fail with EROFS
    (chmod binds no root, so the tests cannot rely on it)."""
    def under(folder: Path) -> None:
        real_open, real_mkdir = os.open, os.mkdir

        def refuse(real):
            def call(path, *args, **kwargs):
                if kwargs.get("dir_fd") is None and Path(path).resolve().is_relative_to(folder.resolve()):
                    raise OSError(errno.EROFS, "Read-only file system", str(path))
                return real(path, *args, **kwargs)
            return call

        monkeypatch.setattr(os, "open", refuse(real_open))
        monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    return under
