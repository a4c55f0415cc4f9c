"""A deploy script that waits forever for the config server's answer: no timeout.

The script asks the config server for the release manifest: it connects with
`socket.create_connection()` and reads the answer with `sock.recv()`, and
neither call has a timeout.  The config server has accepted the connection and
stalled without answering, so the main thread waits in `recv()` forever.

The stalled config server is a child process listening on 127.0.0.1 (so this
process's only socket is the client's).  It reads its stdin, a pipe from this
process, and exits at end of file: as soon as this process is gone.  (A helper
daemon thread announces readiness once the read is stuck, then ends.)
"""

import json
import socket
import subprocess
import sys
import threading

from _ready import signal_ready
from _stacks import wait_until_waiting_at

STALLED_CONFIG_SERVER = """
import socket, sys
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
connection, _ = listener.accept()
sys.stdin.buffer.read()  # answer nothing; end once the client's process is gone
"""


def start_config_server():
    server = subprocess.Popen([sys.executable, "-c", STALLED_CONFIG_SERVER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(server.stdout.readline())
    server.stdout.close()
    return server, ("127.0.0.1", port)


def fetch_manifest(address, release):
    sock = socket.create_connection(address)
    sock.sendall(f"GET /manifests/{release}\n".encode())
    reply = sock.recv(65536)
    return json.loads(reply)


def announce_when_stuck(ready_path):
    wait_until_waiting_at(threading.main_thread(), "fetch_manifest", __file__, "sock.recv(")
    signal_ready(ready_path)


def main(ready_path):
    server, address = start_config_server()  # `server` holds the pipe that keeps the server alive
    threading.Thread(target=announce_when_stuck, args=(ready_path,), name="ready-announcer",
                     daemon=True).start()
    manifest = fetch_manifest(address, "2024.06.3")
    print(f"deploying {len(manifest['services'])} services")
    server.kill()


if __name__ == "__main__":
    main(sys.argv[1])
