"""`python -m tests.loop_census ARGS…`: `rasa ARGS…` in a process that, on SIGUSR1, writes to
the file LOOP_CENSUS_FILE names its threads and how many event loops run in it."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import threading


def census(_signal: int, _frame: object) -> None:
    gc.unfreeze()  # the server froze its startup objects (connectors/heap.py), its loop too
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    report = {
        "running_loops": sum(loop.is_running() for loop in loops),
        "threads": sorted(thread.name for thread in threading.enumerate()),
    }
    with open(os.environ["LOOP_CENSUS_FILE"], "w", encoding="utf-8") as file:
        json.dump(report, file)


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, census)
    from rasa.__main__ import main

    sys.argv = ["rasa", *sys.argv[1:]]
    main()
