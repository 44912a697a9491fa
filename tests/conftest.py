"""Fixtures shared by several test files."""

import pytest

from effnet.bench.timing import torch_threads


@pytest.fixture
def one_thread():
    # Two OpenMP threads on a busy 2-core machine (pytest -n 2) run tiny convolutions 10x slower
    # than one, which would make timing-based code (latency budgets) measure the contention.
    with torch_threads(1):
        yield
