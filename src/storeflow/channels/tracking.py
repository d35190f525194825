"""Pure helpers the engine uses to prepare tracked email HTML: UTM parameters, click-tracking link
rewriting and the open-tracking pixel.

:func:`rewrite_links` finds ``<a href>`` start tags with the stdlib :class:`html.parser.HTMLParser`
(so links inside comments, scripts or attribute values are never touched) and replaces only the
``href`` attribute value inside each start tag, leaving every other byte of the document as it was.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

NOTRACK_ATTRIBUTE = "data-storeflow-notrack"
_TRACKED_SCHEMES = ("http", "https")
_SPACE = " \t\n\r\f"  # HTML ASCII whitespace


def add_utm(url: str, utm: Mapping[str, str]) -> str:
    """``url`` with the ``utm`` parameters appended to its query (see :func:`_add_utm`); cached, as
    the same links go out in many messages."""
    return _add_utm(url, tuple(utm.items()))


@lru_cache(maxsize=4096)
def _add_utm(url: str, utm_items: tuple[tuple[str, str], ...]) -> str:
    """``url`` with the ``utm`` parameters appended to its query.

    Existing query parameters stay as they are (byte for byte); a parameter already present (compared
    case-insensitively) is not added again, so a link's own ``utm_*`` values win. Empty values are
    skipped. URLs that are not http(s) are returned unchanged.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in _TRACKED_SCHEMES or not parts.netloc:
        return url
    present = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = []
    for name, value in utm_items:
        if value and name and name.lower() not in present:
            extra.append((name, value))
            present.add(name.lower())
    if not extra:
        return url
    query = parts.query
    if query and not query.endswith("&"):
        query += "&"
    return urlunsplit(parts._replace(query=query + urlencode(extra)))


def is_trackable(url: str) -> bool:
    """True for absolute http(s) URLs (not ``mailto:``, ``tel:``, ``#anchors`` or relative links)."""
    parts = urlsplit(url.strip(_SPACE))
    return parts.scheme.lower() in _TRACKED_SCHEMES and bool(parts.netloc)


def rewrite_links(html: str, make_url: Callable[[str], str], *, skip: Callable[[str], bool] | None = None,
                  pixel: str | None = None) -> str:
    """Replace the ``href`` of every ``<a>`` linking to an http(s) URL with ``make_url(original)``.

    ``original`` is the decoded attribute value (``&amp;`` already turned into ``&``); the result is
    escaped and written back double-quoted. Untouched: non-http(s) links (``mailto:``, ``tel:``,
    ``#anchor``, relative), links with a ``data-storeflow-notrack`` attribute, links for which
    ``skip(original)`` is true (e.g. the unsubscribe link), and links where ``make_url`` returns the
    URL unchanged. With ``pixel``, also :func:`insert_pixel` in the same parse.
    """
    links, body_end = _scan(html)
    pixel_at = len(html) if body_end is None else body_end
    out: list[str] = []
    done = 0
    for start, tag_text, raw_href in links:
        href = raw_href.strip(_SPACE)  # as a browser reads it
        if not is_trackable(href) or (skip is not None and skip(href)):
            continue
        new = make_url(href)
        if new == href:
            continue
        span = _href_value_span(tag_text)
        if (
            html[start : start + len(tag_text)] != tag_text
            or span is None
            or _attribute_value(tag_text[span[0] : span[1]]) != raw_href
        ):
            continue  # the scan disagrees with the parser: leave the tag alone rather than guess
        if pixel is not None and done <= pixel_at < start + span[0]:
            out.append(html[done:pixel_at] + pixel)
            done = pixel_at
        out.append(html[done : start + span[0]])
        out.append(f'"{htmllib.escape(new, quote=True)}"')
        done = start + span[1]
    if pixel is not None and pixel_at >= done:
        out.append(html[done:pixel_at] + pixel)
        done = pixel_at
    out.append(html[done:])
    return "".join(out)


def pixel_tag(url: str) -> str:
    """A 1x1 open-tracking ``<img>`` for ``url`` (http or https only)."""
    if not is_trackable(url):
        raise ValueError(f"tracking pixel URL must be an absolute http(s) URL, got {url!r}")
    src = htmllib.escape(url.strip(_SPACE), quote=True)
    return (
        f'<img src="{src}" width="1" height="1" alt="" border="0" '
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0" />'
    )


def insert_pixel(html: str, pixel: str) -> str:
    """``pixel`` inserted right before the last ``</body>`` (found by the parser), else appended."""
    finder = _BodyEndFinder()
    finder.feed(html)
    finder.close()
    if finder.body_end is None:
        return html + pixel
    line, col = finder.body_end
    at = _line_starts(html)[line - 1] + col
    return html[:at] + pixel + html[at:]


# -- internals ------------------------------------------------------------------------------------

_Links = list[tuple[int, str, str]]  # (offset of the <a, the start tag's text, its first href)


