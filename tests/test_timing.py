"""time_callable's counting and stopping rules, checked against a fake clock (never the machine's load)."""

import itertools

import pytest

from effnet.bench.timing import TimingStats, percentile, time_callable


class FakeClock:
    """A clock that only moves when a call being timed says it took ``duration`` seconds."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def callable_taking(self, durations):
        it = iter(durations)

        def fn():
            self.now += next(it)

        return fn


def test_counts_warmup_and_iters_separately():
    clock = FakeClock()
    durations = [9.0, 9.0, 0.001, 0.002, 0.003, 0.004, 0.005]  # two slow warm-up calls, then five timed
    stats = time_callable(clock.callable_taking(durations), warmup=2, iters=5, clock=clock)
    assert stats.iters == 5
    assert stats.samples_ms == pytest.approx((1.0, 2.0, 3.0, 4.0, 5.0))  # warm-up excluded
    assert stats.max_ms == pytest.approx(5.0) and stats.total_s == pytest.approx(0.015)


def test_min_time_extends_iterations_until_enough_time_was_measured():
    clock = FakeClock()
    stats = time_callable(clock.callable_taking(itertools.repeat(0.004)), warmup=0, iters=2, min_time_s=0.02,
                          clock=clock)
    assert stats.iters == 5  # 5 calls of 4 ms reach 20 ms; 4 calls (16 ms) do not
    assert stats.total_s == pytest.approx(0.02)


def test_min_time_never_stops_before_iters():
    clock = FakeClock()
    stats = time_callable(clock.callable_taking(itertools.repeat(1.0)), warmup=0, iters=6, min_time_s=0.5,
                          clock=clock)
    assert stats.iters == 6


def test_max_iters_caps_the_extension():
    clock = FakeClock()
    stats = time_callable(clock.callable_taking(itertools.repeat(0.001)), warmup=0, iters=2, min_time_s=10.0,
                          max_iters=4, clock=clock)
    assert stats.iters == 4


def test_stats_are_the_percentiles_of_the_measured_durations():
    clock = FakeClock()
    durations = [0.005, 0.001, 0.004, 0.002, 0.003]
    stats = time_callable(clock.callable_taking(durations), warmup=0, iters=5, clock=clock)
    assert (stats.min_ms, stats.p50_ms, stats.max_ms) == pytest.approx((1.0, 3.0, 5.0))
    assert stats.p90_ms == pytest.approx(4.6)
    assert stats.mean_ms == pytest.approx(3.0)
    assert stats.samples_ms == pytest.approx((5.0, 1.0, 4.0, 2.0, 3.0))  # in call order


def test_the_default_clock_times_real_calls():
    stats = time_callable(lambda: sum(range(1000)), warmup=1, iters=3)
    assert stats.iters == 3 and 0 < stats.min_ms <= stats.p50_ms <= stats.max_ms


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
    with pytest.raises(ValueError, match="max_iters"):
        time_callable(lambda: None, iters=5, max_iters=4)
    with pytest.raises(ValueError, match="no timing samples"):
        TimingStats.from_samples([])
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile([1.0], 101)
