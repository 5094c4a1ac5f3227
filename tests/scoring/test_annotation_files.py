"""A ground-truth or prediction path that is not a regular file (a folder, a FIFO, nothing) is one clear error,
never a hang."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from hgstudy.core.errors import UserError
from hgstudy.data.mpii import read_mpii_json
from hgstudy.scoring.annotations import read_split_fields
from hgstudy.scoring.ground_truth import load_annotations, read_mpii_release, read_tompson_mat
from hgstudy.scoring.predictions import read_predictions


def refused(call, *args) -> str:
    """The UserError message of call(*args), which must come within 5 s (opening a FIFO would block)."""
    outcome = []

    def run():
        try:
            call(*args)
        except UserError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # release it: a writer unblocks the reader waiting on the FIFO
        for path in (a for a in args if isinstance(a, Path) and a.exists() and not a.is_dir()):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{call.__name__} blocked on {args}")
    assert outcome, f"{call.__name__}{args} raised no UserError"
    return outcome[0]


@pytest.fixture
def paths(tmp_path) -> dict[str, Path]:
    folder, fifo = tmp_path / "valid.h5", tmp_path / "gt.mat"
    folder.mkdir()
    os.mkfifo(fifo)
    return {"folder": folder, "fifo": fifo, "missing": tmp_path / "none.h5"}


@pytest.mark.parametrize(("kind", "says"), [("folder", "is a folder, not a file"),
                                            ("fifo", "is not a regular file"), ("missing", "not found")])
def test_a_path_that_is_not_a_file_says_what_it_is(paths, kind, says):
    path = paths[kind]
    for call, args in ((load_annotations, (path,)), (read_split_fields, (path,)), (read_tompson_mat, (path,)),
                       (read_mpii_release, (path, (np.zeros(1), np.zeros(1)))),
                       (read_mpii_release, (paths["missing"].with_suffix(".mat"), path)),
                       (read_mpii_json, (path, "valid")), (read_predictions, (path,))):
        message = refused(call, *args)
        assert f"{path} {says}" in message and "pass the" in message, (call.__name__, message)


def test_the_download_hint_is_kept():
    message = refused(read_split_fields, Path("/nowhere/valid.h5"), ("part",), "hgstudy download mpii")
    assert message == ("split file /nowhere/valid.h5 not found: run `hgstudy download mpii` or pass the "
                       "annotation file's path")
