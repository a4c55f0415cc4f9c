"""A hung program whose frames name files it wants a root threaddoc to print.

    python hostile_target.py READY [--lease FILE] NAME...

For each NAME, a daemon thread runs code compiled with NAME as its file name (a frame's
file name is whatever the code object says) and blocks there on a lock the main thread
holds forever. So each thread's innermost frame is "in" NAME at line 1, where the source,
if threaddoc read it, would be shown. With `--lease FILE` it first takes a write lease on
FILE (a file it owns): whoever opens FILE then waits for the lease to be broken (45 s by
default) unless it opens without blocking.

Writes READY (its pid) once every thread is blocked, then waits forever. Runs on the
system interpreter as user nobody, and in a chroot as its root, so it imports nothing but
the standard library.
"""

import fcntl
import os
import signal
import sys
import threading
import time


def take_lease(path):
    # The holder is told of a lease break by SIGIO, whose default action is to exit.
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    fd = os.open(path, os.O_RDWR)
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    return fd


def block_in(name, lock):
    code = compile("lock.acquire()\n", name, "exec")
    thread = threading.Thread(target=exec, args=(code, {"lock": lock}), daemon=True,
                              name="in " + os.path.basename(name)[:40])
    thread.start()
    return thread


def blocked_in_named_code(threads):
    frames = sys._current_frames()
    return all(thread.ident in frames and frames[thread.ident].f_code.co_name == "<module>"
               for thread in threads)


def main(arguments):
    ready, arguments = arguments[0], arguments[1:]
    lease = None
    if arguments[:1] == ["--lease"]:
        lease, arguments = take_lease(arguments[1]), arguments[2:]
    lock = threading.Lock()
    lock.acquire()
    # "{pid}" stands for this process's pid: its own /proc/PID/environ, say.
    threads = [block_in(name.replace("{pid}", str(os.getpid())), lock) for name in arguments]
    deadline = time.monotonic() + 20
    while not blocked_in_named_code(threads) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # from "at the line" to asleep on the lock
    with open(ready + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(ready + ".tmp", ready)
    threading.Event().wait()
    return lease


if __name__ == "__main__":
    main(sys.argv[1:])
