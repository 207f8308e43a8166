"""A server with ``tracemalloc`` on, taking snapshots when signalled.

``bench/idle.py --tracemalloc`` starts its servers through this launcher::

    python bench/traced_serve.py switchboard serve --config ...   # the hub
    python bench/traced_serve.py bench/echo_app.py --port ...     # the bare echo

The first argument is ``switchboard`` (the console script's ``main``) or a script to run
as ``__main__``; the rest is handed over as it is, so each server is the one the bench
otherwise runs, only slower (``tracemalloc`` records every allocation's traceback).

Each ``SIGUSR1`` writes, into the folder named by ``SWITCHBOARD_BENCH_SNAPSHOTS``:

- ``snap-<n>.pickle``: a ``tracemalloc`` snapshot (``Snapshot.load`` reads it back);
- ``types-<n>.json``: live objects the garbage collector tracks, counted by type name;

``<n>`` counts from 1. Both files appear under their final names only once complete,
``types`` last, so the bench waits for that one. The handler runs on the main thread
between two bytecodes of the event loop, so it sees the hub in a consistent state.

This is a benchmark tool, not part of the server.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import runpy
import signal
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

__all__ = ["SNAPSHOT_DIR_VARIABLE", "main"]

SNAPSHOT_DIR_VARIABLE = "SWITCHBOARD_BENCH_SNAPSHOTS"
TRACEBACK_FRAMES = 8  # enough to see which of our functions an uvicorn allocation came from


def _writer(folder: Path) -> object:
    numbers = itertools.count(1)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        number = next(numbers)
        gc.collect()  # what is garbage now is not held by anything: leave it out
        snapshot = tracemalloc.take_snapshot()
        snapshot = snapshot.filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
        )
        part = folder / f"snap-{number}.pickle.part"
        snapshot.dump(str(part))
        part.rename(folder / f"snap-{number}.pickle")
        counts = Counter(type(item).__qualname__ for item in gc.get_objects())
        part = folder / f"types-{number}.json.part"
        part.write_text(json.dumps(counts))
        part.rename(folder / f"types-{number}.json")

    return on_signal


def main(argv: list[str]) -> int:
    folder = Path(os.environ[SNAPSHOT_DIR_VARIABLE])
    folder.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(TRACEBACK_FRAMES)
    signal.signal(signal.SIGUSR1, _writer(folder))  # type: ignore[arg-type]
    program, args = argv[0], argv[1:]
    if program != "switchboard":
        sys.argv = [program, *args]
        runpy.run_path(program, run_name="__main__")
        return 0

    from signaling.cli import main as switchboard

    return switchboard(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
