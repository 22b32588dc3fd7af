"""Reading and writing spec files safely (YAML with a safe loader, or JSON).

Refuses what a hand-edited file should never contain: duplicate keys, non-UTF-8 bytes, huge files,
alias bombs. Every failure is a ``SpecFileError`` or ``SpecSyntaxError`` naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from domrand.errors import SpecFileError, SpecSyntaxError
from domrand.fsutil import atomic_write_text

__all__ = ["MAX_SPEC_BYTES", "atomic_write_text", "dump_mapping", "read_mapping"]

MAX_SPEC_BYTES = 4 * 1024 * 1024
_MAX_EXPANDED_NODES = 100_000


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, alias bombs and documents of too many nodes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # Counted while parsing, so a 4 MB list of numbers stops after the limit, not minutes
        # of pure-Python parsing later.
        self._composed += 1
        if self._composed > _MAX_EXPANDED_NODES:
            raise SpecSyntaxError(
                "document has too many values",
                show_value=False,
                allowed=f"at most {_MAX_EXPANDED_NODES} nodes",
            )
        return super().compose_node(parent, index)  # type: ignore[no-untyped-call]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # SafeLoader's constructors let plain Python errors escape for values they cannot build
        # (``2024-13-45`` as a date, ``!!float abc``, an int of 5000 digits...): name the node.
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[no-untyped-call]
        except (yaml.YAMLError, SpecSyntaxError, RecursionError, MemoryError):
            raise
        except Exception as e:  # ValueError, IndexError ('!!float '), AttributeError...
            tag = str(node.tag).rsplit(":", 1)[-1]
            text = f" {_clip(repr(node.value))}" if isinstance(node, yaml.ScalarNode) else ""
            why = _clip(str(e)) if isinstance(e, (ValueError, ArithmeticError)) else "malformed"
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read{text} as {tag} ({why})", node.start_mark
            ) from None


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        try:
            hash(key)
        except TypeError:
            raise SpecSyntaxError(
                f"mapping key at line {key_node.start_mark.line + 1} is not a scalar",
                show_value=False,
                allowed="plain keys such as 'pole.mass'",
            ) from None
        if key in out:
            raise SpecSyntaxError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1}",
                show_value=False,
                allowed="each key once",
            )
        out[key] = loader.construct_object(value_node, deep=deep)  # type: ignore[no-untyped-call]
    return out


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Number of nodes after alias expansion, memoized so a bomb is counted, not expanded."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # guards against recursive aliases
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[key] = size
    return size


def _parse_yaml(text: str, file: str) -> Any:
    loader = None
    try:
        loader = _StrictLoader(text)  # its reader raises on control characters
        node = loader.get_single_node()
        if node is None:  # only comments or document markers
            raise SpecFileError(
                "file holds no document (only comments?)",
                file=file,
                show_value=False,
                allowed="a mapping with a 'parameters' key",
            )
        if _expanded_size(node, {}) > _MAX_EXPANDED_NODES:
            raise SpecSyntaxError(
                "document expands to too many nodes (YAML alias bomb?)",
                file=file,
                show_value=False,
                allowed=f"at most {_MAX_EXPANDED_NODES} nodes after alias expansion",
            )
        return loader.construct_document(node)
    except SpecSyntaxError as e:
        raise e.located(file) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        context = getattr(e, "context", None)
        if context and problem.startswith("but "):  # "expected a single document..., but..."
            problem = f"{context}, {problem}"
        raise SpecSyntaxError(
            f"not valid YAML{where}: {problem}", file=file, show_value=False
        ) from None
    except RecursionError:
        raise SpecSyntaxError("document nests too deeply", file=file, show_value=False) from None
    finally:
        if loader is not None:
            loader.dispose()


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise SpecSyntaxError(f"duplicate key {k!r}", show_value=False, allowed="each key once")
        out[k] = v
    return out


def _parse_json(text: str, file: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except SpecSyntaxError as e:
        raise e.located(file) from None
    except json.JSONDecodeError as e:
        raise SpecSyntaxError(
            f"not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
            file=file,
            show_value=False,
        ) from None
    except ValueError as e:  # e.g. an integer literal of more than 4300 digits
        raise SpecSyntaxError(
            f"not valid JSON: {_clip(str(e))}", file=file, show_value=False
        ) from None
    except RecursionError:
        raise SpecSyntaxError("document nests too deeply", file=file, show_value=False) from None


def read_mapping(path: str | os.PathLike[str]) -> Any:
    """Read and parse a spec file (``.json`` as JSON, anything else as YAML).

    Returns the parsed document (the caller checks that it is a mapping).

    Raises:
        SpecFileError: missing, unreadable, too large, empty, or not UTF-8.
        SpecSyntaxError: not parseable, duplicate keys, alias bombs.
    """
    p = Path(path)
    file = str(p)
    try:
        size = p.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecFileError(
                "file too large", file=file, value=size, allowed=f"at most {MAX_SPEC_BYTES} bytes"
            )
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SpecFileError("no such file", file=file, show_value=False) from None
    except IsADirectoryError:
        raise SpecFileError(
            "is a directory, not a spec file", file=file, show_value=False
        ) from None
    except OSError as e:
        raise SpecFileError(f"cannot read: {e.strerror}", file=file, show_value=False) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecFileError(
            f"not UTF-8 text (bad byte at offset {e.start})", file=file, show_value=False
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise SpecFileError(
            "file is empty",
            file=file,
            show_value=False,
            allowed="a mapping with a 'parameters' key",
        )
    if "\x00" in text:
        raise SpecFileError("file contains NUL bytes", file=file, show_value=False)
    if p.suffix.lower() == ".json":
        return _parse_json(text, file)
    return _parse_yaml(text, file)


def dump_mapping(data: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``data`` as JSON (``.json``) or YAML (anything else), atomically."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    atomic_write_text(p, text)
