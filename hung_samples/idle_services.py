"""A healthy service between requests: every thread waits for work, and nothing is hung.

The main thread serves the API with `socketserver` (`serve_forever()`).
metrics-listener waits in `accept()` for the metrics scraper; control-channel
waits in a `selectors` loop for operator commands; the render pool (a
ThreadPoolExecutor) has finished its warm-up tasks and its workers wait for
more; health-poller checks the disk once a second (`while not stop.wait(1)`);
and event-loop runs an asyncio notification server with no clients yet.  All
of them listen on 127.0.0.1.  Every thread is idle, as a service between
requests is.  A diagnoser must call this `no-hang`.  (A helper daemon thread
announces readiness once every thread waits where it should, then ends.)
"""

import asyncio
import selectors
import shutil
import socket
import socketserver
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_waiting_in


class ApiHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b'{"status": "ok"}\n')


def serve_metrics(listener):
    while True:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b"requests_total 0\n")


def run_control_channel(listener, commands):
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            connection, _ = key.fileobj.accept()
            with connection:
                commands.append(connection.recv(1024))


def poll_health(stop, free_space):
    while not stop.wait(1):
        free_space.append(shutil.disk_usage("/").free)


async def notify_client(reader, writer):
    writer.write(b"subscribed\n")
    await writer.drain()
    writer.close()


async def serve_notifications(started):
    server = await asyncio.start_server(notify_client, "127.0.0.1", 0)
    started.set()
    async with server:
        await server.serve_forever()


def run_event_loop(started):
    asyncio.run(serve_notifications(started))


def render_template(name):
    return f"<h1>{name}</h1>"


def announce_when_idle(ready_path, threads, pool_workers, loop_started):
    main_thread = threading.main_thread()
    wait_until_waiting_in(main_thread, "serve_forever", "socketserver.py")
    wait_until_waiting_in(threads["metrics-listener"], "accept", "socket.py")
    wait_until_waiting_in(threads["control-channel"], "select", "selectors.py")
    wait_until_waiting_in(threads["health-poller"], "wait", "threading.py")
    loop_started.wait()
    wait_until_waiting_in(threads["event-loop"], "select", "selectors.py")
    for worker in pool_workers:
        wait_until_waiting_in(worker, "_worker", "thread.py")
    wait_until_blocked([main_thread, *threads.values(), *pool_workers])
    signal_ready(ready_path)


def main(ready_path):
    api = socketserver.ThreadingTCPServer(("127.0.0.1", 0), ApiHandler)
    stop = threading.Event()
    loop_started = threading.Event()
    services = [
        ("metrics-listener", serve_metrics, (socket.create_server(("127.0.0.1", 0)),)),
        ("control-channel", run_control_channel, (socket.create_server(("127.0.0.1", 0)), [])),
        ("health-poller", poll_health, (stop, [])),
        ("event-loop", run_event_loop, (loop_started,)),
    ]
    threads = {}
    for name, target, args in services:
        threads[name] = threading.Thread(target=target, args=args, name=name, daemon=True)
        threads[name].start()
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")
    warmed_up = list(pool.map(render_template, ["home", "pricing", "docs", "status"]))
    pool_workers = [thread for thread in threading.enumerate() if thread.name.startswith("render")]
    threading.Thread(target=announce_when_idle, args=(ready_path, threads, pool_workers, loop_started),
                     name="ready-announcer", daemon=True).start()
    print(f"warmed up {len(warmed_up)} templates; serving on {api.server_address}")
    api.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
