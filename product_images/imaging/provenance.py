"""AI provenance: the IPTC DigitalSourceType that marks an image as made by a generative model.

Google Merchant Center requires `trainedAlgorithmicMedia` on AI-generated product images;
we put it on every output derived from a generated master, and on none of the others.
"""

from __future__ import annotations

import io

from PIL import Image

__all__ = ["TRAINED_ALGORITHMIC_MEDIA", "ai_provenance_xmp", "digital_source_type"]

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def ai_provenance_xmp(model: str) -> bytes:
    """An XMP packet declaring the image as trained-algorithmic media made with `model`."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f' Iptc4xmpExt:DigitalSourceType="{TRAINED_ALGORITHMIC_MEDIA}"'
        f' xmp:CreatorTool="product-images with {_escape(model)}"/>'
        "</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def digital_source_type(data: bytes) -> str | None:
    """The DigitalSourceType an encoded image declares, if any."""
    with Image.open(io.BytesIO(data)) as image:
        xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp)
    marker = 'DigitalSourceType="'
    start = text.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return text[start : text.find('"', start)]
