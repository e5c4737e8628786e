"""Data Docs work without the internet: every script, stylesheet, font and image a page loads is a
file of the site itself (the vendored ``docs_assets``), linked relatively, so a page renders the
same through the Airflow page and opened as a file on a machine that reaches no CDN.

The browser test uses Debian's ``chromium`` and ``chromium-driver`` with networking disabled, and
is skipped with the reason when either is missing. With ``INTOAEC_SAVE_SCREENSHOTS=1`` it saves what
it saw as docs/screenshots/data-docs-offline.png.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import great_expectations
import pytest
from intoaec_xero import db
from intoaec_xero.extract import StreamExtract
from intoaec_xero.load import load_stream
from intoaec_xero.quality import docs
from intoaec_xero.rawstore import RawStore
from intoaec_xero.streams import get_stream

from tests.conftest import REPO
from tests.harness.browser import chromium

from .records import TENANT, account, contact, invoice, keep, page

GX_TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+?)['\"]?\s*\)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Real verdicts of a few tables (invoices failing a check) published three times: by a build that
    left GX's CDN links in (as before the assets were vendored), then twice as now."""
    root = tmp_path_factory.mktemp("offline-docs")
    data = root / "var"
    engine = db.create_db_engine(f"sqlite:///{root / 'intoaec.db'}")
    db.upgrade(engine)
    raw = RawStore(root / "raw")
    streams = {"accounts": [account("acc-sales", "200")], "contacts": [contact(1)],
               "invoices": [invoice(1), invoice(2, Status="PENDING_APPROVAL")]}

    def validations(run_id: str) -> list:
        found = []
        for stream, records in streams.items():
            keep(raw, run_id, stream, page(stream, records))
            loaded = load_stream(engine, raw, run_id, TENANT, get_stream(stream), StreamExtract(stream=stream))
            found += loaded.validations
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INTOAEC_DATA_DIR", str(data))
        with pytest.MonkeyPatch.context() as unvendored:
            unvendored.setattr(docs, "_make_offline", lambda site, before: None)
            docs.publish("before", "Demo Org", validations("before"), data)
        docs.publish("offline", "Demo Org", validations("offline"), data)
        built = docs.docs_dir(data)
        pages = {path: path.stat().st_mtime_ns for path in built.rglob("*.html")}
        vendor = _inode(built / "static" / "vendor")
        docs.publish("again", "Demo Org", validations("again"), data)
        # As xero_sync's loads publish: their own pages only, the home page at the run's end.
        docs.publish("pages-only", "Demo Org", validations("pages-only"), data, build_index=False)
        docs.rebuild_index(data)
    engine.dispose()
    yield {"dir": built, "pages_before_again": pages, "vendor_before_again": vendor}


def _inode(path: Path) -> int | None:
    return path.stat().st_ino if path.exists() else None


