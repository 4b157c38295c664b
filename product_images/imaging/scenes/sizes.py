"""How big a product really is, from its name or category: `sizes.yaml`, validated."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

from product_images.datafiles import package_folder
from product_images.errors import SpecError

__all__ = ["SIZES_FILE", "SizeTable", "load_sizes", "real_size_cm"]

SIZES_FILE = package_folder("product_images.imaging.scenes") / "sizes.yaml"


class SizeTable(BaseModel):
    """Longest side in centimetres by keyword, and the size when no keyword matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: float = Field(gt=0, le=1000)
    sizes: dict[str, PositiveFloat] = Field(description="keyword (lower case) -> cm")

    def size_of(self, *texts: str) -> float:
        """The size for the first text that names a known keyword."""
        for text in texts:
            words = text.lower()
            for keyword, size in self.sizes.items():
                if keyword in words:
                    return size
        return self.default


@lru_cache(maxsize=4)
def load_sizes(path: Path = SIZES_FILE) -> SizeTable:
    """The size table; errors name the file and the field."""
    try:
        return SizeTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as error:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise SpecError(f"{path.name}: {where}") from error


def real_size_cm(name: str, category: str) -> float:
    """The product's longest side in cm, as its name or else its category suggests."""
    return load_sizes().size_of(name, category)
