"""asyncio-idle: `waiter` runs an asyncio event loop (`loop.run_forever()`)
with nothing scheduled, so it is idle in the loop's selector."""
import asyncio
import sys

import _ready


def waiter_main(loop):
    asyncio.set_event_loop(loop)
    loop.run_forever()  # BLOCKS


def main(ready_path):
    loop = asyncio.new_event_loop()
    waiter = _ready.start("waiter", waiter_main, loop)
    _ready.wait_blocked(waiter, check=loop.is_running)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])
