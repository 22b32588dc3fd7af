"""PNG figures of the robustness reports (matplotlib, Agg backend: no display needed).

A sweep over one knob is a curve of the mean return with a +-1 std band; over two knobs, a heat
map of the mean return. The training range is shaded (curve) or outlined (heat map) and the
nominal value is a dashed line or a cross. A sensitivity report is a horizontal bar chart of the
indices, ranked, with their confidence intervals as error bars.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domrand.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from domrand.reports.sensitivity import SensitivityResult
    from domrand.reports.sweep import SweepResult

__all__ = ["plot_sensitivity", "plot_sweep"]


def _figure(figsize: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=110)  # not pyplot: no global figure state
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _label(axis: Any) -> str:
    unit = axis.knob.unit
    return axis.name + (f" [{unit}]" if unit and unit != "1" else "")


def plot_sweep(result: SweepResult, path: str | Path, title: str = "") -> Path:
    """Draw a curve (one knob) or a heat map (two knobs) of the mean return to ``path``."""
    path = Path(path)
    mean, std = result.mean, result.std
    episodes = result.outcome.returns.shape[1]
    others = "others from the training spec" if result.others == "spec" else "others nominal"
    if result.pins:
        others += f", {len(result.pins)} pinned"
    subtitle = f"{result.env_id}: {episodes} episodes per point, {others}, seed {result.seed}"
    if len(result.axes) == 1:
        (axis,) = result.axes
        fig, ax = _figure((6.4, 4.2))
        x = axis.values
        if axis.training is not None:
            ax.axvspan(*axis.training, color="tab:green", alpha=0.15, label="training range")
        ax.fill_between(x, mean - std, mean + std, color="tab:blue", alpha=0.25, label="+-1 std")
        ax.plot(x, mean, "o-", color="tab:blue", label="mean return")
        ax.axvline(axis.knob.nominal, color="0.3", ls="--", lw=1, label="nominal")
        ax.set_xlabel(_label(axis))
        ax.set_ylabel("return")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    else:
        a0, a1 = result.axes
        fig, ax = _figure((6.4, 5.0))
        x, y = a0.values, a1.values
        mesh = ax.pcolormesh(_edges(x), _edges(y), mean.T, shading="flat", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="mean return")
        if a0.training is not None and a1.training is not None:
            (x0, x1), (y0, y1) = a0.training, a1.training
            ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], "w--", lw=1.5,
                    label="training range")  # fmt: skip
            ax.legend(loc="upper right", fontsize=8)
        ax.plot([a0.knob.nominal], [a1.knob.nominal], "wx", ms=9, mew=2)
        ax.set_xlabel(_label(a0))
        ax.set_ylabel(_label(a1))
    ax.set_title((title + "\n" if title else "") + subtitle, fontsize=9)
    return _save(fig, path)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around grid values (midpoints, half a step beyond the ends)."""
    c = np.asarray(centres, dtype=float)
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def plot_sensitivity(result: SensitivityResult, path: str | Path, title: str = "") -> Path:
    """Bars of the indices, largest first, with their confidence intervals."""
    path = Path(path)
    order = result.ranking()
    names = [result.knobs[i] for i in order]
    (main, main_conf, main_label), (second, second_conf, second_label) = result.bars()
    n = len(names)
    fig, ax = _figure((6.4, 1.2 + 0.42 * n))
    pos = np.arange(n)[::-1]
    h = 0.38
    ax.barh(pos + h / 2, main[order], h, xerr=main_conf[order], color="tab:blue", capsize=3,
            label=main_label)  # fmt: skip
    ax.barh(pos - h / 2, second[order], h, xerr=second_conf[order], color="tab:orange",
            capsize=3, label=second_label)  # fmt: skip
    ax.set_yticks(pos, names, fontsize=8)
    ax.axvline(0.0, color="0.3", lw=0.8)
    ax.set_xlabel(result.index_label)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    sub = (
        f"{result.env_id}: {result.method}, {result.evaluations} episodes, "
        f"{int(result.conf_level * 100)}% intervals, seed {result.seed}"
    )
    ax.set_title((title + "\n" if title else "") + sub, fontsize=9)
    return _save(fig, path)
