"""The dashboard's static files as the ApiFunction serves them (no key needed, strict CSP, no CDN)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "layers" / "shared" / "switchyard" / "dashboard" / "static"
MODULES = sorted(p.name for p in STATIC.glob("*.js"))


class Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []
        self.inline_scripts: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.links: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.attributes += [(name, value or "") for name, value in attrs]
        if tag == "script":
            self.scripts.append(found)
            self._in_script = True
        for name in ("src", "href"):
            if found.get(name):
                self.links.append(found[name])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def test_given_the_bare_path_then_it_redirects_to_the_folder_relatively(api):
    response = api("GET", "/dashboard")

    assert response.status == 308
    assert (
        response.headers["location"] == "dashboard/"
    )  # keeps a stage prefix: /dev/dashboard -> /dev/dashboard/


def test_given_no_key_then_the_page_is_served_with_a_csp_that_forbids_inline_script_and_style(api):
    response = api("GET", "/dashboard/")

    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_given_the_page_then_every_script_is_a_module_file_and_no_attribute_holds_code(api):
    markup = Markup()
    markup.feed(api("GET", "/dashboard/").content.decode())

    assert markup.inline_scripts == []
    assert markup.scripts == [{"type": "module", "src": "app.js"}]
    assert not [name for name, _ in markup.attributes if name.startswith("on") or name == "style"]
    assert all(not link.startswith(("http:", "https:", "//")) for link in markup.links)  # no CDN


@pytest.mark.parametrize("name", MODULES)
def test_given_a_module_then_it_is_served_as_javascript_and_imports_only_shipped_files(api, name):
    response = api("GET", f"/dashboard/{name}")

    assert response.status == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    source = response.content.decode()
    for imported in re.findall(r'from "([^"]+)"', source):
        assert imported.startswith("./") and (STATIC / imported[2:]).is_file(), imported
    # Nothing from elsewhere (no CDN): the only URLs are the SVG namespace and an example command's.
    outside = set(re.findall(r"https?://[^\s\"'`]+", source)) - {
        "http://www.w3.org/2000/svg",
        "http://127.0.0.1:8000",
    }
    assert not outside, f"{name} reaches outside the gateway: {outside}"
    # Values reach the page as text nodes only: nothing parses strings into markup or code.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, f"{name} uses {sink}"


def test_given_the_stylesheet_and_icon_then_they_are_served_with_their_types(api):
    assert api("GET", "/dashboard/dashboard.css").headers["content-type"] == "text/css; charset=utf-8"
    assert api("GET", "/dashboard/favicon.svg").headers["content-type"] == "image/svg+xml"


def test_given_an_etag_then_an_unchanged_file_answers_304(api):
    first = api("GET", "/dashboard/app.js")

    again = api("GET", "/dashboard/app.js", headers={"if-none-match": first.headers["etag"]})

    assert again.status == 304 and again.content == b""
    assert first.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/dashboard/nope.js", "/dashboard/..%2F__init__.py", "/dashboard/__init__.py"]
)
def test_given_a_file_that_is_not_shipped_then_the_answer_is_404(api, path):
    assert api("GET", path).status == 404
