"""UTM parameters, click-tracking link rewriting and the open pixel."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from storeflow.channels.tracking import add_utm, insert_pixel, is_trackable, pixel_tag, rewrite_links

UTM = {"utm_source": "storeflow", "utm_medium": "email", "utm_campaign": "abandoned cart"}


def track(url: str) -> str:
    return "https://t.example/c?u=" + quote(url, safe="")


def recorder(seen: list[str]) -> Callable[[str], str]:
    """A make_url that records what it was given and changes nothing."""

    def make_url(url: str) -> str:
        seen.append(url)
        return url

    return make_url


# -- add_utm --------------------------------------------------------------------------------------


def test_add_utm_to_a_plain_url() -> None:
    assert add_utm("https://shop.example/p/1", UTM) == (
        "https://shop.example/p/1?utm_source=storeflow&utm_medium=email&utm_campaign=abandoned+cart"
    )


def test_add_utm_keeps_existing_params_byte_for_byte_and_the_fragment() -> None:
    url = "https://shop.example/p?q=caf%C3%A9&sort=&x=a%20b#reviews"
    out = add_utm(url, {"utm_source": "storeflow"})
    assert out == "https://shop.example/p?q=caf%C3%A9&sort=&x=a%20b&utm_source=storeflow#reviews"


def test_add_utm_does_not_override_existing_utm_params() -> None:
    out = add_utm("https://shop.example/?UTM_SOURCE=newsletter&utm_medium=sms", UTM)
    params = parse_qs(urlsplit(out).query)
    assert params["UTM_SOURCE"] == ["newsletter"]
    assert "utm_source" not in params
    assert params["utm_medium"] == ["sms"]
    assert params["utm_campaign"] == ["abandoned cart"]


def test_add_utm_skips_empty_values_and_handles_a_trailing_ampersand() -> None:
    assert add_utm("http://shop.example/?a=1&", {"utm_source": "s", "utm_term": ""}) == (
        "http://shop.example/?a=1&utm_source=s"
    )


@pytest.mark.parametrize(
    "url", ["mailto:ana@example.com", "tel:+6281234", "#top", "/relative/path", "ftp://files.example/x", "https:///x"]
)
def test_add_utm_leaves_non_http_urls_alone(url: str) -> None:
    assert add_utm(url, UTM) == url


def test_add_utm_with_nothing_to_add_returns_the_url_unchanged() -> None:
    url = "https://shop.example/?utm_source=a&utm_medium=b&utm_campaign=c"
    assert add_utm(url, UTM) == url


# -- rewrite_links --------------------------------------------------------------------------------


def test_rewrites_double_single_and_unquoted_hrefs_and_uppercase_names() -> None:
    html = (
        '<a href="https://shop.example/a">A</a> '
        "<a class='btn' href='https://shop.example/b'>B</a> "
        "<A HREF=https://shop.example/c>C</A>"
    )
    assert rewrite_links(html, track) == (
        f'<a href="{track("https://shop.example/a")}">A</a> '
        f"<a class='btn' href=\"{track('https://shop.example/b')}\">B</a> "
        f'<A HREF="{track("https://shop.example/c")}">C</A>'
    )


def test_entities_are_decoded_for_make_url_and_the_result_is_escaped() -> None:
    seen: list[str] = []

    def make_url(url: str) -> str:
        seen.append(url)
        return f"https://t.example/c?m=1&u={quote(url, safe='')}"

    out = rewrite_links('<a href="https://shop.example/p?a=1&amp;b=2&#38;c=3">x</a>', make_url)

    assert seen == ["https://shop.example/p?a=1&b=2&c=3"]
    assert out == '<a href="https://t.example/c?m=1&amp;u=https%3A%2F%2Fshop.example%2Fp%3Fa%3D1%26b%3D2%26c%3D3">x</a>'


def test_existing_query_strings_reach_make_url_intact() -> None:
    seen: list[str] = []
    rewrite_links('<a href="https://shop.example/cart?id=9&amp;utm_source=x">x</a>', recorder(seen))
    assert seen == ["https://shop.example/cart?id=9&utm_source=x"]


@pytest.mark.parametrize(
    "html",
    [
        '<a href="mailto:ana@example.com">mail</a>',
        '<a href="tel:+6281234">call</a>',
        '<a href="#section-2">jump</a>',
        '<a href="/relative">rel</a>',
        '<a href="">empty</a>',
        "<a href>bare</a>",
        "<a name=top>anchor</a>",
        '<a data-storeflow-notrack href="https://shop.example/u/abc">unsubscribe</a>',
        '<a href="https://shop.example/u/abc" DATA-STOREFLOW-NOTRACK="1">unsubscribe</a>',
        '<link href="https://shop.example/style.css" rel="stylesheet">',
        '<img src="https://shop.example/logo.png">',
    ],
)
def test_links_that_must_not_be_tracked_are_left_byte_for_byte(html: str) -> None:
    assert rewrite_links(html, track) == html


def test_skip_predicate_keeps_unsubscribe_links_untracked() -> None:
    unsubscribe = "https://shop.example/u/abc?m=1"
    html = f'<a href="{unsubscribe.replace("&", "&amp;")}">unsubscribe</a><a href="https://shop.example/p">p</a>'
    out = rewrite_links(html, track, skip=lambda url: url.startswith("https://shop.example/u/"))
    assert out == f'<a href="{unsubscribe}">unsubscribe</a><a href="{track("https://shop.example/p")}">p</a>'


def test_make_url_returning_the_same_url_leaves_the_tag_alone() -> None:
    html = "<a  HREF = 'https://shop.example/u/abc' >x</a>"
    assert rewrite_links(html, lambda url: url) == html


def test_links_in_comments_scripts_and_attribute_values_are_not_touched() -> None:
    html = (
        '<!-- <a href="https://shop.example/commented">x</a> -->\n'
        "<script>var s = '<a href=\"https://shop.example/in-script\">';</script>\n"
        "<p title='<a href=\"https://shop.example/in-attr\">'>t</p>\n"
        '<a href="https://shop.example/real">real</a>'
    )
    out = rewrite_links(html, track)
    assert out == html.replace('"https://shop.example/real"', f'"{track("https://shop.example/real")}"')


def test_multiline_tags_other_attributes_and_following_lines_keep_their_positions() -> None:
    html = (
        '<table>\n  <tr><td>\n    <a\n      class="cta"\n      href = "https://shop.example/x"\n'
        '      style="color:#fff">Buy</a>\n  </td></tr>\n</table>\n<a href="https://shop.example/y">y</a>\n'
    )
    out = rewrite_links(html, track)
    assert out == html.replace('"https://shop.example/x"', f'"{track("https://shop.example/x")}"').replace(
        '"https://shop.example/y"', f'"{track("https://shop.example/y")}"'
    )


def test_only_the_first_of_duplicate_hrefs_is_rewritten_as_browsers_use_it() -> None:
    html = '<a href="https://shop.example/1" href="https://shop.example/2">x</a>'
    assert rewrite_links(html, track) == html.replace(
        '"https://shop.example/1"', f'"{track("https://shop.example/1")}"'
    )


def test_whitespace_around_the_url_is_ignored_and_scheme_case_too() -> None:
    seen: list[str] = []
    rewrite_links('<a href="  HTTPS://Shop.Example/p \n">x</a>', recorder(seen))
    assert seen == ["HTTPS://Shop.Example/p"]


def test_non_ascii_text_and_missing_spaces_between_attributes() -> None:
    html = '<p>Olá — Rp 150.000</p><a id="x"href="https://shop.example/ç">ç</a>'
    out = rewrite_links(html, track)
    assert out == html.replace('"https://shop.example/ç"', f'"{track("https://shop.example/ç")}"')


# -- pixel ----------------------------------------------------------------------------------------


def test_pixel_tag_escapes_the_url() -> None:
    tag = pixel_tag("https://t.example/o?m=msg_1&p=2")
    assert tag.startswith('<img src="https://t.example/o?m=msg_1&amp;p=2" width="1" height="1" alt=""')
    assert tag.endswith("/>")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/o?m=1", "data:image/gif;base64,R0l"])
def test_pixel_tag_needs_an_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        pixel_tag(url)


def test_insert_pixel_before_the_closing_body_tag() -> None:
    html = "<html><BODY><p>hi</p></BODY>\n</html>"
    assert insert_pixel(html, "<img>") == "<html><BODY><p>hi</p><img></BODY>\n</html>"


def test_insert_pixel_ignores_a_body_end_tag_in_a_comment_or_script() -> None:
    html = "<body><!-- </body> --><script>document.write('</body>')</script><p>x</p></body>"
    assert insert_pixel(html, "<img>") == (
        "<body><!-- </body> --><script>document.write('</body>')</script><p>x</p><img></body>"
    )


def test_insert_pixel_appends_without_a_body() -> None:
    assert insert_pixel("<p>hi</p>", "<img>") == "<p>hi</p><img>"


def test_is_trackable() -> None:
    assert is_trackable("https://a.example/x")
    assert is_trackable(" http://a.example ")
    assert not is_trackable("mailto:a@b.c")
    assert not is_trackable("//a.example/x")


@pytest.mark.parametrize("html", [
    '<html><body><p><a href="https://a.example/x">a</a></p><a href="https://b.example/">b</a></body></html>',
    '<p><a href="https://a.example/x">a</a></p>',  # no </body>: the pixel goes at the end
    '<body><a href="https://a.example/">a</a></body><div><a href="https://c.example/">c</a></div></body>',
    '<body></body><a href="mailto:x@example.com">m</a>',
])
def test_links_and_pixel_in_one_parse_equal_the_two_steps(html: str) -> None:
    def track(url: str) -> str:
        return f"https://t.example/c?u={url}"

    pixel = pixel_tag("https://t.example/o/1")
    assert rewrite_links(html, track, pixel=pixel) == insert_pixel(rewrite_links(html, track), pixel)


_FRAGMENTS = [
    '<a href="https://a.example/x?y=1&amp;z=2">a</a>', "<a href='https://b.example/'>b</a>",
    "<a href=https://c.example/u>c</a>", '<A HREF="https://d.example/" class="x">d</A>', "<a href>e</a>",
    '<a href="" data-storeflow-notrack>f</a>', '<a data-storeflow-notrack href="https://g.example/">g</a>',
    '<a class="btn"\n   href="https://h.example/"\n>h</a>', '<a href="https://i.example/" href="https://j.example/">',
    '<a href="https://k.example/"/>', "<p>text &amp; more</p>", "<br/>", "<img src='x.png' alt=\"a<b>\">",
    "</body>", "<body>", "<table><tr><td>1</td></tr></table>", "1 < 2", "<!-- <a href='https://c/'> -->",
    "<script>var a = '<a href=\"https://s/\">';</script>", "<style>a{}</style>", '<a href="x"\f>', "</a b>",
    "<title><a href='https://t/'></title>", "<a href=x=y>", "<a hr\u00e9f='https://u/'>", "<!DOCTYPE html>", "<?x?>",
]


@pytest.mark.parametrize("seed", range(300))
def test_the_plain_tag_scan_finds_what_the_parser_finds(seed: int) -> None:
    import random

    from storeflow.channels import tracking

    rng = random.Random(seed)
    doc = "\n".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 8)))
    simple = tracking._simple_scan(doc)
    finder = tracking._LinkFinder()
    finder.feed(doc)
    finder.close()
    starts = tracking._line_starts(doc)
    links = [(starts[line - 1] + col, text, href) for (line, col), text, href in finder.links]
    body_end = None if finder.body_end is None else starts[finder.body_end[0] - 1] + finder.body_end[1]
    if simple is not None:
        assert simple == (links, body_end), doc
    assert tracking._scan(doc) == (links, body_end)


def test_plain_documents_take_the_scan_and_others_the_parser() -> None:
    from storeflow.channels import tracking

    assert tracking._simple_scan('<html><body><a href="https://a.example/">a</a></body></html>') is not None
    for doc in ("<!-- x --><a href='https://a/'>", "<script></script>", "a < b", "<a href='x'\f>"):
        assert tracking._simple_scan(doc) is None
