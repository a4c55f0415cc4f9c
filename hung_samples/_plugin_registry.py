"""The exporter registry of import_starts_thread.py: importing this module never finishes.

At import time the registry resolves its plugins -- "module:function" specs, as
entry points are spelled -- on a background thread, plugin-loader, so that a
slow plugin import would not hold up the program's start; then it waits for
that thread (`_loader.join()`) so that the registry is complete once the
import returns.  The built-in exporters live in this very module, so
plugin-loader's `importlib.import_module("_plugin_registry")` needs this
module's import to finish first: it waits for the module's import lock, which
the importing thread (the main thread) holds while it runs this file, and the
main thread, inside the import, waits for plugin-loader.  Neither moves.
"""

import csv
import importlib
import io
import json
import threading

PLUGINS = ("_plugin_registry:export_csv", "_plugin_registry:export_json")

exporters = {}


def export_csv(rows):
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def export_json(rows):
    return json.dumps(rows)


def _load_plugins(specs):
    for spec in specs:
        module_name, _, function_name = spec.partition(":")
        module = importlib.import_module(module_name)
        exporters[function_name] = getattr(module, function_name)


_loader = threading.Thread(target=_load_plugins, args=(PLUGINS,), name="plugin-loader")
_loader.start()
_loader.join()  # the import waits for the loader, which waits for the import
