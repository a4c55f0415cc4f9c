"""`python -m threaddoc`, and the `threaddoc` command (the entry point in pyproject.toml).

Loading the command line takes about 0.1 s, in which a stop signal has nothing to clean up
yet: it ends threaddoc at once with one line (never a KeyboardInterrupt traceback). So the
handlers come first, before anything else is imported (only `gc`, `os` and `signal` are, to
keep the moment before them short); stopsignals.py takes over once the command line is loaded.
"""

import gc
import os
import signal

_LOADING: dict[int, str] = {signal.SIGHUP: "hung up (SIGHUP)", signal.SIGINT: "interrupted (SIGINT)",
            signal.SIGTERM: "terminated (SIGTERM)"}  # as errors.Interrupted says it


def _exit_at_once(signum: int, frame: object) -> None:
    os.write(2, f"threaddoc: {_LOADING[signum]} before the diagnosis finished; the target was left "
                "as it was\n".encode())
    os._exit(128 + signum)


def main() -> None:
    for signum in _LOADING:
        if signal.getsignal(signum) != signal.SIG_IGN:  # `nohup` ignores SIGHUP: so do we
            signal.signal(signum, _exit_at_once)
    # Loading builds thousands of objects that live until exit, and so does a diagnosis: the
    # cycle collector's passes over them cost more than the little garbage they would find.
    # `threaddoc run`, which may run for hours, turns it back on.
    gc.disable()
    from threaddoc.cli import main as run_cli  # after the handlers, so that loading is covered

    run_cli()


if __name__ == "__main__":
    main()
