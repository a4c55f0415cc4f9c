"""The rule table: how a stack says what its thread waits for.

Two kinds of rows:

* `FrameRule`: a frame of a standard-library function the program called
  (`Condition.wait` in threading, `Future.result` in concurrent.futures).
  `function` is the qualified name as CPython >= 3.11 reports it; before 3.11
  py-spy reports bare names and the parser recovers the class from `self`.
  `subject` names the local that holds the object waited on.
* `CallRule`: a call in the program's own statement to a function implemented
  in C, which leaves no frame of its own (`lock.acquire()`, `time.sleep()`,
  `sock.recv()`).
* `NativeRule`: the C function a thread is in, from the native frames
  (`--native`) above its innermost Python frame, and who called it (libc's
  condition wait called by the interpreter loop: waiting for the GIL).

A new wait kind is one new row here and one test.
"""

from __future__ import annotations

from dataclasses import dataclass

from .kinds import WaitKind


@dataclass(frozen=True)
class FrameRule:
    module: str
    function: str  # "Class.method", "function", or "*.method" for any class
    kind: WaitKind
    summary: str
    subject: str | None = "self"
    timeout_local: str | None = "timeout"
    # Waits that happen in the frame itself (a C-level acquire at its line): they only
    # apply when the frame is the innermost one.
    innermost_only: bool = False
    # For locks kept inside a library object (`handler.lock`): the attribute of `subject`
    # that is the lock, and its type. Otherwise the lock is named from the program's statement.
    lock_attribute: str | None = None
    lock_type: str | None = None
    library: str | None = None  # who keeps that lock, for the report: "logging.Handler"


@dataclass(frozen=True)
class HoldRule:
    """A library frame that holds a lock while it calls `callee` (`Handler.handle` holds
    the handler's lock around `emit()`). Requiring the callee keeps look-alikes out: before
    3.11 `Logger.handle` is a bare `handle` too, and it holds nothing."""

    module: str
    function: str
    callee: str
    lock_attribute: str
    lock_type: str
    library: str


@dataclass(frozen=True)
class CallRule:
    name: str  # the called function or method name
    kind: WaitKind
    summary: str
    receivers: tuple[str, ...] | None = None  # module names for `module.name(...)` calls
    receiver_types: tuple[str, ...] | None = None  # required type of the receiver object


PYTHON = "<python>"  # in NativeRule.callers: called by the interpreter loop itself


@dataclass(frozen=True)
class NativeRule:
    function: str  # the innermost named C function
    kind: WaitKind
    summary: str
    # The function that called it (the next named C frame outward), or PYTHON for the
    # interpreter loop; None: any caller.
    callers: tuple[str, ...] | None = None


