"""Every garbage collection of a bench server, timed from inside it.

``bench/relay.py`` puts this directory on the ``PYTHONPATH`` of the servers it starts, so
Python imports this module at start-up in each of them (hub, ``--compare`` hub, bare
relay) whatever their code. With ``BENCH_GC_PROBE`` set it records, for every
collection, when it ended (``time.monotonic``, the same clock in every process), its
generation, how long it took and how much CPU time the thread spent in it (on a shared
box the first also counts time the process waited for a core; the second does not), and
writes them to that file at exit. The bench then counts the pauses inside each run's
window. Two calls per collection: nothing to measure.
"""

from __future__ import annotations

import array
import atexit
import gc
import json
import os
import time

PATH = os.environ.get("BENCH_GC_PROBE")


class _Probe:
    def __init__(self) -> None:
        self.began = 0.0
        self.began_cpu = 0.0
        self.ends = array.array("d")
        self.seconds = array.array("d")
        self.cpu = array.array("d")
        self.generations = array.array("b")

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        if phase == "start":
            self.began, self.began_cpu = now, cpu
            return
        self.ends.append(now)
        self.seconds.append(now - self.began)
        self.cpu.append(cpu - self.began_cpu)
        self.generations.append(info["generation"])

    def write(self, path: str) -> None:
        data = {
            "ends": self.ends.tolist(),
            "seconds": self.seconds.tolist(),
            "cpu": self.cpu.tolist(),
            "generations": self.generations.tolist(),
        }
        with open(path, "w", encoding="utf-8") as out:
            json.dump(data, out)


if PATH:
    _probe = _Probe()
    gc.callbacks.insert(0, _probe)
    atexit.register(_probe.write, PATH)
