"""A notice as PDF (WeasyPrint) and as PNG (the PDF's pages drawn by PDFium).

The PNG is a picture of the PDF, not a second rendering of the HTML: pypdfium2 ships
PDFium in its wheel (no system package), and what a reviewer sees in the PNG is what the
PDF holds. WeasyPrint needs Pango (Debian: ``libpango-1.0-0 libpangoft2-1.0-0``) and a
font; both come with the ``notices`` extra's instructions in the README.

The PDF fetches nothing from the network or the disk: a template may reference only the
files of its own set (a logo, a stylesheet), served from the bytes that were hashed.
"""

from __future__ import annotations

import io
import mimetypes
from typing import Any
from urllib.parse import unquote, urlsplit

from expound.notices.compose import Notice
from expound.notices.errors import NoticeError
from expound.notices.templates import TemplateSet

# Where a notice's relative references point: a host that never resolves (.invalid,
# RFC 2606), served by the fetcher below from the template set's own files.
_BASE_URL = "https://templates.expound.invalid/"
# 2x the PDF's 96 dpi CSS pixels: legible print-like pages.
PNG_SCALE = 2.0
_PAGE_GAP = 16


def _imports() -> tuple[Any, Any]:
    try:
        import pypdfium2
        import weasyprint
    except (ImportError, OSError) as error:
        raise NoticeError(
            f"PDF and PNG notices need WeasyPrint (with Pango) and pypdfium2: "
            f"pip install 'expound[notices]' ({error})"
        ) from error
    return weasyprint, pypdfium2


def _fetcher(weasyprint: Any, templates: TemplateSet) -> Any:
    class TemplateFiles(weasyprint.URLFetcher):  # type: ignore[misc]
        """Serves the template set's own files; refuses everything else."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            name = unquote(urlsplit(url).path).lstrip("/")
            if not url.startswith(_BASE_URL) or name not in templates.files:
                raise ValueError(f"notices fetch only their template set's files, not {url}")
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return weasyprint.urls.URLFetcherResponse(
                url, templates.files[name], {"Content-Type": mime}
            )

    return TemplateFiles()


def notice_pdf(notice: Notice, templates: TemplateSet) -> bytes:
    """The notice as a PDF, its provenance in the document information (``expound*`` keys).

    Raises:
        NoticeError: If WeasyPrint is not installed or cannot run.
    """
    weasyprint, _ = _imports()
    document = weasyprint.HTML(
        string=notice.html, base_url=_BASE_URL, url_fetcher=_fetcher(weasyprint, templates)
    ).render()
    document.metadata.custom.update(
        {f"expound-{key}": value for key, value in notice.provenance.as_dict().items()}
    )
    document.metadata.generator = "expound notices"
    pdf: bytes = document.write_pdf(custom_metadata=True, pdf_tags=True)
    return pdf


def pdf_png(pdf: bytes, scale: float = PNG_SCALE) -> bytes:
    """Every page of ``pdf`` drawn one under another, as one PNG.

    Raises:
        NoticeError: If pypdfium2 is not installed.
    """
    _, pypdfium2 = _imports()
    from PIL import Image

    document = pypdfium2.PdfDocument(pdf)
    try:
        pages = [page.render(scale=scale).to_pil().convert("RGB") for page in document]
    finally:
        document.close()
    width = max(page.width for page in pages)
    height = sum(page.height for page in pages) + _PAGE_GAP * (len(pages) - 1)
    sheet = Image.new("RGB", (width, height), "#d0d0d0")
    top = 0
    for page in pages:
        sheet.paste(page, (0, top))
        top += page.height + _PAGE_GAP
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()
