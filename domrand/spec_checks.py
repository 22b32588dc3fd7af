"""Checks shared by the spec parser: numbers, pairs, keys, modes and periods, each raising a
``SpecError`` that names the file, the key path, the value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from domrand.errors import SpecKeyError, SpecTypeError, SpecValueError, did_you_mean
from domrand.spec_model import Every, Mode

__all__ = ["MAX_EXACT_INT", "Ctx"]

#: Integers up to this magnitude stay ints in a choice (exact as floats); larger ones become floats.
MAX_EXACT_INT = 2**53


def _yaml_number_hint(v: Any) -> str:
    """YAML 1.1 reads ``1e-3`` (no dot) as text: say how to write the number instead."""
    if not isinstance(v, str):
        return ""
    try:
        x = float(v)
    except ValueError:
        return ""
    if not math.isfinite(x):
        return ""
    mantissa, e, exponent = repr(x).partition("e")
    if e:  # YAML 1.1 floats need a dot in the mantissa and a sign in the exponent
        mantissa += "" if "." in mantissa else ".0"
        exponent = exponent if exponent[0] in "+-" else "+" + exponent
    return f" (YAML reads {v} as text: write {mantissa}{e}{exponent})"


class Ctx:
    """Carries the file name so every error names it."""

    def __init__(self, file: str) -> None:
        self.file = file

    def number(self, v: Any, path: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecTypeError(
                "expected a number",
                file=self.file,
                path=path,
                value=v,
                allowed="a finite int or float" + _yaml_number_hint(v),
            )
        try:
            f = float(v)
        except OverflowError:  # an int beyond the float range (YAML and JSON allow them)
            f = math.inf
        if not math.isfinite(f):
            raise SpecValueError(
                "number is not finite",
                file=self.file,
                path=path,
                value=v,
                allowed="a finite int or float",
            )
        return f

    def pair(self, v: Any, path: str) -> tuple[float, float]:
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise SpecTypeError(
                "expected a [low, high] pair",
                file=self.file,
                path=path,
                value=v,
                allowed="a list of two numbers",
            )
        lo = self.number(v[0], f"{path}[0]")
        hi = self.number(v[1], f"{path}[1]")
        if lo > hi:
            raise SpecValueError(
                "low > high", file=self.file, path=path, value=v, allowed="low <= high"
            )
        return lo, hi

    def keys(self, d: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for k in d:
            if not isinstance(k, str) or k not in allowed:
                raise SpecKeyError(
                    f"unknown key {k!r}{did_you_mean(str(k), allowed)}",
                    file=self.file,
                    path=f"{path}.{k}" if path else str(k),
                    show_value=False,
                    allowed=", ".join(allowed),
                )

    def require(self, d: Mapping[str, Any], keys: tuple[str, ...], path: str, what: str) -> None:
        for k in keys:
            if k not in d:
                raise SpecKeyError(
                    f"missing key {k!r} for {what}",
                    file=self.file,
                    path=path,
                    show_value=False,
                    allowed=f"{what} needs {', '.join(keys)}",
                )

    def mode(self, v: Any, path: str) -> Mode:
        try:
            return Mode(v)
        except ValueError:
            allowed = [m.value for m in Mode]
            raise SpecValueError(
                f"unknown mode{did_you_mean(str(v), allowed)}",
                file=self.file,
                path=path,
                value=v,
                allowed=", ".join(allowed),
            ) from None

    def every(self, v: Any, path: str) -> Every:
        if v == "episode":
            return Every(0)
        if v == "step":
            return Every(1)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            return Every(v)
        raise SpecValueError(
            "bad re-draw period",
            file=self.file,
            path=path,
            value=v,
            allowed="'episode', 'step', or an integer N >= 1",
        )
