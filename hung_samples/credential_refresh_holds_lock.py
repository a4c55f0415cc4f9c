"""An API client whose credential refresh holds the credentials lock across an HTTP call.

The thread credential-refresher logs in to the identity provider: it takes
`credentials_lock`, then POSTs the service's password over `http.client` -- no
timeout -- and waits for the answer before it lets go of the lock.  The identity
provider has accepted the connection and stalled: it never answers.  So the
refresher waits in `getresponse()` forever while it holds the lock, and every
tenant's request thread, which needs the credentials, waits for the lock behind
it.  The main thread joins the requests.  Not a deadlock: one lock held across
I/O that never ends.

What makes it a test of threaddoc's manners:

* The refresher's frame holds what such a frame holds in real life: the
  password, an API token, request headers with a Bearer token, a database DSN
  with its password, a PEM private key, an AWS key pair, a JWT and the login
  form, all fetched from the "vault" at start (made up at random here, so each
  run has its own).  Its other locals (a region, an attempt count) are not
  secret.  Before it is ready, the sample writes the secret strings and the
  plain ones to `<ready file>.canaries` (JSON: {"secret": [...], "plain": [...]})
  so that a test can look for them in what threaddoc prints and saves.
* The tenants' names come from outside (a tenant list), and the request
  threads are named after them: they carry terminal escape sequences (ESC, CSI,
  OSC with BEL), C1 controls, CR, backspace, NUL, bidi overrides and isolates,
  and a line separator.  So does a metrics plugin loaded from generated code:
  its file name and its function name are hostile too.  It waits for a stop
  event that never comes.

The stalled identity provider is the daemon thread identity-provider, a server
on 127.0.0.1 that accepts connections and never sends a byte.  (A helper daemon
thread announces readiness once all this is in place, then ends.)
"""

import base64
import http.client
import json
import os
import secrets
import socket
import string
import sys
import threading
import time
import urllib.parse

from _ready import signal_ready
from _stacks import wait_until_waiting_at, wait_until_waiting_in

credentials_lock = threading.Lock()
credentials = {}

HOSTILE_TENANTS = (
    "acme\x1b[2J\x1b]0;owned\x07",
    "\x9b31mglobex\r\x08\x00evil\u202etxt.exe",
    "initech\u2066iso\u2067late\u2068d\u2069\u2028next",
)
PLUGIN_FILE = "<plugin \x1b[31m\u202emetrics\x07>"
PLUGIN_FUNCTION = "report\x1b[8m\x9b2Jmetrics\u2066"
PLUGIN_SOURCE = "def report_metrics(stop):\n    stop.wait()\n"


def serve_without_answering(listener):
    stalled = []
    while True:
        connection, _ = listener.accept()
        stalled.append(connection)  # read nothing, answer nothing, close nothing


def aws_secret_access_key():
    """40 characters of base64, as AWS's are (this one with a digit, as nearly all are)."""
    while True:
        key = base64.b64encode(secrets.token_bytes(30)).decode()
        if any(c.isdigit() for c in key) and any(c.isupper() for c in key) and any(c.islower() for c in key):
            return key


def jwt(subject):
    def part(document):
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return ".".join((part({"alg": "HS256"}), part({"sub": subject}), secrets.token_urlsafe(32)))


def open_vault():
    """The service's secrets, as a secret store would hand them over."""
    return {
        "password": "pw-" + secrets.token_hex(8),
        "api_token": "tok_" + secrets.token_hex(12),
        "bearer": secrets.token_urlsafe(24),
        "db_password": secrets.token_hex(10),
        "pem_body": "MIIE" + secrets.token_hex(16),
        "aws_key_id": "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits)
                                       for _ in range(16)),
        "aws_secret": aws_secret_access_key(),
        "jwt": jwt("svc-" + secrets.token_hex(4)),
        "region": "region-" + secrets.token_hex(4),
    }


def write_canaries(ready_path, vault):
    """What a test must never find in threaddoc's output (secret) and what it must find
    with --show-locals (plain)."""
    secret = [vault[key] for key in ("password", "api_token", "bearer", "db_password", "pem_body",
                                     "aws_key_id", "aws_secret")]
    secret.append(vault["jwt"].rsplit(".", 1)[1])  # its random part: every JWT header looks alike
    partial = ready_path + ".canaries.partial"
    with open(partial, "w") as handle:
        json.dump({"secret": secret, "plain": [vault["region"]]}, handle)
    os.replace(partial, ready_path + ".canaries")


def refresh_credentials(identity_provider, vault):
    password = vault["password"]
    api_token = vault["api_token"]
    request_headers = {"Authorization": "Bearer " + vault["bearer"], "Accept": "application/json"}
    dsn = "postgresql://orders:" + vault["db_password"] + "@db.internal:5432/orders"
    signing_pem = "-----BEGIN PRIVATE KEY-----\n" + vault["pem_body"] + "\n-----END PRIVATE KEY-----\n"
    aws_keys = (vault["aws_key_id"], vault["aws_secret"])
    client_assertion = vault["jwt"]
    region = vault["region"]
    attempt = 1
    form = urllib.parse.urlencode({"grant_type": "password", "username": "orders", "password": password})
    with credentials_lock:
        connection = http.client.HTTPConnection(*identity_provider)
        connection.request("POST", "/oauth/token", body=form, headers=request_headers)
        reply = connection.getresponse()
        credentials.update(json.loads(reply.read()), api_token=api_token, dsn=dsn, key=signing_pem,
                           aws=aws_keys, assertion=client_assertion, region=region, attempt=attempt)


def handle_request(tenant, replies):
    with credentials_lock:
        replies.append((tenant, credentials.get("access_token")))


def load_plugin():
    """A plugin made of generated code, as templating and RPC layers make them."""
    namespace = {}
    exec(compile(PLUGIN_SOURCE, PLUGIN_FILE, "exec"), namespace)
    function = namespace["report_metrics"]
    names = {"co_name": PLUGIN_FUNCTION}
    if sys.version_info >= (3, 11):
        names["co_qualname"] = PLUGIN_FUNCTION
    function.__code__ = function.__code__.replace(**names)
    return function


def announce_when_stuck(ready_path, refresher, requests, plugin):
    wait_until_waiting_at(refresher, "refresh_credentials", __file__, "connection.getresponse()")
    for request in requests:
        wait_until_waiting_at(request, "handle_request", __file__, "with credentials_lock:")
    wait_until_waiting_in(plugin, "wait", "threading.py")
    signal_ready(ready_path)


def main(ready_path):
    vault = open_vault()
    write_canaries(ready_path, vault)
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve_without_answering, args=(listener,), name="identity-provider",
                     daemon=True).start()
    refresher = threading.Thread(target=refresh_credentials, args=(listener.getsockname(), vault),
                                 name="credential-refresher", daemon=True)
    refresher.start()
    while not credentials_lock.locked():  # the refresh has begun before the first request comes in
        time.sleep(0.01)
    plugin = threading.Thread(target=load_plugin(), args=(threading.Event(),),
                              name="plugin-" + HOSTILE_TENANTS[0], daemon=True)
    plugin.start()
    replies = []
    requests = [threading.Thread(target=handle_request, args=(tenant, replies), name="tenant-" + tenant)
                for tenant in HOSTILE_TENANTS]
    for request in requests:
        request.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, refresher, requests, plugin),
                     name="ready-announcer", daemon=True).start()
    for request in requests:
        request.join()
    print(replies)


if __name__ == "__main__":
    main(sys.argv[1])
