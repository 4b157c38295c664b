"""Small previews of a product's images, for places that show many at once (Prefect UI).

A master is 2048 px and ~2 MB: a browser asked to show it in a run's artifact fetches it
whole and the page clips it. A thumbnail is a 200 px JPEG of a few tens of KB, stored once
per master content under `_thumbs/<sku>/<variant>-<sha12>.jpg`: no SKU starts with '_', and
`gc` never considers a key without a `.<sha12>.` part, so thumbnails are neither products
nor orphans. The same master (a rerun) reuses its thumbnail.
"""

from __future__ import annotations

import io

from PIL import Image

from product_images.imaging.encode import SRGB_ICC
from product_images.manifest import MasterRecord, OutputRecord
from product_images.store import Store, layout

__all__ = ["THUMBNAIL_SIDE", "ensure_thumbnail", "thumbnail", "thumbnail_key"]

#: Longest side: a product's three masters side by side fit the UI's artifact pane.
THUMBNAIL_SIDE = 200


def thumbnail_key(sku: str, record: MasterRecord | OutputRecord) -> str:
    """Where the thumbnail of a master or output lives; it changes when its content does."""
    name = (
        _master_name(record)
        if isinstance(record, MasterRecord)
        else f"{record.platform}-{record.slot}"
    )
    return layout.thumbnail_key(sku, name, record.sha256)


def _master_name(record: MasterRecord) -> str:
    """white, white-<shadow look>, detail-4x5, detail-2...: one name per take of a variant."""
    name = f"{record.variant}-{record.look}" if record.look else record.variant
    return f"{name}-{record.rank + 1}" if record.rank else name


def thumbnail(data: bytes, side: int = THUMBNAIL_SIDE) -> bytes:
    """An sRGB JPEG at most `side` px on its long side; transparency flattened on white."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (side, side))  # JPEG sources decode at 1/2..1/8 scale
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    buffer = io.BytesIO()
    flat.save(buffer, "JPEG", quality=82, icc_profile=SRGB_ICC)
    return buffer.getvalue()


def ensure_thumbnail(store: Store, sku: str, record: MasterRecord | OutputRecord) -> str:
    """The thumbnail's key, made from the stored image when it does not exist yet."""
    key = thumbnail_key(sku, record)
    if not store.exists(key):
        store.put(key, thumbnail(store.get(record.key)), "image/jpeg")
    return key
