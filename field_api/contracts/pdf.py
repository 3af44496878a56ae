"""The connection contract as a PDF with Chinese text, rendered from a YAML template.

The document is a pure function of :class:`ContractData` (and the optional customer
signature mark): reportlab runs with ``invariant=1`` and the creation date comes from the
record, so the same inputs give the same bytes and the document's sha256 is reproducible —
the signed record (``signing.py``) relies on that.

Chinese glyphs need an embedded TrueType font: reportlab cannot embed CFF (OpenType/PS)
fonts such as Noto CJK, so we use WenQuanYi Zen Hei (Debian ``fonts-wqy-zenhei``), a
TrueType collection registered with ``subfontIndex=0`` and subset into the PDF.

Without that font (a fresh machine where ``make run`` could not install the package) the
contract is still produced with ReportLab's standard CJK CID font ``STSong-Light``: it is not
embedded (the reader's own CJK font draws it), the document's /Keywords say so
(``font: STSong-Light (not embedded)``) and :func:`warn_if_font_fallback` logs a warning at
start-up. A font path configured explicitly must work: a missing or broken one is an error.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import Environment, StrictUndefined
from PIL import Image as PILImage
from pydantic import BaseModel, ConfigDict, Field, field_validator
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT_PACKAGE = "fonts-wqy-zenhei"
# Where distributions put WenQuanYi Zen Hei; the first existing path wins.
KNOWN_FONT_PATHS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # Debian, Ubuntu
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),  # Fedora, Arch
    Path("/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc"),  # Gentoo
    Path("/usr/local/share/fonts/wqy-zenhei.ttc"),
)
# The standard CJK CID font every PDF reader provides: used, not embedded, when no TrueType
# CJK font is installed; the document's /Keywords name it.
FALLBACK_FONT = "STSong-Light"
FALLBACK_KEYWORD = f"font: {FALLBACK_FONT} (not embedded)"
TEMPLATE_PATH = Path(__file__).with_name("contract_template_zh.yaml")
SIGNATURE_WIDTH_MM = 50.0
SIGNATURE_MAX_HEIGHT_MM = 22.0
# A drawn signature is a small canvas; anything larger is refused before decoding it fully.
SIGNATURE_MAX_PIXELS = 4_000_000

# The categories of field_api.work_orders.rules.Category (kept as plain strings: no DB import).
Category = Literal["residential", "small_micro_enterprise", "other_low_voltage"]
Metering = Literal["direct", "ct"]

_CATEGORY_LABELS: dict[str, str] = {
    "residential": "居民生活用电",
    "small_micro_enterprise": "小微企业低压用电（一般工商业）",
    "other_low_voltage": "低压非居民用电",
}
_METERING_LABELS: dict[str, str] = {"direct": "直接接入式", "ct": "经电流互感器接入"}
_registration_lock = threading.Lock()
logger = logging.getLogger(__name__)


class CjkFontMissingError(RuntimeError):
    """No usable CJK TrueType font: the message names the package to install."""


class ContractData(BaseModel):
    """Everything printed on the contract: the order's data and its accepted scheme."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_no: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    generated_at: datetime
    supplier_name: str = Field(min_length=1, max_length=200)
    customer_name: str = Field(min_length=1, max_length=100)
    customer_id_number: str | None = Field(default=None, max_length=32)
    customer_phone: str | None = Field(default=None, max_length=32)
    address: str = Field(min_length=1, max_length=300)
    district: str | None = Field(default=None, max_length=100)
    category: Category
    capacity_kw: Decimal = Field(gt=0, max_digits=9, decimal_places=2)
    phases: Literal[1, 3]
    supply_point: str = Field(min_length=1, max_length=300)
    cable: str = Field(min_length=1, max_length=200)
    breaker: str = Field(min_length=1, max_length=200)
    meter: str = Field(min_length=1, max_length=200)
    metering: Metering
    kit_code: str = Field(min_length=1, max_length=64)
    route_length_m: Decimal = Field(ge=0, max_digits=9, decimal_places=1)
    property_boundary: str = Field(default="用电方计量箱出线端", min_length=1, max_length=200)
    terms: tuple[str, ...] = ()

    @field_validator("generated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # A naive time would print differently depending on the server's zone.
        if value.tzinfo is None:
            raise ValueError("generated_at must carry a time zone")
        return value


class SignatureMark(BaseModel):
    """The customer's drawn signature, printed in the signature block of the final document."""

    model_config = ConfigDict(frozen=True)

    image: bytes
    signed_at: datetime


def find_cjk_font(configured: Path | None = None) -> Path:
    """Return the CJK font file: the configured path, else the first known system location.

    Raises:
        CjkFontMissingError: the configured file is missing, or none of the known paths exists.
    """
    if configured is not None:
        if configured.is_file():
            return configured
        raise CjkFontMissingError(
            f"contract font {configured} does not exist; install the Debian package "
            f"{FONT_PACKAGE} or point the font setting at a TrueType CJK font (.ttf/.ttc)"
        )
    for candidate in KNOWN_FONT_PATHS:
        if candidate.is_file():
            return candidate
    raise CjkFontMissingError(
        f"no CJK TrueType font found (looked in {', '.join(map(str, KNOWN_FONT_PATHS))}); "
        f"install it with `apt-get install {FONT_PACKAGE}` or set the contract font path"
    )


@lru_cache(maxsize=4)
def _register_font(path: Path) -> str:
    name = f"FieldopsCJK{len(pdfmetrics.getRegisteredFontNames())}"
    try:
        font = TTFont(name, str(path), subfontIndex=0)
    except Exception as exc:  # reportlab raises bare TTFError/OSError variants
        raise CjkFontMissingError(
            f"{path} is not a usable TrueType font ({exc}); install {FONT_PACKAGE}"
        ) from exc
    pdfmetrics.registerFont(font)
    return name


def register_cjk_font(path: Path) -> str:
    """Register the font with reportlab once per path and return its reportlab name."""
    with _registration_lock:
        return _register_font(path.resolve())


@dataclass(frozen=True)
class ContractFont:
    """The font a contract is drawn with: reportlab's name and whether the PDF embeds it."""

    name: str
    embedded: bool


def _register_fallback() -> str:
    with _registration_lock:
        if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
            try:
                pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
            except Exception as exc:  # reportlab's CID data missing or unreadable
                raise CjkFontMissingError(
                    f"no CJK TrueType font and the fallback {FALLBACK_FONT} is unusable "
                    f"({exc}); install it with `apt-get install {FONT_PACKAGE}`"
                ) from exc
    return FALLBACK_FONT


def contract_font(configured: Path | None = None) -> ContractFont:
    """The font to draw with: the configured TrueType font, else the first known system one,
    else the non-embedded ``STSong-Light`` fallback.

    Raises:
        CjkFontMissingError: the configured font is missing or unusable, or the fallback is.
    """
    if configured is not None:
        return ContractFont(register_cjk_font(find_cjk_font(configured)), embedded=True)
    try:
        path = find_cjk_font(None)
    except CjkFontMissingError:
        return ContractFont(_register_fallback(), embedded=False)
    return ContractFont(register_cjk_font(path), embedded=True)


def warn_if_font_fallback(configured: Path | None = None) -> bool:
    """Log one warning when contracts will not carry an embedded CJK font (call at start-up).

    Returns whether a warning was logged: the configured font is missing (contracts answer
    503 until it is fixed) or no TrueType CJK font is installed (the fallback is used).
    """
    try:
        find_cjk_font(configured)
    except CjkFontMissingError as exc:
        if configured is not None:
            logger.warning("contracts cannot be generated: %s", exc)
        else:
            logger.warning(
                "no CJK TrueType font installed: contracts use the standard PDF font %s, not "
                "embedded (readers draw it with their own CJK font); install the Debian "
                "package %s for embedded, self-contained contracts",
                FALLBACK_FONT,
                FONT_PACKAGE,
            )
        return True
    return False


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    """The contract template (parsed once; the file ships with the package)."""
    with TEMPLATE_PATH.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise ValueError(f"{TEMPLATE_PATH} is not a mapping")
    result: dict[str, Any] = _unfold(loaded)
    return result


# YAML's folded scalars join lines with a space; between two Chinese characters that space
# is a visible gap, so it is removed (a space next to Latin text or digits is kept).
_FOLD_GAP = re.compile(r"(?<=[^\x00-\x7f]) (?=[^\x00-\x7f])")


def _unfold(value: Any) -> Any:
    if isinstance(value, str):
        return _FOLD_GAP.sub("", value)
    if isinstance(value, list):
        return [_unfold(item) for item in value]
    if isinstance(value, dict):
        return {key: _unfold(item) for key, item in value.items()}
    return value


def _decimal_label(value: Decimal) -> str:
    # 8.00 → "8", 12.50 → "12.5": the contract shows the number the customer asked for.
    text = format(value.normalize(), "f")
    return text


def _context(data: ContractData, signature: SignatureMark | None) -> dict[str, Any]:
    context: dict[str, Any] = data.model_dump()
    context.update(
        category_label=_CATEGORY_LABELS[data.category],
        metering_label=_METERING_LABELS[data.metering],
        phases_label="单相" if data.phases == 1 else "三相",
        voltage_label="220 V" if data.phases == 1 else "380 V",
        capacity_label=f"{_decimal_label(data.capacity_kw)} kW",
        route_length_label=f"{_decimal_label(data.route_length_m)} m",
        signed_at_label=(
            signature.signed_at.strftime("%Y-%m-%d %H:%M:%S %z") if signature is not None else ""
        ),
    )
    return context


def _title_key(data: ContractData) -> str:
    return "residential" if data.category == "residential" else "non_residential"


def _signature_image(raw: bytes) -> Image:
    """Flatten the drawn signature onto white so transparency renders the same everywhere."""
    try:
        with PILImage.open(io.BytesIO(raw)) as opened:
            width, height = opened.size
            if width * height > SIGNATURE_MAX_PIXELS or width < 1 or height < 1:
                raise ValueError(f"signature image is {width}×{height} pixels; too large")
            rgba = opened.convert("RGBA")
    except (OSError, PILImage.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"signature image cannot be read: {exc}") from exc
    flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    buffer = io.BytesIO()
    flat.save(buffer, format="PNG", optimize=False)
    buffer.seek(0)
    draw_width = SIGNATURE_WIDTH_MM * mm
    draw_height = min(draw_width * height / width, SIGNATURE_MAX_HEIGHT_MM * mm)
    return Image(buffer, width=draw_height * width / height, height=draw_height)


def render_contract_pdf(
    data: ContractData,
    *,
    font_path: Path | None = None,
    signature: SignatureMark | None = None,
) -> bytes:
    """Render the contract; identical arguments give identical bytes.

    Args:
        data: the order's and scheme's values printed on the contract.
        font_path: a TrueType CJK font; ``None`` searches the known system locations and
            falls back to the non-embedded ``STSong-Light`` (named in /Keywords).
        signature: the customer's drawn signature for the final, signed document.

    Returns:
        The PDF document.

    Raises:
        CjkFontMissingError: the configured font is unusable, or the fallback is.
        ValueError: the signature image cannot be decoded.
    """
    chosen = contract_font(font_path)
    page = _Page(
        data=data,
        template=load_template(),
        env=Environment(undefined=StrictUndefined, autoescape=True),
        context=_context(data, signature),
        styles=_Styles.for_font(chosen.name),
    )
    story = [*page.opening(), *page.extra_terms(), *page.signatures(signature)]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=22 * mm,
        rightMargin=22 * mm,
        topMargin=20 * mm,
        bottomMargin=22 * mm,
        title=page.fill(page.template["title"][_title_key(data)]),
        author=data.supplier_name,
        subject=f"{data.contract_no} / {data.order_id}",
        creator="fieldops",
        producer="fieldops (ReportLab)",
        invariant=1,
        lang="zh-CN",
        # Only the fallback adds a keyword: documents with the embedded font keep their bytes.
        keywords=[] if chosen.embedded else [FALLBACK_KEYWORD],
    )
    pdf_date = _pdf_date(data.generated_at)
    on_page = page.footer()
    document.build(
        story,
        onFirstPage=on_page,
        onLaterPages=on_page,
        canvasmaker=_canvas_maker(pdf_date),
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class _Styles:
    """The contract's paragraph styles in one font."""

    font: str
    body: ParagraphStyle
    title: ParagraphStyle
    subtitle: ParagraphStyle
    heading: ParagraphStyle
    cell: ParagraphStyle

    @classmethod
    def for_font(cls, font: str) -> _Styles:
        body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=16, wordWrap="CJK")
        return cls(
            font=font,
            body=body,
            title=ParagraphStyle(
                "title", parent=body, fontSize=17, leading=24, alignment=1, spaceAfter=2
            ),
            subtitle=ParagraphStyle("subtitle", parent=body, alignment=1, spaceAfter=8),
            heading=ParagraphStyle(
                "heading", parent=body, fontSize=12, leading=20, spaceBefore=8
            ),
            cell=ParagraphStyle("cell", parent=body, fontSize=10, leading=14),
        )


