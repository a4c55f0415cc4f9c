"""An event bus that deadlocks when a subscriber subscribes from inside a callback.

`EventBus.publish()` holds `self._lock` (a plain Lock) while it calls the
subscribers of a topic, so that nobody changes the subscriber list under its
feet.  One subscriber, `WelcomeMailer.on_signup`, reacts to a new user by
subscribing to that user's first login, and `EventBus.subscribe()` takes
`self._lock` too.  The thread signup-worker holds the bus lock in `publish` and
waits for it again in `subscribe`, two frames deeper, through the callback: a
self-deadlock.  The main thread joins signup-worker and hangs behind it.
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked


class EventBus:
    def __init__(self):
        self._lock = threading.Lock()
        self._subscribers = {}

    def subscribe(self, topic, callback):
        with self._lock:
            self._subscribers.setdefault(topic, []).append(callback)

    def publish(self, topic, event):
        with self._lock:
            for callback in list(self._subscribers.get(topic, ())):
                callback(event)


class WelcomeMailer:
    def __init__(self, bus):
        self.bus = bus
        self.outbox = []
        bus.subscribe("user.signed-up", self.on_signup)

    def on_signup(self, user):
        self.outbox.append(f"Welcome, {user}!")
        self.bus.subscribe(f"user.{user}.first-login", self.on_first_login)

    def on_first_login(self, user):
        self.outbox.append(f"Glad to see you, {user}.")


def sign_up(bus, user):
    bus.publish("user.signed-up", user)


def main(ready_path):
    bus = EventBus()
    mailer = WelcomeMailer(bus)
    worker = threading.Thread(target=sign_up, args=(bus, "ada"), name="signup-worker")
    worker.start()
    wait_until_blocked([worker])
    assert bus._lock.locked() and mailer.outbox == ["Welcome, ada!"], "stuck in the callback"
    signal_ready(ready_path)
    worker.join()


if __name__ == "__main__":
    main(sys.argv[1])
