"""An order importer that never exits: its consumer waits for an order that never comes.

The main code reads the day's orders and puts them on a queue; the thread
order-consumer takes them off one by one (`orders.get()`) and books them.
The consumer loops until it gets the end-of-orders sentinel, `None`, and the
producer never sends it.  Once every order is booked, the consumer waits in
`get()` forever; it is not a daemon thread, so when the main code returns
the interpreter waits for it in `threading._shutdown`, forever.  (A helper
daemon thread announces readiness once both are stuck, then ends.)
"""

import queue
import sys
import threading
import time

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_waiting_in

orders = queue.Queue()
booked = []


def book_orders():
    while True:
        order = orders.get()
        if order is None:
            break
        booked.append({"order": order["id"], "total": order["quantity"] * order["price"]})
        orders.task_done()


def produce_orders(rows):
    for row in rows:
        orders.put(row)
    # Bug: the sentinel `orders.put(None)` was never added when the loop was rewritten.


def announce_when_stuck(ready_path, consumer, expected):
    main_thread = threading.main_thread()
    while main_thread.is_alive():  # until the script has finished
        time.sleep(0.01)
    wait_until_waiting_in(main_thread, "_shutdown", "threading.py")
    wait_until_waiting_in(consumer, "get", "queue.py")
    wait_until_blocked([consumer])
    assert len(booked) == expected and orders.empty()
    signal_ready(ready_path)


def main(ready_path):
    rows = [{"id": 1001 + n, "quantity": 1 + n % 3, "price": 9.5} for n in range(20)]
    consumer = threading.Thread(target=book_orders, name="order-consumer")
    consumer.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, consumer, len(rows)),
                     name="ready-announcer", daemon=True).start()
    produce_orders(rows)
    orders.join()
    print(f"booked {len(booked)} orders")


if __name__ == "__main__":
    main(sys.argv[1])
