"""Scale to a budget: the largest compound coefficient phi whose model fits a MACs, parameter or latency limit.

phi is searched on a grid ``phi_k = k * precision`` (default precision 1e-3). The answer ``phi`` satisfies

* ``cost(phi) <= target``                    (the returned model fits), and
* ``cost(phi + precision) > target``         (the *next* grid step does not),

which is the invariant of a bisection that keeps ``lo`` fitting and ``hi`` not fitting. Because of
rounding (channels to multiples of 8, layers up, resolution to multiples of 8) cost is a staircase in phi,
and for latency it is noisy, so we never assume it is strictly monotone: the bisection invariant holds for
any function, and the answer is always checked at both ends. MACs and parameters are counted with
:func:`effnet.arch.flops.model_cost` on meta-device models (no memory), and cached per *structure* (the
rounded channels, layers and resolution), so neighbouring phi that round to the same network cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from effnet.arch.config import ModelConfig, get_config
from effnet.arch.flops import model_cost
from effnet.arch.scaling import ALPHA, BETA, GAMMA, head_channels, scaled_config, scaled_stages, stem_channels
from effnet.choices import BUDGET_UNITS, DEFAULT_PHI_MAX, DEFAULT_PRECISION, LATENCY_BACKENDS

METRICS = ("macs", "params", "latency_ms")


def structure_key(config: ModelConfig) -> tuple:
    """Everything that determines a model's cost; two configs with the same key cost the same."""
    return (
        config.resolution,
        stem_channels(config),
        head_channels(config),
        tuple(scaled_stages(config)),
        config.se_ratio,
        config.activation,
        config.padding,
    )


_COSTS: dict[tuple, tuple[int, int]] = {}


def structure_cost(config: ModelConfig) -> tuple[int, int]:
    """(params, MACs) for 1000 classes, counted once per structure in this process."""
    key = structure_key(config)
    if key not in _COSTS:
        _COSTS[key] = model_cost(config)
    return _COSTS[key]


@dataclass
class CostModel:
    """Measures one metric of a config, caching by structure. ``evaluations`` counts real measurements."""

    metric: str
    batch: int = 1
    backend: str = "eager"
    num_classes: int = 1000
    threads: int | None = None
    latency_fn: Callable[[ModelConfig], float] | None = None
    evaluations: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown budget metric {self.metric!r}; choose one of {', '.join(METRICS)}")
        if self.backend not in LATENCY_BACKENDS:
            raise ValueError(f"unknown latency backend {self.backend!r}; choose one of {', '.join(LATENCY_BACKENDS)}")
        if self.batch < 1:
            raise ValueError(f"--batch must be >= 1, got {self.batch}")

    def __call__(self, config: ModelConfig) -> float:
        key = structure_key(config)
        if key not in self._cache:
            self.evaluations += 1
            self._cache[key] = self._measure(config)
        return self._cache[key]

    def _measure(self, config: ModelConfig) -> float:
        if self.metric == "latency_ms":
            fn = self.latency_fn or (
                lambda c: measure_latency_ms(c, self.batch, self.backend, self.num_classes, threads=self.threads)
            )
            return float(fn(config))
        params, macs = structure_cost(config)
        return float(macs if self.metric == "macs" else params)


def measure_latency_ms(
    config: ModelConfig, batch: int = 1, backend: str = "eager", num_classes: int = 1000,
    warmup: int = 2, iters: int = 5, threads: int | None = None,
) -> float:
    """Median inference latency (ms) of a randomly initialised model on this machine's CPU.

    ``threads`` sets torch's intra-op threads for the measurement (restored afterwards); on a busy machine
    more threads than free cores makes OpenMP spin and times become meaningless.
    """
    from effnet.bench.timing import torch_threads

    with torch_threads(threads):
        return _time_model(config, batch, backend, num_classes, warmup, iters)


def _time_model(config: ModelConfig, batch: int, backend: str, num_classes: int, warmup: int, iters: int) -> float:
    from effnet.arch.model import EfficientNet
    from effnet.bench.timing import time_callable

    model = EfficientNet(config, num_classes=num_classes).eval()
    x = torch.randn(batch, 3, config.resolution, config.resolution)
    if backend == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    runner: Callable = torch.compile(model) if backend == "compile" else model

    def step() -> None:
        with torch.inference_mode():
            runner(x)

    return time_callable(step, warmup=warmup, iters=iters).p50_ms


