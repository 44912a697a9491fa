"""Fixtures shared by several test files."""

import pytest
import torch


@pytest.fixture
def one_thread():
    # Two OpenMP threads on a busy 2-core machine (pytest -n 2) run tiny convolutions 10x slower
    # than one, which would make timing-based code (latency budgets) measure the contention.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