class _Assets(HTMLParser):
    """What a page loads: scripts, stylesheets and icons, images, and url()s in its styles."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.loaded.append(values["src"])
        elif tag == "link" and values.get("href"):
            self.loaded.append(values["href"])
        elif tag == "img" and values.get("src"):
            self.loaded.append(values["src"])
        self.loaded += CSS_URL.findall(values.get("style") or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.loaded += CSS_URL.findall(data)


def _loaded(path: Path) -> list[str]:
    parser = _Assets()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.loaded


def _pages(site_dir: Path) -> list[Path]:
    pages = sorted(site_dir.rglob("*.html"))
    assert site_dir / "index.html" in pages and any("validations" in p.parts for p in pages)
    return pages


def _failing_page(site_dir: Path, run_id: str = "again") -> Path:
    [found] = (site_dir / "validations" / "xero" / "invoices" / run_id).glob("*/Demo_Org__invoices.html")
    return found


def test_no_page_loads_anything_from_the_internet(site):
    external = {(p.relative_to(site["dir"]).as_posix(), url) for p in _pages(site["dir"]) for url in _loaded(p)
                if urlsplit(url).scheme or url.startswith("//")}
    assert external == set()
    # Vega is not vendored: only graphs call it, and no check of ours renders one.
    assert [p for p in _pages(site["dir"]) if "vegaEmbed" in p.read_text(encoding="utf-8")] == []


def test_pages_built_before_the_assets_were_vendored_were_rewritten_too(site):
    old = _failing_page(site["dir"], "before")
    assert any("static/vendor/bootstrap-4.3.1/css/bootstrap.min.css" in url for url in _loaded(old))


def test_every_asset_a_page_names_is_a_file_of_the_site(site):
    base = site["dir"].resolve()
    missing = []
    for path in _pages(site["dir"]):
        for url in _loaded(path):
            if url.startswith("data:"):
                continue
            target = (path.parent / urlsplit(url).path).resolve()
            if not (target.is_relative_to(base) and target.is_file()):
                missing.append((path.relative_to(base).as_posix(), url))
    assert missing == []


def test_the_fonts_the_vendored_stylesheets_name_exist(site):
    for folder in (docs._VENDORED, site["dir"] / "static" / "vendor"):
        stylesheets = sorted(folder.rglob("*.css"))
        assert stylesheets
        named = {(css, url) for css in stylesheets for url in CSS_URL.findall(css.read_text(encoding="utf-8"))
                 if not url.startswith("data:")}
        font_awesome = folder / "fontawesome-free-6.6.0" / "css" / "all.min.css"
        assert {url for css, url in named if css == font_awesome} >= {
            "../webfonts/fa-solid-900.woff2", "../webfonts/fa-regular-400.woff2", "../webfonts/fa-brands-400.woff2"}
        assert [(css.name, url) for css, url in named if not (css.parent / url).is_file()] == []


def test_a_later_build_rewrites_only_its_own_pages_and_copies_the_assets_once(site):
    unchanged = {path for path, written in site["pages_before_again"].items()
                 if path.exists() and path.stat().st_mtime_ns == written}
    assert set(site["pages_before_again"]) - unchanged == {site["dir"] / "index.html"}
    assert _inode(site["dir"] / "static" / "vendor") == site["vendor_before_again"] is not None
    assert docs._offline_html(_failing_page(site["dir"]).read_text(encoding="utf-8"), 5) == \
        _failing_page(site["dir"]).read_text(encoding="utf-8")


def test_pages_of_a_load_that_leaves_the_index_to_the_run_are_offline_and_listed(site):
    page = _failing_page(site["dir"], "pages-only")
    assert any("static/vendor/bootstrap-4.3.1/css/bootstrap.min.css" in url for url in _loaded(page))
    assert "pages-only" in (site["dir"] / "index.html").read_text(encoding="utf-8")


def test_every_internet_asset_of_gx_templates_is_vendored_as_the_very_file_gx_pins():
    """A GX upgrade that loads something new, or another version, fails here rather than offline."""
    readme = (docs._VENDORED / "README.md").read_text(encoding="utf-8")
    tag = re.compile(r"<(?:script|link)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"[^>]*>")
    seen = set()
    for template in GX_TEMPLATES.glob("*.j2"):
        for found in tag.finditer(template.read_text(encoding="utf-8")):
            url = found.group(1)
            seen.add(url)
            if docs._UNUSED_SCRIPTS.match(found.group(0) + "</script>"):
                continue
            assert url in docs._ASSETS, f"{template.name} loads {url}, which is not vendored"
            vendored = docs._VENDORED / docs._ASSETS[url]
            assert vendored.is_file() and url in readme
            pinned = re.search(r'integrity="sha384-([^"]+)"', found.group(0))
            if pinned:
                assert base64.b64encode(hashlib.sha384(vendored.read_bytes()).digest()).decode() == pinned.group(1)
    assert set(docs._ASSETS) <= seen
    for license_dir in {Path(path).parts[0] for path in docs._ASSETS.values()}:
        assert list((docs._VENDORED / license_dir).glob("LICENSE*")), license_dir


@pytest.fixture
def offline_browser(tmp_path):
    # No proxy that answers and no name that resolves: a page opened as a file gets nothing from a network.
    with chromium(tmp_path / "chromium-profile", arguments=("--proxy-server=127.0.0.1:9",
                                                            "--host-resolver-rules=MAP * ~NOTFOUND"),
                  console_log=True) as driver:
        yield driver


def test_a_page_opened_as_a_file_without_network_is_styled_and_scripted(site, offline_browser):
    offline_browser.get(_failing_page(site["dir"]).resolve().as_uri())
    state = offline_browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        document.fonts.ready.then(() => done({
            jquery: typeof window.jQuery,
            popper: typeof window.Popper,
            bootstrap: window.jQuery ? typeof jQuery.fn.modal : null,
            bootstrapTable: window.jQuery ? typeof jQuery.fn.bootstrapTable : null,
            datepicker: window.jQuery ? typeof jQuery.fn.datepicker : null,
            row: getComputedStyle(document.querySelector('.row')).display,
            navbar: getComputedStyle(document.querySelector('.navbar')).display,
            icons: [...document.fonts].filter(f => f.family.includes('Font Awesome') && f.status === 'loaded').length,
            iconFont: getComputedStyle(document.querySelector('.fas'), '::before').fontFamily,
            logo: document.querySelector('.navbar-brand img').naturalWidth,
            tables: document.querySelectorAll('.bootstrap-table').length,
        }));
    """)
    expected = {"jquery": "function", "popper": "function", "bootstrap": "function", "bootstrapTable": "function",
                "datepicker": "function", "row": "flex", "navbar": "flex"}
    assert {name: state[name] for name in expected} == expected
    assert state["icons"] >= 1 and "Font Awesome" in state["iconFont"]
    assert state["logo"] > 0 and state["tables"] >= 1
    assert [entry["message"] for entry in offline_browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    if os.environ.get("INTOAEC_SAVE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots" / "data-docs-offline.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        offline_browser.save_screenshot(str(target))