def _scan(html: str) -> tuple[_Links, int | None]:
    """The trackable ``<a href>`` start tags and the offset of the last ``</body>``, as HTMLParser
    finds them. A document of plain tags only is scanned by :func:`_simple_scan`, which finds the
    same at a fraction of the parser's cost; anything else (comments, scripts, a stray ``<``) goes
    through the parser."""
    simple = _simple_scan(html)
    if simple is not None:
        return simple
    finder = _LinkFinder()
    finder.feed(html)
    finder.close()
    starts = _line_starts(html)
    links = [(starts[line - 1] + col, text, href) for (line, col), text, href in finder.links]
    body_end = None if finder.body_end is None else starts[finder.body_end[0] - 1] + finder.body_end[1]
    return links, body_end


_WS = "[ \t\n\r]"
_ATTR_RE = rf"""{_WS}+([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:{_WS}*={_WS}*("[^"]*"|'[^']*'|[^ \t\n\r"'=<>`]+))?"""
_ATTR = re.compile(_ATTR_RE)
_START_TAG = re.compile(rf"<([a-zA-Z][a-zA-Z0-9]*)((?:{_ATTR_RE})*){_WS}*/?>")
_END_TAG = re.compile(rf"</([a-zA-Z][a-zA-Z0-9]*){_WS}*>")
# Elements whose content the parser does not read as markup (in some Python version or other).
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
                       "plaintext"})


def _simple_scan(html: str) -> tuple[_Links, int | None] | None:
    """:func:`_scan` for a document in which every ``<`` opens a well-formed start or end tag (names
    and attributes in their plain forms, values quoted or simple) outside raw-text elements; None for
    any other document. For such a document HTMLParser reports exactly these tags and attributes."""
    links: _Links = []
    body_end = None
    at = html.find("<")
    while at != -1:
        if html.startswith("</", at):
            match = _END_TAG.match(html, at)
            if match is None:
                return None
            if match[1].lower() == "body":
                body_end = at
        else:
            match = _START_TAG.match(html, at)
            if match is None:
                return None
            name = match[1].lower()
            if name in _RAW_TEXT:
                return None
            if name == "a":
                attrs = [(key.lower(), value) for key, value in _ATTR.findall(match[2])]
                names = [key for key, _ in attrs]
                if "href" in names and NOTRACK_ATTRIBUTE not in names:
                    raw = next(value for key, value in attrs if key == "href")  # browsers use the first
                    if raw:  # a href without a value has none
                        links.append((at, match[0], _attribute_value(raw)))
        at = html.find("<", match.end())
    return links, body_end


class _LinkFinder(HTMLParser):
    """Collects ``(position, start tag text, href)`` of each ``<a href>`` without a notrack marker,
    and where the last ``</body>`` starts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[tuple[int, int], str, str]] = []
        self.body_end: tuple[int, int] | None = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.body_end = self.getpos()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        names = [name for name, _ in attrs]
        if "href" not in names or NOTRACK_ATTRIBUTE in names:
            return
        href = next(value for name, value in attrs if name == "href")  # browsers use the first
        tag_text = self.get_starttag_text()
        if href is not None and tag_text is not None:
            self.links.append((self.getpos(), tag_text, href))


class _BodyEndFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.body_end: tuple[int, int] | None = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.body_end = self.getpos()


def _line_starts(text: str) -> list[int]:
    """Offsets where each line starts, counting lines the way HTMLParser.getpos() does (by '\\n')."""
    starts = [0]
    at = text.find("\n")
    while at != -1:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _attribute_value(raw: str) -> str:
    """An attribute value as HTMLParser reports it: outer quotes removed, character references decoded."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    return htmllib.unescape(raw)


def _href_value_span(tag: str) -> tuple[int, int] | None:
    """``(start, end)`` of the first ``href`` attribute's value in a start tag, quotes included.

    A small scanner for the attribute syntax of one start tag, following the HTML tokenizer: names
    end at whitespace, ``/``, ``=`` or ``>``; values are double-quoted, single-quoted or unquoted.
    None when the first href has no value.
    """
    i = 1
    n = len(tag)
    while i < n and tag[i] not in _SPACE + "/>":  # the tag name
        i += 1
    while i < n:
        while i < n and (tag[i] in _SPACE or tag[i] == "/"):
            i += 1
        if i >= n or tag[i] == ">":
            return None
        name_start = i
        i += 1  # the first character belongs to the name even if it is '='
        while i < n and tag[i] not in _SPACE + "/=>":
            i += 1
        name = tag[name_start:i].lower()
        j = i
        while j < n and tag[j] in _SPACE:
            j += 1
        if j >= n or tag[j] != "=":
            if name == "href":
                return None
            continue
        j += 1
        while j < n and tag[j] in _SPACE:
            j += 1
        value_start = j
        if j < n and tag[j] in "\"'":
            close = tag.find(tag[j], j + 1)
            end = n if close == -1 else close + 1
        else:
            end = j
            while end < n and tag[end] not in _SPACE + ">":
                end += 1
        if name == "href":
            return (value_start, end) if end > value_start else None
        i = end
    return None
