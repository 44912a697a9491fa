import time

import pytest

from effnet.bench.timing import TimingStats, percentile, time_callable


def test_counts_warmup_and_iters_separately():
    calls = []
    stats = time_callable(lambda: calls.append(1), warmup=2, iters=5)
    assert len(calls) == 7
    assert stats.iters == 5


def test_min_time_extends_iterations_and_max_iters_caps_them():
    stats = time_callable(lambda: time.sleep(0.001), warmup=0, iters=2, min_time_s=0.02)
    assert stats.iters >= 10
    capped = time_callable(lambda: time.sleep(0.001), warmup=0, iters=2, min_time_s=10.0, max_iters=4)
    assert capped.iters == 4


def test_measures_sleep_duration():
    stats = time_callable(lambda: time.sleep(0.005), warmup=1, iters=5)
    assert 4.9 <= stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.max_ms
    assert stats.p50_ms < 100


def test_percentile_matches_numpy():
    np = pytest.importorskip("numpy")
    values = sorted([3.0, 1.0, 7.0, 2.5, 9.0, 4.0])
    for q in (0, 10, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_from_samples_converts_seconds_to_ms():
    stats = TimingStats.from_samples([0.001, 0.002, 0.003])
    assert stats.p50_ms == pytest.approx(2.0)
    assert stats.mean_ms == pytest.approx(2.0)
    assert stats.total_s == pytest.approx(0.006)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="iters"):
        time_callable(lambda: None, iters=0)
    with pytest.raises(ValueError, match="no timing samples"):
        TimingStats.from_samples([])
