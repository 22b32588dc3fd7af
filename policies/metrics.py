"""Run logging: ``metrics.csv`` (and TensorBoard when installed), and the progress display."""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from domrand.errors import StorageError
from domrand.fsutil import atomic_write_text

__all__ = ["COLUMNS", "MetricsWriter", "ProgressReporter"]

#: metrics.csv columns, one row per rollout/update iteration
COLUMNS = (
    "env_steps",
    "iteration",
    "time_s",
    "steps_per_s",
    "episodes",
    "return_mean",
    "return_std",
    "length_mean",
    "success_rate",
    "faults",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_frac",
    "explained_var",
    "learning_rate",
    "action_std",
)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class MetricsWriter:
    """Appends one row per iteration to ``metrics.csv``; mirrors it to TensorBoard if available.

    Args:
        run_dir: the run directory.
        resume_step: when resuming, rows logged after this env step (work lost with the killed
            process) are dropped, so the file reads as one uninterrupted run.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.csv"
        if resume_step is not None and self.path.exists():
            self._truncate(resume_step)
        else:
            atomic_write_text(self.path, ",".join(COLUMNS) + "\n")
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self.tb: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge)
        except ImportError:  # tensorboard is optional (pip install 'domrand[tensorboard]')
            self.tb = None

    def _truncate(self, step: int) -> None:
        with self.path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        keep = [rows[0]] if rows else [list(COLUMNS)]
        for row in rows[1:]:
            try:
                if int(row[0]) <= step:
                    keep.append(row)
            except (ValueError, IndexError):
                continue  # a line cut short by the kill
        buf = io.StringIO(newline="")
        csv.writer(buf).writerows(keep)
        atomic_write_text(self.path, buf.getvalue())

    def write(self, row: dict[str, Any]) -> None:
        try:
            self._csv.writerow([_fmt(row.get(c)) for c in COLUMNS])
            self._file.flush()
        except OSError as e:  # disk full, ...: one clear error (the checkpoints are unaffected)
            raise StorageError(
                f"cannot append to {str(self.path)!r}: {e.strerror or type(e).__name__}", e.errno
            ) from None
        if self.tb is not None:
            step = int(row["env_steps"])
            for key in COLUMNS[2:]:
                value = row.get(key)
                if isinstance(value, (int, float)) and not math.isnan(value):
                    self.tb.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self.tb is not None:
            self.tb.close()


class ProgressReporter:
    """A live progress bar (steps, return, steps/s) on a terminal; periodic lines elsewhere."""

    def __init__(self, total: int, start: int, console: Console, enabled: bool = True) -> None:
        self.total, self.console, self.enabled = total, console, enabled
        self._bar: Progress | None = None
        self._last_line = 0.0
        if enabled and console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]train[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps  return {task.fields[ret]}  {task.fields[sps]} steps/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self._task = self._bar.add_task("train", total=total, completed=start, ret="-", sps="-")
            self._bar.start()

    def update(self, env_steps: int, ret: float, sps: float, done: bool = False) -> None:
        if not self.enabled:
            return
        r = "-" if math.isnan(ret) else f"{ret:.1f}"
        if self._bar is not None:
            self._bar.update(self._task, completed=env_steps, ret=r, sps=f"{sps:.0f}")
            return
        now = time.monotonic()
        if done or now - self._last_line >= 10.0:
            self._last_line = now
            self.console.print(
                f"train: {env_steps}/{self.total} steps  return {r}  {sps:.0f} steps/s",
                soft_wrap=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
