"""A workaround for Snakemake's job scheduler, applied by the workflow (workflow/rules/common.smk).

Snakemake 9's scheduler ends every scheduling round by starting a timer that calls another round
after its job rate limiter's timespan (``--max-jobs-per-timespan``, default 100/1s), whether or not
one is pending. A round that runs while jobs wait for a core then starts one more timer, so every job
finished while others are waiting adds a chain of one round per second for the rest of the run: the
number of rounds grows with the square of the run's length. Each round reads the size of every
waiting job's inputs and solves the job selection anew. Measured with 20 demo-size lots and DEMO-001
through ``snakemake --cores 2`` (327 jobs): 10,000-16,000 rounds, 244-256 CPU s and 129-135 s; with
at most one timed round pending, 430 rounds, 212-217 CPU s and 112-115 s. With thousands of lots
the rounds would take a core of their own. Related upstream: snakemake/snakemake#3744.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["keep_one_reevaluation_pending"]

_PENDING_LOCK = threading.Lock()


def keep_one_reevaluation_pending() -> bool:
    """Make the scheduler keep at most one pending timed round: the rate limiter is still re-checked
    within its timespan, and rounds still follow every finished job.

    Returns whether it applied; ``False`` where the scheduler no longer has the method this replaces
    (a Snakemake that changed it), which then runs as it is.
    """
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:
        return False
    if not hasattr(JobScheduler, "_schedule_reevalutation"):
        return False
    if getattr(JobScheduler._schedule_reevalutation, "keeps_one_pending", False):
        return True

    def schedule_reevaluation(self: Any, delay: float) -> None:
        with _PENDING_LOCK:
            if getattr(self, "_rapidrelease_round_pending", False):
                return
            self._rapidrelease_round_pending = True

        def next_round() -> None:
            with _PENDING_LOCK:
                self._rapidrelease_round_pending = False
            self._open_jobs.release()

        threading.Timer(delay, next_round).start()

    schedule_reevaluation.keeps_one_pending = True  # type: ignore[attr-defined]
    JobScheduler._schedule_reevalutation = schedule_reevaluation
    return True