# Order matters only between rows that could match the same frame. The stack is
# searched from the outermost library frame (the API the program called) inward,
# so `Future.result` wins over the `Condition.wait` it uses internally.
FRAME_RULES: tuple[FrameRule, ...] = (
    # Interpreter exit: the main thread joins every non-daemon thread.
    FrameRule("threading", "_shutdown", WaitKind.SHUTDOWN,
              "interpreter exit waits for non-daemon threads to finish", subject=None),
    FrameRule("concurrent.futures.thread", "_python_exit", WaitKind.SHUTDOWN,
              "interpreter exit waits for thread-pool workers to finish", subject=None),
    FrameRule("concurrent.futures.thread", "ThreadPoolExecutor.shutdown", WaitKind.EXECUTOR_SHUTDOWN,
              "waits for a thread pool to shut down"),
    FrameRule("concurrent.futures.process", "ProcessPoolExecutor.shutdown",
              WaitKind.EXECUTOR_SHUTDOWN, "waits for a process pool to shut down"),
    # Threads and futures.
    FrameRule("threading", "Thread.join", WaitKind.THREAD_JOIN, "joins a thread"),
    FrameRule("threading", "Thread._wait_for_tstate_lock", WaitKind.THREAD_JOIN, "joins a thread"),
    FrameRule("concurrent.futures._base", "Future.result", WaitKind.FUTURE_RESULT,
              "waits for a future's result"),
    FrameRule("concurrent.futures._base", "Future.exception", WaitKind.FUTURE_RESULT,
              "waits for a future's result"),
    FrameRule("concurrent.futures._base", "wait", WaitKind.FUTURES_WAIT,
              "waits for futures (concurrent.futures.wait)", subject="fs"),
    FrameRule("concurrent.futures._base", "as_completed", WaitKind.FUTURES_WAIT,
              "waits for futures (as_completed)", subject="fs"),
    FrameRule("concurrent.futures.thread", "_worker", WaitKind.POOL_IDLE,
              "idle pool worker waiting for work", subject="work_queue", timeout_local=None),
    # Process pools: the worker process's loop, and the parent's manager thread.
    FrameRule("concurrent.futures.process", "_process_worker", WaitKind.POOL_IDLE,
              "idle worker process waiting for work", subject=None, timeout_local=None),
    FrameRule("concurrent.futures.process", "_ExecutorManagerThread.run", WaitKind.POOL_IDLE,
              "process-pool manager waiting for results", subject=None, timeout_local=None),
    FrameRule("concurrent.futures.process", "_queue_management_worker", WaitKind.POOL_IDLE,
              "process-pool manager waiting for results", subject=None, timeout_local=None),
    # multiprocessing: a parent waiting for a pool's results or for a child process; the
    # pool's own threads and its worker loop, idle by design.
    FrameRule("multiprocessing.pool", "ApplyResult.get", WaitKind.POOL_RESULT,
              "waits for results from a process pool (multiprocessing.Pool)"),
    FrameRule("multiprocessing.pool", "ApplyResult.wait", WaitKind.POOL_RESULT,
              "waits for results from a process pool (multiprocessing.Pool)"),
    FrameRule("multiprocessing.pool", "IMapIterator.next", WaitKind.POOL_RESULT,
              "waits for results from a process pool (multiprocessing.Pool)"),
    FrameRule("multiprocessing.process", "BaseProcess.join", WaitKind.SUBPROCESS_WAIT,
              "waits for a child process to exit (Process.join)"),
    # Static methods: before 3.11 py-spy names them bare, with no `self` to find the class.
    *(FrameRule("multiprocessing.pool", name, WaitKind.POOL_IDLE, "process-pool thread waiting for work",
                subject=None, timeout_local=None)
      for name in ("Pool._handle_workers", "Pool._handle_tasks", "Pool._handle_results",
                   "_handle_workers", "_handle_tasks", "_handle_results")),
    FrameRule("multiprocessing.pool", "worker", WaitKind.POOL_IDLE, "idle worker process waiting for work",
              subject=None, timeout_local=None),
    # Imports: a thread waits for a module another thread is importing.
    FrameRule("importlib._bootstrap", "_find_and_load", WaitKind.IMPORT_LOCK,
              "waits for a module another thread is importing", subject=None, timeout_local=None),
    # Importing a module whose import is in progress in another thread.
    FrameRule("importlib._bootstrap", "_lock_unlock_module", WaitKind.IMPORT_LOCK,
              "waits for a module another thread is importing", subject=None, timeout_local=None),
    FrameRule("importlib._bootstrap", "_ModuleLock.acquire", WaitKind.IMPORT_LOCK,
              "waits for a module another thread is importing", timeout_local=None),
    # Locks the program takes through the library.
    FrameRule("threading", "Condition.__enter__", WaitKind.LOCK, "waits for a Condition's lock",
              timeout_local=None, innermost_only=True),
    FrameRule("logging", "Handler.acquire", WaitKind.RLOCK, "waits for a logging handler's lock",
              timeout_local=None, innermost_only=True, lock_attribute="lock", lock_type="RLock",
              library="logging.Handler"),
    FrameRule("logging", "Handler.handle", WaitKind.RLOCK, "waits for a logging handler's lock",
              timeout_local=None, innermost_only=True, lock_attribute="lock", lock_type="RLock",
              library="logging.Handler"),
    # Synchronisation primitives.
    FrameRule("threading", "Event.wait", WaitKind.EVENT_WAIT, "waits for an Event"),
    FrameRule("threading", "Barrier.wait", WaitKind.BARRIER, "waits at a Barrier"),
    FrameRule("threading", "Semaphore.acquire", WaitKind.SEMAPHORE, "waits for a Semaphore"),
    FrameRule("threading", "BoundedSemaphore.acquire", WaitKind.SEMAPHORE, "waits for a Semaphore"),
    FrameRule("threading", "Condition.wait_for", WaitKind.CONDITION_WAIT, "waits on a Condition"),
    FrameRule("threading", "Condition.wait", WaitKind.CONDITION_WAIT, "waits on a Condition"),
    # Queues.
    FrameRule("queue", "Queue.join", WaitKind.QUEUE_JOIN, "waits for a queue's tasks to be done"),
    FrameRule("queue", "Queue.get", WaitKind.QUEUE_GET, "waits to get from a queue"),
    FrameRule("queue", "Queue.put", WaitKind.QUEUE_PUT, "waits to put into a full queue"),
    FrameRule("queue", "_PySimpleQueue.get", WaitKind.QUEUE_GET, "waits to get from a queue"),
    # Servers and event loops, idle by design.
    FrameRule("socketserver", "BaseServer.serve_forever", WaitKind.SERVER_IDLE,
              "server loop waiting for requests", timeout_local=None),
    FrameRule("asyncio.runners", "run", WaitKind.ASYNCIO_IDLE,
              "asyncio event loop waiting for events", subject=None, timeout_local=None),
    FrameRule("asyncio.runners", "Runner.run", WaitKind.ASYNCIO_IDLE,
              "asyncio event loop waiting for events", timeout_local=None),
    FrameRule("asyncio.base_events", "BaseEventLoop.run_until_complete", WaitKind.ASYNCIO_IDLE,
              "asyncio event loop waiting for events", timeout_local=None),
    FrameRule("asyncio.base_events", "BaseEventLoop.run_forever", WaitKind.ASYNCIO_IDLE,
              "asyncio event loop waiting for events", timeout_local=None),
    FrameRule("asyncio.base_events", "BaseEventLoop._run_once", WaitKind.ASYNCIO_IDLE,
              "asyncio event loop waiting for events", timeout_local=None),
    # Processes.
    FrameRule("subprocess", "Popen.communicate", WaitKind.SUBPROCESS_COMMUNICATE,
              "waits for a child process (communicate)"),
    FrameRule("subprocess", "Popen.wait", WaitKind.SUBPROCESS_WAIT, "waits for a child process to exit"),
    FrameRule("subprocess", "Popen._wait", WaitKind.SUBPROCESS_WAIT, "waits for a child process to exit"),
    FrameRule("subprocess", "Popen._try_wait", WaitKind.SUBPROCESS_WAIT,
              "waits for a child process to exit"),
    # Sockets and multiplexing.
    FrameRule("socket", "socket.accept", WaitKind.SOCKET_ACCEPT, "waits for a connection (accept)"),
    FrameRule("socket", "create_connection", WaitKind.SOCKET_CONNECT, "connects a socket",
              subject=None),
    FrameRule("socket", "SocketIO.readinto", WaitKind.SOCKET_RECV, "reads from a socket"),
    # selectors rewrites its `timeout` argument before polling: it says nothing here.
    FrameRule("selectors", "*.select", WaitKind.SELECT, "waits in select/poll", timeout_local=None),
)

