"""Human-readable tables of the family and of one model's scaled stages."""

from __future__ import annotations

from collections.abc import Sequence

from effnet.arch.config import ModelConfig, get_config, list_models
from effnet.arch.cost import analytic_cost
from effnet.arch.scaling import block_specs, stage_table


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain text table, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def summary_row(config: ModelConfig) -> list[object]:
    params, macs = analytic_cost(config)  # no torch: `effnet info` answers at once (tests/test_cost.py)
    blocks = sum(len(stage) for stage in block_specs(config))
    return [config.name, config.width, config.depth, config.resolution, config.dropout, params, macs / 1e9, blocks]


SUMMARY_HEADERS = ("model", "width", "depth", "resolution", "dropout", "params", "GMACs", "blocks")


def family_table(names: Sequence[str] | None = None) -> str:
    """One row per model: coefficients, parameters (1000 classes), GMACs at its resolution, blocks."""
    rows = [summary_row(get_config(n)) for n in (names or list_models())]
    return format_table(SUMMARY_HEADERS, rows)


def stages_text(config: ModelConfig | str) -> str:
    """The paper's Table 1 for ``config``: operator, input resolution, channels, layers."""
    config = get_config(config)
    rows = [
        [r["stage"], r["operator"], f"{r['resolution']}x{r['resolution']}", r["channels"], r["layers"]]
        for r in stage_table(config)
    ]
    title = (
        f"{config.name}: width {config.width:.4g}, depth {config.depth:.4g}, "
        f"resolution {config.resolution}, dropout {config.dropout:.3g}"
    )
    return title + "\n" + format_table(("stage", "operator", "resolution", "channels", "layers"), rows)
