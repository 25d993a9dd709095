"""The rapidrelease command as a process: what every stage's job inherits from it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# a matrix product, then the threads of the process (Linux lists them under /proc/self/task)
_PRODUCT_THEN_THREADS = (
    "import os, numpy; numpy.ones((256, 256)) @ numpy.ones((256, 256)); "
    "print(len(os.listdir('/proc/self/task')))"
)


def _threads_after_a_product(prelude: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    command = [sys.executable, "-c", prelude + _PRODUCT_THEN_THREADS]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="on one core NumPy's BLAS has one thread anyway")
def test_a_stage_computes_in_the_one_thread_its_job_was_given() -> None:
    # NumPy alone starts a BLAS thread per core, which spin after each product
    assert _threads_after_a_product("") > 1
    assert _threads_after_a_product("import rapidrelease.cli; ") == 1
