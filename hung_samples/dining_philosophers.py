"""Three philosophers at a round table with three forks: Dijkstra's dining philosophers.

Each fork is a Lock shared by two neighbours.  Every philosopher is handed the
fork on their left and the fork on their right (`dine(left, right, ...)`) and
picks up the left one, then the right one.  All three hold their left fork and
wait for their right one, which is their neighbour's left fork: a ring of three
threads, no two of which are deadlocked on their own.  The main thread waits for
dinner to end and hangs behind them.
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked

PHILOSOPHERS = ("aristotle", "kant", "spinoza")

everyone_holds_a_fork = threading.Barrier(len(PHILOSOPHERS))


def dine(left, right, plate):
    with left:
        everyone_holds_a_fork.wait()
        with right:
            plate.append("spaghetti")


def seat_philosophers(names):
    forks = [threading.Lock() for _ in names]
    plates = {name: [] for name in names}
    diners = []
    for seat, name in enumerate(names):
        left, right = forks[seat], forks[(seat + 1) % len(forks)]
        diners.append(threading.Thread(target=dine, args=(left, right, plates[name]), name=name))
    return forks, diners


def main(ready_path):
    forks, diners = seat_philosophers(PHILOSOPHERS)
    for diner in diners:
        diner.start()
    wait_until_blocked(diners)
    assert all(fork.locked() for fork in forks), "every fork is in someone's left hand"
    signal_ready(ready_path)
    for diner in diners:
        diner.join()


if __name__ == "__main__":
    main(sys.argv[1])