def largest_fitting_index(fits: Callable[[int], bool], n: int, guess: int | None = None) -> int:
    """The index ``k`` in ``[0, n]`` found by bracketed bisection with ``fits(k)`` and not ``fits(k + 1)``.

    Requires ``fits(0)``; returns ``n`` when ``fits(n)`` (nothing in range exceeds the budget). ``guess``
    (an estimate of the answer) only speeds things up: the bracket is grown outward from it by doubling.
    The result is correct for any ``fits``: the loop keeps ``fits(lo)`` and ``not fits(hi)``.
    """
    if not fits(0):
        raise ValueError("even the smallest step does not fit the budget")
    lo, hi = 0, None
    if guess is not None and 0 < guess < n:
        step = max(1, n // 64)
        if fits(guess):
            lo, probe = guess, guess + step
            while probe < n and fits(probe):
                lo, step = probe, step * 2
                probe = lo + step
            hi = probe if probe < n else None
        else:
            hi, probe = guess, guess - step
            while probe > 0 and not fits(probe):
                hi, step = probe, step * 2
                probe = hi - step
            lo = max(probe, 0)
    if hi is None:
        if fits(n):
            return n
        hi = n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class BudgetResult:
    """The answer of :func:`fit_budget`. ``next_value`` is the metric at ``phi + precision`` (None when capped)."""

    phi: float
    config: ModelConfig
    metric: str
    target: float
    value: float
    next_phi: float | None
    next_value: float | None
    params: int
    macs: int
    precision: float
    evaluations: int

    @property
    def capped(self) -> bool:
        """True when even ``phi_max`` fits, so the budget did not bind."""
        return self.next_phi is None


def fit_budget(
    target: float,
    metric: str = "macs",
    *,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    base: ModelConfig | str | None = None,
    precision: float = DEFAULT_PRECISION,
    phi_max: float = DEFAULT_PHI_MAX,
    batch: int = 1,
    backend: str = "eager",
    threads: int | None = None,
    latency_fn: Callable[[ModelConfig], float] | None = None,
) -> BudgetResult:
    """The largest ``phi = k * precision <= phi_max`` whose scaled model has ``metric <= target``.

    ``metric`` is ``"macs"``, ``"params"`` (both for 1000 classes) or ``"latency_ms"`` (median of a
    batch-``batch`` forward pass with ``backend`` and ``threads`` on this machine, or ``latency_fn(config)``).
    """
    if not target > 0:
        raise ValueError(f"the budget must be a positive number, got {target}")
    if not 0 < precision <= 1:
        raise ValueError(f"precision must be in (0, 1], got {precision}")
    base_config = get_config(base or "b0")
    cost = CostModel(metric, batch=batch, backend=backend, threads=threads, latency_fn=latency_fn)
    n = int(math.floor(phi_max / precision + 1e-9))

    def config_at(k: int) -> ModelConfig:
        return scaled_config(round(k * precision, 12), alpha, beta, gamma, base=base_config)

    base_value = cost(config_at(0))
    if base_value > target:
        raise ValueError(
            f"the budget {target:g} {BUDGET_UNITS[metric]} is below the unscaled baseline {base_config.name} "
            f"({base_value:g} {BUDGET_UNITS[metric]}); phi >= 0 cannot go smaller: use a smaller base model (--model)"
        )
    k = largest_fitting_index(lambda i: cost(config_at(i)) <= target, n, _guess(target, base_value, metric,
                                                                              alpha, beta, gamma, precision))
    config = config_at(k)
    params, macs = structure_cost(config)
    nxt = k + 1 if k < n else None
    return BudgetResult(
        phi=config.phi or 0.0,
        config=config,
        metric=metric,
        target=float(target),
        value=cost(config),
        next_phi=None if nxt is None else config_at(nxt).phi,
        next_value=None if nxt is None else cost(config_at(nxt)),
        params=params,
        macs=macs,
        precision=precision,
        evaluations=cost.evaluations,
    )


def _guess(target: float, base_value: float, metric: str, alpha: float, beta: float, gamma: float,
           precision: float) -> int | None:
    """Where the answer should be if cost grew exactly geometrically (params ignore resolution)."""
    growth = alpha * beta**2 if metric == "params" else alpha * beta**2 * gamma**2
    if growth <= 1.0 + 1e-9 or base_value <= 0:
        return None
    return int(math.log(target / base_value) / math.log(growth) / precision)
