"""An order importer whose consumer waits forever for a producer that has died.

The thread order-producer parses the day's order file and puts each order on
the queue `orders`; the thread order-consumer takes them off (`orders.get()`)
and books them until the producer's end-of-orders sentinel, `None`.  The
fourth row of the file is malformed ("two" where a quantity should be):
`int()` raises ValueError, which ends the producer thread (its traceback goes
to stderr, where nobody looks) before it sends the sentinel.  The consumer
books the three orders it got and then waits in `get()` for an order no thread
will ever put.  The main thread joins the consumer and hangs behind it.
(A helper daemon thread announces readiness once all this is in place, then ends.)
"""

import queue
import sys
import threading

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_dead, wait_until_waiting_in

ORDER_FILE = """\
1001,widget,3,9.50
1002,gadget,1,24.00
1003,widget,2,9.50
1004,gizmo,two,12.00
1005,gadget,4,24.00
"""

orders = queue.Queue()
booked = []


def parse_order(row):
    number, item, quantity, price = row.split(",")
    return {"id": int(number), "item": item, "quantity": int(quantity), "price": float(price)}


def produce_orders(text):
    for row in text.splitlines():
        orders.put(parse_order(row))
    orders.put(None)  # never reached: the malformed row ends this thread first


def book_orders():
    while True:
        order = orders.get()
        if order is None:
            break
        booked.append((order["id"], order["quantity"] * order["price"]))


def announce_when_stuck(ready_path, producer, consumer):
    wait_until_dead(producer)
    main_thread = threading.main_thread()
    wait_until_waiting_in(consumer, "get", "queue.py")
    wait_until_waiting_in(main_thread, "join", "threading.py")
    wait_until_blocked([consumer, main_thread])
    if len(booked) != 3 or not orders.empty():
        raise RuntimeError(f"expected 3 booked orders and an empty queue, got {booked}")
    signal_ready(ready_path)


def main(ready_path):
    producer = threading.Thread(target=produce_orders, args=(ORDER_FILE,), name="order-producer")
    consumer = threading.Thread(target=book_orders, name="order-consumer")
    producer.start()
    consumer.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, producer, consumer),
                     name="ready-announcer", daemon=True).start()
    consumer.join()
    print(f"booked {len(booked)} orders")


if __name__ == "__main__":
    main(sys.argv[1])
