"""A sensor gateway frozen by a blocking C call made with the GIL held.

The thread sensor-reader reads frames from a sensor through the vendor's C
library.  The binding loads it with `ctypes.PyDLL` (the vendor's example did:
its callbacks call back into Python), and PyDLL, unlike CDLL, keeps the GIL
for the whole of every call.  The sensor goes quiet, so the library's
blocking read never returns, and the GIL stays taken: every other thread is
frozen although the CPU is idle.  The heartbeat thread, which tells the
supervisor every 50 ms that the gateway is alive (a byte down a pipe), waits
for the GIL for ever; the main thread joins the reader.  The reader's Python
stack ends at the line that calls the library; the thread itself sleeps in the
kernel, in read().

Here libc stands in for the vendor library (`ctypes.PyDLL(None)`: the symbols
of the running program, libc's among them), and a pipe that nobody writes
stands in for the sensor's device file.

Readiness cannot come from inside: no thread of this process can run Python
once the call is under way.  So, before the reader starts, the sample starts a
watcher process (`_outside.py`) that reads the heartbeat pipe and watches the
reader through /proc, and writes the ready file once the heartbeat has been
silent for half a second while the reader slept in read() (system call 0 on
x86-64) on the sensor's fd; then the watcher exits.
"""

import ctypes
import os
import sys
import threading
import time

from _outside import start_watcher

READ_SYSCALL = {"x86_64": 0, "aarch64": 63}[os.uname().machine]


class Sensor:
    """The vendor binding: `read_frame()` blocks in C until the sensor sends a frame."""

    def __init__(self, device_fd):
        self._device_fd = device_fd
        self._library = ctypes.PyDLL(None)
        self._library.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        self._library.read.restype = ctypes.c_ssize_t

    def read_frame(self):
        frame = ctypes.create_string_buffer(64)
        size = self._library.read(self._device_fd, frame, len(frame))
        return frame.raw[:size]


def read_sensor(sensor, started, frames):
    started.wait()
    while True:
        frames.append(sensor.read_frame())


def beat(supervisor_fd):
    while True:
        try:
            os.write(supervisor_fd, b".")
        except OSError:
            return  # no supervisor is listening any more
        time.sleep(0.05)


def main(ready_path):
    supervisor_read, supervisor_write = os.pipe()
    threading.Thread(target=beat, args=(supervisor_write,), name="heartbeat", daemon=True).start()
    device_fd, silent_sensor = os.pipe()  # the sensor never sends a frame
    started = threading.Event()
    frames = []
    reader = threading.Thread(target=read_sensor, args=(Sensor(device_fd), started, frames),
                              name="sensor-reader")
    reader.start()
    start_watcher(ready_path, reader, supervisor_read, "syscall", READ_SYSCALL, device_fd)
    os.close(supervisor_read)  # the watcher has its own copy
    started.set()
    reader.join()
    os.close(silent_sensor)


if __name__ == "__main__":
    main(sys.argv[1])
