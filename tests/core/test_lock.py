"""One writer per folder: a second holder is refused naming the first; a dead holder's lock is free again."""

import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from hgstudy.core.errors import UserError
from hgstudy.core.lock import folder_lock


def test_a_second_holder_is_refused_naming_the_first_and_the_lock_goes_with_the_block(tmp_path):
    with folder_lock(tmp_path, "x.lock", "trained") as path:
        holder = f"pid {os.getpid()} on host {socket.gethostname()}"
        assert path.read_text().startswith(f"{holder} since ")
        with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path))} is being trained by {holder} since \S+; "
                                            "wait for it or stop it$"):
            with folder_lock(tmp_path, "x.lock", "trained"):
                pass
    assert os.listdir(tmp_path) == []
    with pytest.raises(KeyError), folder_lock(tmp_path, "x.lock", "trained"):
        raise KeyError("the work failed")
    assert os.listdir(tmp_path) == []  # released: taken again at once
    with folder_lock(tmp_path, "x.lock", "trained"):
        pass


def test_a_holder_killed_with_sigkill_leaves_the_folder_free(tmp_path):
    code = ("import sys, time; from hgstudy.core.lock import folder_lock\n"
            "with folder_lock(sys.argv[1], 'x.lock', 'trained'):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(UserError, match=f"by pid {holder.pid} on host"):
        with folder_lock(tmp_path, "x.lock", "trained"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "x.lock").exists()  # its file stays, but no lock on it
    with folder_lock(tmp_path, "x.lock", "trained") as path:
        assert path.read_text().startswith(f"pid {os.getpid()} on host")  # the new holder named, not the dead one
