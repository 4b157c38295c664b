"""Reading the project's YAML data files (platform specs, segmenter specs, generative model
catalogues) so that every mistake names the file, and the field or line, it is in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from product_images.errors import ProductImagesError, SpecError

__all__ = [
    "describe_validation",
    "load_folders",
    "package_folder",
    "parse_mapping",
    "read_mapping",
]

T = TypeVar("T")

# libyaml's loader when present: the pure-Python one costs ~60 ms for the built-in specs.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def package_folder(package: str, folder: str = "") -> Path:
    """A folder of data files shipped inside `package`, found through importlib.resources so an
    installed wheel (not only a checkout) has it. Wheels install unzipped, so it is a real path."""
    return Path(str(resources.files(package).joinpath(folder)))


def read_mapping(path: Path) -> tuple[dict[str, Any], bytes]:
    """The YAML mapping in `path` and the raw bytes it was read from."""
    raw = path.read_bytes()
    data = parse_mapping(raw, path.name)
    if "name" in data and data["name"] != path.stem:
        raise SpecError(f"{path.name}: name: {data['name']!r} must match the file name")
    return data, raw


def parse_mapping(
    raw: bytes, filename: str, error: type[ProductImagesError] = SpecError
) -> dict[str, Any]:
    """The YAML mapping in `raw`; problems raise `error` naming `filename` and the line."""
    try:
        data = yaml.load(raw, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise error(f"{filename}: not valid YAML: {_yaml_problem(exc, raw)}") from exc
    if not isinstance(data, dict):
        raise error(f"{filename}: expected a mapping at the top level")
    return data


def load_folders(dirs: Iterable[Path], load: Callable[[Path], T], what: str) -> dict[str, T]:
    """Every YAML file in `dirs`, loaded and named by its file's stem; a later directory
    overrides an earlier one by name (a user's folder over the built-ins)."""
    found: dict[str, T] = {}
    for directory in dirs:
        if not directory.is_dir():
            raise SpecError(f"{directory}: {what} directory does not exist")
        for path in sorted(directory.glob("*.y*ml")):
            found[path.stem] = load(path)
    return found


def describe_validation(error: ValidationError) -> str:
    """Every problem pydantic found, as `field.path: message`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)  # whole-file checks say where
    return "; ".join(parts)


def _yaml_problem(error: yaml.YAMLError, raw: bytes) -> str:
    """The parser's message plus the line it points at (libyaml does not quote it)."""
    mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
    if mark is None:
        return str(error)
    lines = raw.decode("utf-8", "replace").splitlines()
    quoted = lines[mark.line].strip() if mark.line < len(lines) else ""
    return f"{error} (line {mark.line + 1}: {quoted!r})"