@dataclass(frozen=True)
class _Page:
    """The contract's sections, filled from the template with the record's values."""

    data: ContractData
    template: dict[str, Any]
    env: Environment
    context: dict[str, Any]
    styles: _Styles

    def fill(self, text: str) -> str:
        # autoescape turns & < > into entities, which is exactly what reportlab's
        # paragraph markup needs for customer-typed values.
        return self.env.from_string(text).render(self.context)

    def table(self, rows: list[dict[str, str]]) -> Table:
        cell = self.styles.cell
        cells = [
            [Paragraph(self.fill(row["label"]), cell), Paragraph(self.fill(row["value"]), cell)]
            for row in rows
        ]
        result = Table(cells, colWidths=[42 * mm, 124 * mm])
        result.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                    ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ]
            )
        )
        return result

    def opening(self) -> list[Any]:
        """Title, preamble, the parties and parameters tables, and the numbered clauses."""
        template, styles, fill = self.template, self.styles, self.fill
        story: list[Any] = [
            Paragraph(fill(template["title"][_title_key(self.data)]), styles.title),
            Paragraph(fill(template["subtitle"]), styles.subtitle),
            Paragraph(fill(template["preamble"]), styles.body),
            Spacer(1, 4 * mm),
            self.table(template["parties"]),
            Paragraph(fill(template["parameters_heading"]), styles.heading),
            self.table(template["parameters"]),
            Paragraph(fill(template["clauses_heading"]), styles.heading),
        ]
        for number, clause in enumerate(template["clauses"], start=1):
            story.append(Paragraph(f"{number}. {fill(clause)}", styles.body))
        return story

    def extra_terms(self) -> list[Any]:
        """The scheme's extra terms, numbered, when it has any."""
        if not self.data.terms:
            return []
        story: list[Any] = [
            Paragraph(self.fill(self.template["extra_terms_heading"]), self.styles.heading)
        ]
        for number, term in enumerate(self.data.terms, start=1):
            # Terms are free text from the scheme: escape them, never evaluate them.
            text = self.env.from_string("{{ t }}").render(t=term)
            story.append(Paragraph(f"{number}. {text}", self.styles.body))
        return story

    def signatures(self, signature: SignatureMark | None) -> list[Any]:
        """The signature heading and the supplier's and customer's boxes side by side."""
        template, cell, fill = self.template, self.styles.cell, self.fill
        heading = Paragraph(fill(template["signature_heading"]), self.styles.heading)
        customer_cell: list[Any] = [Paragraph(fill(template["customer_sign_label"]), cell)]
        if signature is not None:
            customer_cell.append(_signature_image(signature.image))
            customer_cell.append(Paragraph(fill(template["signed_note"]), cell))
        else:
            customer_cell.append(Spacer(1, 14 * mm))
            customer_cell.append(Paragraph(fill(template["unsigned_note"]), cell))
        supplier_cell = [
            Paragraph(fill(template["supplier_sign_label"]), cell),
            Paragraph(fill("{{ supplier_name }}"), cell),
            Paragraph(self.data.generated_at.date().isoformat(), cell),
        ]
        boxes = Table([[supplier_cell, customer_cell]], colWidths=[83 * mm, 83 * mm])
        boxes.setStyle(
            TableStyle(
                [
                    ("BOX", (0, 0), (-1, -1), 0.5, colors.grey),
                    ("LINEBEFORE", (1, 0), (1, 0), 0.5, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return [heading, boxes]

    def footer(self) -> Callable[[Canvas, Any], None]:
        """The page callback drawing the footer (contract number, order, page)."""
        footer_template: str = self.template["footer"]
        font, data = self.styles.font, self.data

        def on_page(canvas: Canvas, _doc: Any) -> None:
            canvas.saveState()
            canvas.setFont(font, 8)
            footer = footer_template.format(
                contract_no=data.contract_no, order_id=data.order_id, page=canvas.getPageNumber()
            )
            canvas.drawCentredString(A4[0] / 2, 12 * mm, footer)
            canvas.restoreState()

        return on_page


def _pdf_date(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"D:{moment:%Y%m%d%H%M%S}{sign}{hours:02d}'{rest:02d}'"


def _canvas_maker(pdf_date: str) -> Callable[..., Canvas]:
    """A canvas whose CreationDate/ModDate is the record's time, not invariant's 2000-01-01."""

    def make(*args: Any, **kwargs: Any) -> Canvas:
        canvas = Canvas(*args, **kwargs)
        canvas.setDateFormatter(lambda *_parts: pdf_date)
        return canvas

    return make
