"""A thumbnail service working through a long backlog: busy, not hung.

Four workers (thumbnail_0 ... thumbnail_3) shrink images, small CPU-bound
tasks, as fast as they can.  The main thread feeds the pool in batches and
keeps ten batches queued behind the one it waits for
(`concurrent.futures.wait`), so the queue never runs dry: at any moment the
workers are computing or taking the next task, and the main thread waits for
a batch that is being worked on.  A diagnoser must call this `no-hang`, and
must not mistake a waiting main thread and a long queue for a starved pool.
"""

import collections
import concurrent.futures
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from _ready import signal_ready

BATCH = 32
BATCHES_AHEAD = 10  # queued behind the batch the main thread waits for


def shrink(image, size):
    """Average `image` (rows of pixels) down to `size` x `size`."""
    step = len(image) // size
    return [[sum(image[y + dy][x + dx] for dy in range(step) for dx in range(step)) // (step * step)
             for x in range(0, step * size, step)]
            for y in range(0, step * size, step)]


def load_image(number, side=128):
    return [[(number * 31 + x * 7 + y * 13) % 256 for x in range(side)] for y in range(side)]


IMAGES = [load_image(number) for number in range(16)]  # the uploads, already decoded


def submit_batch(pool, first):
    return [pool.submit(shrink, IMAGES[number % len(IMAGES)], 8) for number in range(first, first + BATCH)]


def main(ready_path):
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="thumbnail")
    backlog = collections.deque(submit_batch(pool, n * BATCH) for n in range(BATCHES_AHEAD + 1))
    done = 0
    while True:
        finished, _ = concurrent.futures.wait(backlog.popleft())
        assert all(future.exception() is None for future in finished)
        done += len(finished)
        backlog.append(submit_batch(pool, done + BATCHES_AHEAD * BATCH))
        workers = [t for t in threading.enumerate() if t.name.startswith("thumbnail")]
        if done == 2 * BATCH and len(workers) == 4:  # steady state: four workers, a full backlog
            signal_ready(ready_path)


if __name__ == "__main__":
    main(sys.argv[1])
