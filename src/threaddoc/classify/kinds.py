"""The vocabulary of wait states (`threads[].wait.kind` in the JSON report)."""

from __future__ import annotations

import enum


class Activity(enum.Enum):
    """How a wait state bears on a hang verdict."""

    RUNNING = "running"  # making progress (or about to, once it has the GIL)
    BLOCKED = "blocked"  # waits for something another thread must provide
    IDLE = "idle"  # waits for outside work by design (server loop, idle pool worker)


class WaitKind(str, enum.Enum):
    RUNNING = "running"
    GIL = "gil-wait"  # runnable: it needs the GIL to go on (seen with --native)
    LOCK = "lock-acquire"
    RLOCK = "rlock-acquire"
    THREAD_JOIN = "thread-join"
    SHUTDOWN = "interpreter-shutdown"
    EXECUTOR_SHUTDOWN = "executor-shutdown"
    FUTURE_RESULT = "future-result"
    FUTURES_WAIT = "futures-wait"
    POOL_RESULT = "pool-result"  # multiprocessing.Pool: map(), apply(), AsyncResult.get()
    CONDITION_WAIT = "condition-wait"
    EVENT_WAIT = "event-wait"
    SEMAPHORE = "semaphore-acquire"
    BARRIER = "barrier-wait"
    QUEUE_GET = "queue-get"
    QUEUE_PUT = "queue-put"
    QUEUE_JOIN = "queue-join"
    SLEEP = "sleep"
    SELECT = "select"
    SOCKET_ACCEPT = "socket-accept"
    SOCKET_RECV = "socket-recv"
    SOCKET_SEND = "socket-send"
    SOCKET_CONNECT = "socket-connect"
    FILE_READ = "file-read"
    SUBPROCESS_WAIT = "subprocess-wait"
    SUBPROCESS_COMMUNICATE = "subprocess-communicate"
    ASYNCIO_IDLE = "asyncio-idle"
    POOL_IDLE = "pool-idle"
    SERVER_IDLE = "server-idle"
    IMPORT_LOCK = "import-lock"
    IDLE_OTHER = "idle-other"

    @property
    def activity(self) -> Activity:
        if self in (WaitKind.RUNNING, WaitKind.GIL):
            return Activity.RUNNING
        if self in _IDLE:
            return Activity.IDLE
        return Activity.BLOCKED

    @property
    def is_lock(self) -> bool:
        return self in (WaitKind.LOCK, WaitKind.RLOCK)


_IDLE = frozenset({WaitKind.ASYNCIO_IDLE, WaitKind.POOL_IDLE, WaitKind.SERVER_IDLE,
                   WaitKind.IDLE_OTHER, WaitKind.SLEEP, WaitKind.SELECT,
                   WaitKind.SOCKET_ACCEPT})
