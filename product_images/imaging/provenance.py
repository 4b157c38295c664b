"""AI provenance: the IPTC DigitalSourceType that says how far a generative model made an image.

Per output, from how its master was made (IPTC NewsCodes, digitalsourcetype):
- `trainedAlgorithmicMedia`: the model drew the image, product included (a generated scene,
  detail, or a white master cut from a generated image). Google Merchant Center requires it
  on AI-generated product images.
- `compositeWithTrainedAlgorithmicMedia`: the real product photo (our cut-out, its own
  pixels) combined with generated parts (a generated backdrop).
- nothing: every pixel comes from the photo and local, non-generative processing.
"""

from __future__ import annotations

import io

from PIL import Image

__all__ = [
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "TRAINED_ALGORITHMIC_MEDIA",
    "ai_provenance_xmp",
    "digital_source_type",
]

_NEWSCODES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = _NEWSCODES + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = _NEWSCODES + "compositeWithTrainedAlgorithmicMedia"


def ai_provenance_xmp(model: str, source_type: str = TRAINED_ALGORITHMIC_MEDIA) -> bytes:
    """An XMP packet declaring the image's DigitalSourceType, made with `model`."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f' Iptc4xmpExt:DigitalSourceType="{_escape(source_type)}"'
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
