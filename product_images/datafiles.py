"""Reading the project's YAML data files (platform specs, segmenter specs) so that every
mistake names the file, and the field or line, it is in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from product_images.errors import SpecError

__all__ = ["describe_validation", "read_mapping"]

# libyaml's loader when present: the pure-Python one costs ~60 ms for the built-in specs.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_mapping(path: Path) -> tuple[dict[str, Any], bytes]:
    """The YAML mapping in `path` and the raw bytes it was read from."""
    raw = path.read_bytes()
    try:
        data = yaml.load(raw, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not valid YAML: {_yaml_problem(exc, raw)}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: expected a mapping at the top level")
    if "name" in data and data["name"] != path.stem:
        raise SpecError(f"{path.name}: name: {data['name']!r} must match the file name")
    return data, raw


def describe_validation(error: ValidationError) -> str:
    """Every problem pydantic found, as `field.path: message`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _yaml_problem(error: yaml.YAMLError, raw: bytes) -> str:
    """The parser's message plus the line it points at (libyaml does not quote it)."""
    mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
    if mark is None:
        return str(error)
    lines = raw.decode("utf-8", "replace").splitlines()
    quoted = lines[mark.line].strip() if mark.line < len(lines) else ""
    return f"{error} (line {mark.line + 1}: {quoted!r})"