CALL_RULES: tuple[CallRule, ...] = (
    CallRule("acquire", WaitKind.LOCK, "waits for a lock"),
    CallRule("sleep", WaitKind.SLEEP, "sleeps"),
    CallRule("select", WaitKind.SELECT, "waits in select/poll", receivers=("select",)),
    CallRule("poll", WaitKind.SELECT, "waits in select/poll",
             receiver_types=("select.poll", "poll", "select.epoll", "epoll")),
    CallRule("recv", WaitKind.SOCKET_RECV, "reads from a socket"),
    CallRule("recvfrom", WaitKind.SOCKET_RECV, "reads from a socket"),
    CallRule("recv_into", WaitKind.SOCKET_RECV, "reads from a socket"),
    CallRule("recvfrom_into", WaitKind.SOCKET_RECV, "reads from a socket"),
    CallRule("recvmsg", WaitKind.SOCKET_RECV, "reads from a socket"),
    CallRule("send", WaitKind.SOCKET_SEND, "writes to a socket"),
    CallRule("sendall", WaitKind.SOCKET_SEND, "writes to a socket"),
    CallRule("sendto", WaitKind.SOCKET_SEND, "writes to a socket"),
    CallRule("connect", WaitKind.SOCKET_CONNECT, "connects a socket"),
    CallRule("read", WaitKind.FILE_READ, "reads from a file or pipe"),
    CallRule("readline", WaitKind.FILE_READ, "reads from a file or pipe"),
    CallRule("readlines", WaitKind.FILE_READ, "reads from a file or pipe"),
    CallRule("readinto", WaitKind.FILE_READ, "reads from a file or pipe"),
    CallRule("input", WaitKind.FILE_READ, "reads from standard input"),
    CallRule("waitpid", WaitKind.SUBPROCESS_WAIT, "waits for a child process to exit", receivers=("os",)),
    CallRule("wait", WaitKind.SUBPROCESS_WAIT, "waits for a child process to exit", receivers=("os",)),
    CallRule("get", WaitKind.QUEUE_GET, "waits to get from a queue",
             receiver_types=("SimpleQueue", "_queue.SimpleQueue")),
    CallRule("put", WaitKind.QUEUE_PUT, "waits to put into a queue",
             receiver_types=("SimpleQueue", "_queue.SimpleQueue")),
)

HOLD_RULES: tuple[HoldRule, ...] = (
    # 3.8-3.12: handle() calls self.acquire(), then emit(); 3.13: `with self.lock: emit()`.
    HoldRule("logging", "Handler.handle", "emit", "lock", "RLock", "logging.Handler"),
)

NATIVE_RULES: tuple[NativeRule, ...] = (
    # py-spy hides most libpython frames (take_gil among them): a GIL wait shows as libc's
    # condition wait called straight from the interpreter loop, or from time.sleep on its
    # way back (sleep itself waits in select or clock_nanosleep, never here).
    NativeRule("pthread_cond_timedwait", WaitKind.GIL, "runnable, waiting for the GIL", callers=(PYTHON,)),
    NativeRule("pthread_cond_timedwait", WaitKind.GIL, "returned from time.sleep, waiting for the GIL",
               callers=("time_sleep",)),
)
