"""The workaround for Snakemake's timed scheduling rounds, on Snakemake's own scheduler class."""

from __future__ import annotations

import threading
import time

from snakemake.scheduling.job_scheduler import JobScheduler

from rapidrelease.snakemake_scheduler import keep_one_reevaluation_pending


def _rounds_called(scheduler: JobScheduler, wait: float) -> int:
    time.sleep(wait)
    rounds = 0
    while scheduler._open_jobs.acquire(blocking=False):
        rounds += 1
    return rounds


def test_fifty_rounds_in_a_row_leave_one_timed_round_and_the_next_round_starts_another() -> None:
    assert keep_one_reevaluation_pending()
    # the scheduler's state that rounds and timers touch, without a workflow behind it
    scheduler = object.__new__(JobScheduler)
    scheduler._open_jobs = threading.Semaphore(0)
    # fifty rounds while jobs wait for a core, each ending as Snakemake ends a round
    for _ in range(50):
        scheduler._schedule_reevalutation(0.1)
    assert _rounds_called(scheduler, 0.5) == 1  # Snakemake 9.27 alone: 50, each starting its own chain
    scheduler._schedule_reevalutation(0.1)
    assert _rounds_called(scheduler, 0.5) == 1  # the rate limiter is still re-checked after a timespan


def test_applying_it_twice_keeps_one_wrapper() -> None:
    assert keep_one_reevaluation_pending()
    method = JobScheduler._schedule_reevalutation
    assert keep_one_reevaluation_pending()
    assert JobScheduler._schedule_reevalutation is method
