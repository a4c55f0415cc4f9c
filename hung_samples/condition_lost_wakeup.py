"""A job queue whose runner sleeps through the one wakeup it was sent.

`JobQueue.submit()` appends the job to the list and notifies the Condition
`_cond`, then -- lazily, on the first submit -- starts the runner thread
job-runner.  The runner waits for work with a bare `self._cond.wait()`: it does
not check first whether jobs are already pending (no `while not self._jobs`
predicate, no `wait_for()`).  The nightly jobs were submitted by the thread
job-submitter, whose `notify()` came before the runner existed, so it woke
nobody; the submitter has finished.  The runner now waits in `cond.wait()`
for a notification that was already sent, forever, and the main thread, which
joins it, hangs behind it.  (A helper daemon thread announces readiness once
all this is in place, then ends.)
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_dead, wait_until_waiting_in


class JobQueue:
    def __init__(self):
        self._cond = threading.Condition()
        self._jobs = []
        self.results = []
        self.runner = None

    def submit(self, job):
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()  # nobody waits yet: this wakeup is lost
        if self.runner is None:
            self.runner = threading.Thread(target=self._run, name="job-runner")
            self.runner.start()

    def _run(self):
        with self._cond:
            self._cond.wait()  # Bug: waits even though a job is already pending
            batch, self._jobs = self._jobs, []
        for job in batch:
            self.results.append(job())

    def join(self):
        self.runner.join()


def rotate_logs():
    return "logs rotated"


def submit_nightly_jobs(jobs):
    jobs.submit(rotate_logs)


def announce_when_stuck(ready_path, submitter, jobs):
    wait_until_dead(submitter)
    main_thread = threading.main_thread()
    wait_until_waiting_in(jobs.runner, "wait", "threading.py")
    wait_until_waiting_in(main_thread, "join", "threading.py")
    wait_until_blocked([jobs.runner, main_thread])
    signal_ready(ready_path)


def main(ready_path):
    jobs = JobQueue()
    submitter = threading.Thread(target=submit_nightly_jobs, args=(jobs,), name="job-submitter")
    submitter.start()
    submitter.join()
    threading.Thread(target=announce_when_stuck, args=(ready_path, submitter, jobs),
                     name="ready-announcer", daemon=True).start()
    jobs.join()
    print(jobs.results)


if __name__ == "__main__":
    main(sys.argv[1])
