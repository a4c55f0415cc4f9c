"""A report builder whose sections submit their charts to the pool they run on.

The monthly report has four sections, rendered in parallel on a pool of four
workers (report_0 ... report_3).  Each section queries its figures, submits
the rendering of its chart to the same pool, and waits for the chart.  Once
all four sections are running, every worker is busy waiting for a chart, and
the four charts sit in the pool's queue behind them: no worker will ever be
free to render one (the nested-submit starvation of PEP 3148, with a full
pool).  The main thread waits for the sections and hangs behind them.
"""

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_waiting_in

SECTIONS = ("revenue", "churn", "signups", "support")

pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="report")
# The sections start together, as they do when the pool is idle at month's end.
all_sections_started = threading.Barrier(len(SECTIONS))
charts = []


def query_figures(section):
    return [(day, (day * 37 + len(section)) % 101) for day in range(1, 31)]


def render_chart(section, figures):
    peak = max(value for _, value in figures)
    return f"<chart {section}: {len(figures)} days, peak {peak}>"


def render_section(section):
    figures = query_figures(section)
    all_sections_started.wait()
    chart = pool.submit(render_chart, section, figures)
    charts.append(chart)
    return f"<section {section} {chart.result()}>"


def announce_when_starved(ready_path, sections):
    workers = [t for t in threading.enumerate() if t.name.startswith("report")]
    while len(charts) < len(SECTIONS):  # every section has submitted its chart
        time.sleep(0.01)
    wait_until_blocked(workers)
    wait_until_waiting_in(threading.main_thread(), "result", "_base.py")
    assert len(workers) == 4
    assert all(section.running() for section in sections)
    assert not any(chart.running() or chart.done() for chart in charts)
    signal_ready(ready_path)


def main(ready_path):
    sections = [pool.submit(render_section, name) for name in SECTIONS]
    threading.Thread(target=announce_when_starved, args=(ready_path, sections),
                     name="ready-announcer", daemon=True).start()
    report = [section.result() for section in sections]
    print("\n".join(report))


if __name__ == "__main__":
    main(sys.argv[1])
