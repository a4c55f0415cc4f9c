"""py-spy JSON -> model: modules, qualified names and identities without values."""

from __future__ import annotations

import pytest
from conftest import load, recording_names

from threaddoc.collect.parse import module_of, parse_threads, qualified_name, type_of_repr
from threaddoc.model import Local


@pytest.mark.parametrize(
    ("filename", "module", "stdlib"),
    [
        ("/usr/lib/python3.8/threading.py", "threading", True),
        ("/root/.pyenv/versions/3.13.0/lib/python3.13/concurrent/futures/_base.py",
         "concurrent.futures._base", True),
        ("/usr/lib/python3.11/logging/__init__.py", "logging", True),
        ("/srv/app/.venv/lib/python3.11/site-packages/requests/sessions.py", "requests.sessions", False),
        ("/usr/lib/python3/dist-packages/yaml/__init__.py", "yaml", False),
        ("<frozen importlib._bootstrap>", "importlib._bootstrap", True),
        ("/srv/app/worker.py", "worker", False),
    ],
)
def test_module_of(filename: str, module: str, stdlib: bool) -> None:
    assert module_of(filename) == (module, stdlib)


def test_qualified_name_recovers_the_class_before_python_3_11() -> None:
    this = Local("self", 0x10, "Event", True)
    assert qualified_name("wait", (this,)) == "Event.wait"
    assert qualified_name("Condition.wait", (this,)) == "Condition.wait"
    assert qualified_name("wait", ()) == "wait"
    assert qualified_name("<module>", (this,)) == "<module>"


@pytest.mark.parametrize(
    ("shown", "type_name"),
    [
        ("<_thread.lock at 0x7f1b26bf49f0>", "_thread.lock"),
        ("<Thread at 0x7ffa6db4de50>", "Thread"),
        ("<Foo object at 0x7ffa6db4de50>", "Foo"),
        ('"hunter2"', "str"),
        ("'hunter2'", "str"),
        ("-1", "int"),
        ("2.5", "float"),
        ("None", "NoneType"),
        ("True", "bool"),
        ("[1, 2]", "list"),
        (None, None),
    ],
)
def test_type_of_repr_keeps_the_type_not_the_value(shown: object, type_name: object) -> None:
    assert type_of_repr(shown) == type_name


@pytest.mark.parametrize("name", recording_names())
def test_parsed_threads_keep_no_values(name: str) -> None:
    threads = parse_threads(load(name).pyspy)
    assert threads
    for thread in threads:
        for frame in thread.frames:
            for local in frame.locals:
                assert not hasattr(local, "repr")
                assert not hasattr(local, "value")


@pytest.mark.parametrize("name", recording_names("lock_order_deadlock"))
def test_thread_object_address_links_join_to_the_joined_thread(name: str) -> None:
    threads = {thread.name: thread for thread in parse_threads(load(name).pyspy)}
    teller = threads["teller-1"]
    joined = [f.local("self") for f in threads["MainThread"].frames if f.method_name == "join"]
    assert teller.thread_object_address is not None
    assert joined and joined[0] is not None and joined[0].address == teller.thread_object_address
