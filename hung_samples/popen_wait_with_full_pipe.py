"""A nightly backup that waits for its exporter to exit before it reads the export.

The backup runs the customer exporter as a child process with
`stdout=subprocess.PIPE`, and calls `proc.wait()` before it reads
`proc.stdout`.  The export is about 1 MB; the pipe holds 64 KiB.  Once the
pipe is full the child blocks in `write()` until someone reads it, and the
parent waits in `wait()` for the child to exit: neither ever will.
(`proc.communicate()` reads the output while it waits.)

The child dies with this process: once the pipe's read end is gone, its write
fails (BrokenPipeError) and it exits.  (A helper daemon thread announces
readiness once the pipe is full and both processes sleep, then ends.)
"""

import fcntl
import struct
import subprocess
import sys
import termios
import threading

from _ready import signal_ready
from _stacks import wait_until_process_blocked, wait_until_waiting_in

EXPORTER = """
import sys
rows = [f"{number:08d},customer-{number:08d}@example.com,active,2024-06-30\\n" for number in range(20000)]
sys.stdout.buffer.write("".join(rows).encode())  # about 1 MB, in one write
"""

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)  # the constant is in fcntl from Python 3.10


def start_exporter():
    return subprocess.Popen([sys.executable, "-c", EXPORTER], stdout=subprocess.PIPE)


def collect_export(proc):
    proc.wait()  # Bug: waits for the exit before reading the output
    return proc.stdout.read()


def buffered_bytes(fd):
    """How many bytes wait in the pipe `fd` (the kernel's FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def announce_when_stuck(ready_path, proc):
    pipe = proc.stdout.fileno()
    capacity = fcntl.fcntl(pipe, F_GETPIPE_SZ)
    wait_until_waiting_in(threading.main_thread(), "wait", "subprocess.py")
    wait_until_process_blocked(proc.pid)
    if buffered_bytes(pipe) != capacity:
        raise RuntimeError(f"the pipe holds {buffered_bytes(pipe)} of {capacity} bytes: not full")
    signal_ready(ready_path)


def main(ready_path):
    proc = start_exporter()
    threading.Thread(target=announce_when_stuck, args=(ready_path, proc), name="ready-announcer",
                     daemon=True).start()
    export = collect_export(proc)
    print(f"backed up {len(export)} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
