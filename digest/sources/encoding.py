"""Bytes to text for feeds and pages in any encoding, Korean sites' EUC-KR / CP949 included.

Korean sites often serve EUC-KR (really CP949, its superset) with no charset at all, or declare
one charset in the HTTP header and another in the document. The order here: a BOM, a forced
encoding from the config, UTF-8, the declared charsets (header, XML declaration, <meta>), CP949,
a Latin-1-family declaration, then charset-normalizer's guess; each must decode strictly. Text
that decodes under none of them is an error, never stored with replacement characters.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from digest.errors import SourceError

_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_CONTENT_TYPE_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# Invalid in XML 1.0 and never meaningful in text; tab, LF and CR are kept.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
# Names that mean CP949 in practice: EUC-KR pages routinely use CP949-only syllables (똠, 햏).
_KOREAN = {
    "euc-kr",
    "euckr",
    "ks_c_5601-1987",
    "ks_c_5601",
    "ksc5601",
    "x-windows-949",
    "cp949",
    "uhc",
    "windows-949",
    "ms949",
    "euc_kr",
}
# Latin-1 family declarations are frequently wrong (a default of the server, not the page).
_WEAK = {"iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252", "us-ascii", "ascii"}
# A run of characters UTF-8 turns into when its bytes are read as Windows-1252: "ì•ˆë…•".
# A lead byte (U+00C0-U+00FF) followed by continuation bytes as cp1252 shows them.
_CONT = "\u0080-\u00bf\u0152-\u0178\u02c6-\u02dc\u2013-\u203a\u20ac\u2122"
_MOJIBAKE_RUN = re.compile(f"[\u00c0-\u00ff][{_CONT}]+(?:[\u00c0-\u00ff][{_CONT}]+)*")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A numeric character reference; `safe_charrefs` replaces those no character can stand for.
_CHARREF = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


def charset_from_content_type(content_type: str) -> str:
    match = _CONTENT_TYPE_CHARSET.search(content_type or "")
    return match.group(1) if match else ""


def declared_charsets(data: bytes, content_type: str = "") -> list[str]:
    """Charsets the response claims, strongest first: HTTP header, XML declaration, <meta>."""
    found: list[str] = []
    header = charset_from_content_type(content_type)
    if header:
        found.append(header)
    head = data[:4096]
    for pattern in (_XML_DECL, _META):
        match = pattern.search(head)
        if match:
            found.append(match.group(1).decode("ascii", "ignore"))
    return found


def _normalize(name: str) -> str | None:
    lowered = name.strip().lower()
    if lowered in _KOREAN:
        return "cp949"
    try:
        return codecs.lookup(lowered).name
    except LookupError:
        return None


def decode(data: bytes, content_type: str = "", forced: str = "", where: str = "") -> str:
    """Decode `data` to text without control characters; SourceError if nothing fits."""
    boms = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"))
    for bom, codec in (*boms, (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return clean_decoded(data[len(bom) :].decode(codec, "replace"))
    # Forced first; then UTF-8, because bytes of real text that decode strictly as UTF-8 are
    # UTF-8 whatever the page claims; then the declarations; then CP949 (undeclared Korean
    # pages); the Latin-1 family last, since it decodes any bytes and would store mojibake.
    candidates: list[str] = [forced] if forced else []
    candidates.append("utf-8")
    weak: list[str] = []
    for name in declared_charsets(data, content_type):
        (weak if name.strip().lower() in _WEAK else candidates).append(name)
    candidates += ["cp949", *weak]
    seen: set[str] = set()
    for name in candidates:
        normalized = _normalize(name)
        if normalized is None or normalized in seen:
            continue
        seen.add(normalized)
        try:
            text = data.decode(normalized)
        except (UnicodeDecodeError, LookupError):
            continue
        if normalized in {"latin_1", "cp1252", "iso8859-1"} and _looks_korean_bytes(data):
            continue
        return clean_decoded(text)
    best = from_bytes(data).best()
    if best is not None and best.encoding:
        try:
            return clean_decoded(data.decode(best.encoding))
        except (UnicodeDecodeError, LookupError):
            pass
    raise SourceError(f"{where}: cannot decode the response (not UTF-8, CP949 or a known charset)")


def _looks_korean_bytes(data: bytes) -> bool:
    """True when the bytes decode strictly as CP949 into mostly Hangul: not Latin-1 text."""
    try:
        text = data.decode("cp949")
    except UnicodeDecodeError:
        return False
    hangul = sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3")
    high = sum(1 for ch in text if ord(ch) > 0x7F)
    return high > 0 and hangul / high > 0.8


def scrub(text: str) -> str:
    """`text` with lone surrogates (a JSON `\\ud800` escape, an XML `&#xD800;`), which cannot
    be stored or printed as UTF-8, replaced by U+FFFD; a high and low pair becomes its
    character."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def safe_charrefs(text: str) -> str:
    """Markup with each numeric character reference that names no character (a surrogate such
    as `&#xD800;`, a value past U+10FFFF, thousands of digits) turned into `&#xFFFD;`: a
    parser would otherwise fail on it or produce a lone surrogate."""
    if "&#" not in text:
        return text

    def fix(match: re.Match[str]) -> str:
        hexa, decimal = match.groups()
        digits = (hexa or decimal).lstrip("0")
        if len(digits) > 8:
            return "&#xFFFD;"
        value = int(digits or "0", 16 if hexa else 10)
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            return "&#xFFFD;"
        return match.group(0)

    return _CHARREF.sub(fix, text)


def clean_decoded(text: str) -> str:
    return repair_mojibake(_CONTROL.sub("", text))


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 read as Windows-1252 / Latin-1 ("ê°€" -> "가"), run by run.

    Only a run that re-encodes and then decodes strictly as UTF-8 is replaced, so real accented
    Latin text ("café") is left alone.
    """
    if not _MOJIBAKE_RUN.search(text):
        return text

    def fix(match: re.Match[str]) -> str:
        run = match.group(0)
        for codec in ("cp1252", "latin-1"):
            try:
                return run.encode(codec).decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
        return run

    return _MOJIBAKE_RUN.sub(fix, text)
