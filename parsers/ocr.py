"""OCR of scanned PDF pages with Tesseract (Debian ``tesseract-ocr`` + ``chi-sim``/``deu``/``eng`` data).

A page without a text layer is rendered with pdfium (pdfplumber's own renderer) at 300 dpi; Tesseract's
orientation detection (OSD) says how the scan is rotated, the image is turned upright and read with the
installed languages among ``eng+deu+chi_sim``. Words come back in PDF points, like a text layer's, with
Tesseract's word confidence; the page's mean confidence scales every value read from it.

When the ``tesseract`` binary or the ``pytesseract`` package is missing, :func:`ocr_available` is False and
the parser reports the page in ``needs_ocr_pages`` instead (the set-up script installs both).
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from typing import Any

from parsers.pdf_text import Word

__all__ = ["OcrPage", "ocr_available", "ocr_image"]

DPI = 300
_WANTED = ("eng", "deu", "chi_sim")


class OcrPage:
    """Words of one OCR'd page (PDF points) and the page's mean word confidence (0..1)."""

    def __init__(self, words: list[Word], confidence: float, rotation: int) -> None:
        self.words = words
        self.confidence = confidence
        self.rotation = rotation


@lru_cache(maxsize=1)
def _languages() -> str | None:
    if shutil.which("tesseract") is None:
        return None
    try:
        import pytesseract
    except ImportError:
        return None
    try:
        have = set(pytesseract.get_languages(config=""))
    except Exception:  # a broken tesseract install: treat as unavailable
        return None
    langs = [lang for lang in _WANTED if lang in have]
    return "+".join(langs) if langs else None


def ocr_available() -> bool:
    """True when Tesseract and at least one of the wanted languages are installed."""
    return _languages() is not None


def _rotation(image: Any) -> int:
    import pytesseract

    try:
        osd = pytesseract.image_to_osd(image, output_type=pytesseract.Output.DICT, config="--psm 0")
    except Exception:  # OSD fails on pages with too little text: keep the page as it is
        return 0
    return int(osd.get("rotate", 0)) % 360


def ocr_image(image: Any, *, page_width: float, page_height: float, timeout: float = 60.0) -> OcrPage:
    """Read a rendered page image; coordinates are scaled back to a ``page_width`` x ``page_height`` page."""
    import pytesseract

    langs = _languages()
    if langs is None:
        raise RuntimeError("Tesseract is not installed")
    rotation = _rotation(image)
    if rotation:
        # OSD's "rotate" is the clockwise turn that makes the page upright; PIL rotates counter-clockwise
        image = image.rotate(-rotation, expand=True)
        if rotation in (90, 270):
            page_width, page_height = page_height, page_width
    data = pytesseract.image_to_data(
        image, lang=langs, config="--psm 6", output_type=pytesseract.Output.DICT, timeout=timeout
    )
    sx = page_width / image.width
    sy = page_height / image.height
    words: list[Word] = []
    confs: list[float] = []
    for i, text in enumerate(data["text"]):
        t = (text or "").strip()
        conf = float(data["conf"][i])
        if not t or conf < 0:
            continue
        x, y, w, h = data["left"][i], data["top"][i], data["width"][i], data["height"][i]
        words.append(Word(t, x * sx, y * sy, (x + w) * sx, (y + h) * sy, True))
        confs.append(conf / 100.0)
    mean = sum(confs) / len(confs) if confs else 0.0
    return OcrPage(words, round(mean, 3), rotation)
