"""SIGINT, SIGTERM and SIGHUP end threaddoc cleanly: one line, the status 128+N.

Until the command line is loaded nothing has been started, so a signal then ends threaddoc
at once (__main__.py). From then on it becomes an `Interrupted` exception raised in the
main thread (`raise_in_main_thread`): the py-spy run it interrupts is killed and reaped
and the target continued (collect/pyspy.py), every `finally` runs, and the CLI prints one
line. Only the first signal is raised: the cleanup it starts must not itself be cut short
by a second Ctrl-C. A signal the caller ignored (`nohup` ignores SIGHUP) stays ignored.
SIGKILL, which no process can catch, is the guardian's business (collect/guardian.py).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

from threaddoc.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


_state = {"armed": False}


def raise_in_main_thread() -> None:
    """From now on the first stop signal raises `Interrupted`; later ones are ignored while
    the cleanup it starts runs, and until threaddoc exits."""
    _state["armed"] = True
    for signum in _not_ignored(STOP_SIGNALS):
        signal.signal(signum, _interrupt)
    sys.unraisablehook = functools.partial(_deliver_again, sys.unraisablehook)


REDELIVER_SECONDS = 0.005


def _deliver_again(previous: Callable[[UnraisableHookArgs], Any], unraisable: UnraisableHookArgs) -> None:
    """A handler runs wherever the main thread happens to be, a weakref callback or a
    __del__ included, where Python prints an exception and drops it. Dropped there, the
    signal is sent again a moment later, from a thread (sent from here, it would be handled
    in this hook, and dropped again): by then the main thread is back in ordinary code.
    Nothing is printed."""
    if isinstance(unraisable.exc_value, Interrupted):
        _state["armed"] = True
        again = threading.Timer(REDELIVER_SECONDS, os.kill, (os.getpid(), unraisable.exc_value.signum))
        again.daemon = True
        again.start()
        return
    previous(unraisable)


def disarm() -> None:
    """threaddoc is exiting: a signal now has nothing left to stop, and raised in the
    interpreter's own shutdown code it would print a traceback."""
    _state["armed"] = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _state["armed"]:
        _state["armed"] = False
        raise Interrupted(signum)


def _not_ignored(signums: tuple[int, ...]) -> list[int]:
    return [signum for signum in signums if signal.getsignal(signum) != signal.SIG_IGN]
