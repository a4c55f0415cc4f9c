"""A stop signal raised where Python drops exceptions (a weakref callback, a __del__) is
delivered again in ordinary code, and nothing is printed. Run in a child interpreter: the
handlers are process-wide."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from threaddoc.errors import Interrupted

CHILD = """\
import os, signal, time, weakref
from threaddoc import stopsignals
from threaddoc.errors import Interrupted
stopsignals.raise_in_main_thread()
class Target: pass
def callback(ref):
    os.kill(os.getpid(), signal.SIGTERM)  # its handler runs in this callback
    for _ in range(3): pass
try:
    target = Target(); ref = weakref.ref(target, callback); del target
    time.sleep(5)
    print("not interrupted")
except Interrupted as error:
    print("interrupted", error.exit_code)
"""


def test_a_signal_dropped_in_a_weakref_callback_is_delivered_again() -> None:
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                           check=False)
    assert child.stdout.strip() == "interrupted 143", child.stdout + child.stderr
    assert child.stderr == "", child.stderr


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT, signal.SIGTERM])
def test_a_signal_that_comes_while_threaddoc_loads_ends_it_with_its_one_line(signum: int) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys, time; import threaddoc.__main__ as entry; "
         "signum = int(sys.argv[1]); signal.signal(signum, entry._exit_at_once); "
         "os.kill(os.getpid(), signum); time.sleep(5)", str(signum)],
        capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == 128 + signum, child.stderr
    assert child.stderr.splitlines() == [Interrupted(signum).one_line()]
