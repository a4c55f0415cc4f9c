"""A report tool that hangs at start-up, in the import of its exporter registry.

`main()` imports `_plugin_registry` (a module next to this file).  At import
time that module starts the thread plugin-loader, which resolves the exporter
plugins with `importlib.import_module()`, and joins it before the import
returns.  The built-in exporters live in `_plugin_registry` itself: the loader
waits for that module's import lock, held by the main thread while the
module's code runs, and the main thread waits in `join()` for the loader.  An
import-lock deadlock: no lock of the program's own is involved.  (A helper
daemon thread announces readiness once both threads are stuck, then ends.)
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked
from _stacks import thread_named, wait_until_waiting_in


def announce_when_stuck(ready_path):
    main_thread = threading.main_thread()
    loader = thread_named("plugin-loader")
    wait_until_waiting_in(loader, "acquire", "importlib._bootstrap>")
    wait_until_waiting_in(main_thread, "join", "threading.py")
    wait_until_blocked([loader, main_thread])
    signal_ready(ready_path)


def main(ready_path):
    threading.Thread(target=announce_when_stuck, args=(ready_path,), name="ready-announcer",
                     daemon=True).start()
    import _plugin_registry  # hangs: see _plugin_registry.py

    rows = [("region", "revenue"), ("eu", 1200), ("us", 3400)]
    print(_plugin_registry.exporters["export_csv"](rows))


if __name__ == "__main__":
    main(sys.argv[1])
