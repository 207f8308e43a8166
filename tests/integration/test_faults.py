"""A message id means one message across calls and restarts (PROTOCOL §4.6, §7.7): the
hub or the messages service, each in its own process, is killed with SIGKILL in the
middle of 500 messages with ids and started again; alice resends what was not
acknowledged, on a new call when she lost the hub. Afterwards each side holds the 500
messages exactly once, in order, and every ack of an id agrees with the first.

One run per fault and database here, at a random point; the seed is in every failure
and ``SWITCHBOARD_FAULT_SEED`` repeats it. ``bench/faults.py`` runs several seeds.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.integration.faults import run_fault

SEED_ENV = "SWITCHBOARD_FAULT_SEED"


def seed() -> int:
    value = os.environ.get(SEED_ENV)
    return int(value) if value else random.SystemRandom().randrange(2**31)


async def test_kill_9_of_the_hub_stores_each_id_once_and_acks_resends_with_the_original(
    tmp_path: Path, database_url: str
) -> None:
    outcome = await run_fault("hub", database_url, tmp_path / "run", seed())
    assert outcome.defects() == [], outcome.report()


async def test_kill_9_of_the_service_stores_each_id_once_in_order(
    tmp_path: Path, database_url: str
) -> None:
    outcome = await run_fault("service", database_url, tmp_path / "run", seed())
    assert outcome.defects() == [], outcome.report()
