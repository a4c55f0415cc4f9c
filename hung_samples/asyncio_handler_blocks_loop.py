"""A profile API whose event loop is frozen by one synchronous call in a coroutine.

The API runs its asyncio event loop in the thread event-loop.  The handler
coroutine `fetch_profile` needs the user's record from the profile store and
reads it over a plain blocking socket (`sock.recv()`, no timeout) instead of
`asyncio.open_connection()` or `loop.run_in_executor()`.  The store has
accepted the connection and stalled.  `recv()` blocks the thread, and with it
the whole loop: the health reporter (`report_health`, due every 100 ms) and
every other task wait for a loop that never gets control back.  The main
thread joins the loop's thread.

The stalled profile store is the daemon thread profile-store, a server on
127.0.0.1 that accepts connections and never sends a byte.  (A helper daemon
thread announces readiness once the loop is stuck, then ends.)
"""

import asyncio
import json
import socket
import sys
import threading
import time

from _ready import signal_ready
from _stacks import wait_until_waiting_at

heartbeats = []


def serve_without_answering(listener):
    stalled = []
    while True:
        connection, _ = listener.accept()
        stalled.append(connection)  # read nothing, answer nothing, close nothing


async def report_health():
    while True:
        heartbeats.append(time.monotonic())
        await asyncio.sleep(0.1)


async def fetch_profile(store, user_id):
    sock = socket.create_connection(store)
    sock.sendall(f"GET /users/{user_id}\n".encode())
    record = sock.recv(65536)  # blocks the thread, and the event loop with it
    return json.loads(record)


async def serve(store):
    health = asyncio.ensure_future(report_health())
    await asyncio.sleep(0.15)  # the API has been up for a moment when the request comes
    profile = await fetch_profile(store, 4242)
    health.cancel()
    return profile


def run_event_loop(store):
    asyncio.run(serve(store))


def announce_when_stuck(ready_path, loop_thread):
    wait_until_waiting_at(loop_thread, "fetch_profile", __file__, "sock.recv(")
    signal_ready(ready_path)


def main(ready_path):
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve_without_answering, args=(listener,), name="profile-store",
                     daemon=True).start()
    loop_thread = threading.Thread(target=run_event_loop, args=(listener.getsockname(),),
                                   name="event-loop")
    loop_thread.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, loop_thread), name="ready-announcer",
                     daemon=True).start()
    loop_thread.join()


if __name__ == "__main__":
    main(sys.argv[1])
