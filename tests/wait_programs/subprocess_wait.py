"""subprocess-wait: `waiter` blocks in `proc.wait()` on a child process that
never exits by itself.

The child dies with this process: it blocks reading a "lifeline" pipe whose
only write end is held by this process, so it gets EOF and exits as soon as
this process dies (even by SIGKILL); an atexit handler also kills it.  The
child stays in this process's process group.  Its PID is written to
``<ready file>.info`` as ``child_pid``."""
import atexit
import os
import subprocess
import sys

import _ready

CHILD = "import os, sys; os.read(int(sys.argv[1]), 1)"


def spawn_child():
    rfd, wfd = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(rfd)], pass_fds=(rfd,))
    os.close(rfd)  # this process keeps only wfd: the lifeline
    atexit.register(proc.kill)
    return proc, wfd


def waiter_main(proc):
    return proc.wait()  # BLOCKS


def main(ready_path):
    proc, _lifeline = spawn_child()
    waiter = _ready.start("waiter", waiter_main, proc)
    _ready.wait_blocked(waiter, check=lambda: proc.returncode is None)
    _ready.write_ready(ready_path, child_pid=proc.pid)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])
