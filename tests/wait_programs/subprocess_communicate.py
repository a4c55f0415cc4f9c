"""subprocess-communicate: `waiter` blocks in `proc.communicate()` on a child
started with stdout=PIPE and stderr=PIPE that never writes or exits (with two
pipes communicate() goes through Popen._communicate and a selector).

The child dies with this process: it blocks reading a "lifeline" pipe whose
only write end is held by this process (see subprocess_wait.py); an atexit
handler also kills it.  Its PID is written to ``<ready file>.info`` as
``child_pid``."""
import atexit
import os
import subprocess
import sys

import _ready

CHILD = "import os, sys; os.read(int(sys.argv[1]), 1)"


def spawn_child():
    rfd, wfd = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(rfd)], pass_fds=(rfd,),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(rfd)  # this process keeps only wfd: the lifeline
    atexit.register(proc.kill)
    return proc, wfd


def waiter_main(proc):
    return proc.communicate()  # BLOCKS


def main(ready_path):
    proc, _lifeline = spawn_child()
    waiter = _ready.start("waiter", waiter_main, proc)
    _ready.wait_blocked(waiter, check=lambda: proc.returncode is None)
    _ready.write_ready(ready_path, child_pid=proc.pid)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])
