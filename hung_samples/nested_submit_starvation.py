"""A report renderer whose tasks submit their sub-tasks to their own pool.

The pool has one worker.  `render_report` runs on it and submits
`render_chart` to the same pool, then blocks on the result: the chart is
queued behind the very task waiting for it, and no worker will ever run it
(the nested-submit starvation of PEP 3148).  The main thread waits for the
report and hangs behind it.
"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from _ready import signal_ready, wait_until_blocked

pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="renderer")


def render_chart(name):
    return f"<chart {name}>"


def render_report(title):
    chart = pool.submit(render_chart, title)
    return f"<report {title} {chart.result()}>"


def main(ready_path):
    report = pool.submit(render_report, "quarterly")
    workers = [t for t in threading.enumerate() if t.name.startswith("renderer")]
    wait_until_blocked(workers)
    signal_ready(ready_path)
    print(report.result())


if __name__ == "__main__":
    main(sys.argv[1])
