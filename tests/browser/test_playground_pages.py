"""The built book in a real browser, offline: every page loads with no console error and
no request leaving the machine, and each interactive figure of ``adam-playground.js``
answers its keyboard and its reset button, at desktop and phone widths.

Runs after the book is built (``make test-pages``, part of ``make test``), over
``_build/html`` served on localhost, in headless Chromium driven by Selenium with the
system's chromium-driver. Screenshots go to ``_build/screenshots/``. Without Chromium
the tests skip and say so (``.ci/run`` installs it where it can).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("ADAMLIB_HTML", ROOT / "_build" / "html"))
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WIDGETS = {  # the figures the chapters promise: page -> (widget, problem)
    "book/learning_rate.html": ("trajectory", "bowl"),
    "book/betas.html": ("trajectory", "rosenbrock"),
    "book/epsilon.html": ("epsilon", None),
    "book/amsgrad.html": ("reddi", None),
}

if CHROMIUM is None or DRIVER is None:
    pytest.skip("no browser here: the browser tests need Chromium and its driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def pages() -> list[str]:
    return sorted(str(p.relative_to(HTML)) for p in HTML.glob("book/*.html"))


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book at {HTML}: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="adamlib-chromium-")
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,1000",
                 # offline: every host but this machine fails to resolve
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER),
                              options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# Not the page's: the browser asks every server for /favicon.ico, and the theme's script
# reports a first visit's empty colour-mode setting (then picks "auto") as an error.
NOT_THE_PAGES = re.compile(r"/favicon\.ico |Got invalid theme mode")


def errors(driver) -> list[str]:
    """The console's errors since the last call (failed requests included)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not NOT_THE_PAGES.search(e["message"])]


def test_every_page_loads_offline(site, browser):
    found = pages()
    assert set(WIDGETS) <= set(found), f"pages missing from the build: {set(WIDGETS) - set(found)}"
    assert "book/index.html" in found
    for page in found:
        browser.get(site + page)
        WebDriverWait(browser, 20).until(
            lambda d: d.execute_script("return document.readyState") == "complete",
            message=f"{page} did not finish loading")
        assert errors(browser) == [], page
        # MathJax is served by the book itself: it typeset the page's math
        if browser.find_elements(By.CSS_SELECTOR, ".math"):
            WebDriverWait(browser, 20).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "mjx-container"),
                message=f"{page}: MathJax did not typeset the page's math")


def open_page(driver, url: str) -> None:
    """Load ``url`` and wait until it is the page shown, loaded, its figure mounted.

    ``get`` can return before the new document replaces the old one (seen once in CI,
    on a loaded machine: the widget test found the previous page's DOM, or none), so
    the wait checks the URL, the document's state and the mounted figure.
    """
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.current_url == url
        and d.execute_script("return document.readyState") == "complete"
        and d.find_elements(By.CSS_SELECTOR, "div.adam-playground.ap-ready"),
        message=f"{url}: the page or its interactive figure did not load "
                f"(the browser shows {driver.current_url})")


def signature(widget) -> str:
    return widget.get_attribute("data-signature")


@pytest.mark.parametrize("page", sorted(WIDGETS))
def test_widget_answers_keyboard_and_reset(site, browser, page):
    kind, problem = WIDGETS[page]
    browser.set_window_size(1280, 1000)
    open_page(browser, site + page)
    widgets = browser.find_elements(By.CSS_SELECTOR, "div.adam-playground")
    assert [w.get_attribute("data-widget") for w in widgets] == [kind], page
    (widget,) = widgets
    assert "ap-ready" in widget.get_attribute("class"), "the script did not mount the figure"
    if problem:
        assert widget.get_attribute("data-problem") == problem
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", widget)
    sliders = widget.find_elements(By.CSS_SELECTOR, "input[type=range]")
    assert len(sliders) >= 3
    for s in sliders:  # each slider is labelled and shows its value
        label = widget.find_element(By.CSS_SELECTOR, f"label[for='{s.get_attribute('id')}']")
        value = widget.find_element(By.CSS_SELECTOR, f"output[for='{s.get_attribute('id')}']")
        assert label.text and value.text
    name = page.split("/")[-1].removesuffix(".html")
    SHOTS.mkdir(parents=True, exist_ok=True)
    widget.screenshot(str(SHOTS / f"{name}-before.png"))

    before = signature(widget)
    first = sliders[0]
    shown = widget.find_element(By.CSS_SELECTOR, f"output[for='{first.get_attribute('id')}']")
    old_value = shown.text
    first.send_keys(Keys.ARROW_RIGHT * 6)  # the keyboard moves the slider
    assert shown.text != old_value
    assert signature(widget) != before, "moving the slider did not change the figure"
    widget.screenshot(str(SHOTS / f"{name}-moved.png"))
    widget.find_element(By.CSS_SELECTOR, "button.ap-reset").send_keys(Keys.ENTER)
    assert signature(widget) == before and shown.text == old_value
    assert errors(browser) == []


@pytest.mark.parametrize("page", sorted(WIDGETS))
def test_widget_fits_a_phone(site, browser, page):
    browser.set_window_size(390, 844)
    open_page(browser, site + page)
    widget = browser.find_element(By.CSS_SELECTOR, "div.adam-playground")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", widget)
    width = browser.execute_script("return arguments[0].getBoundingClientRect().width", widget)
    inner = browser.execute_script("return window.innerWidth")
    assert width <= inner
    for canvas in widget.find_elements(By.TAG_NAME, "canvas"):
        assert canvas.size["width"] <= width
    overflow = browser.execute_script("return arguments[0].scrollWidth - arguments[0].clientWidth",
                                      widget)
    assert overflow <= 1
    name = re.sub(r"\W", "_", page.split("/")[-1].removesuffix(".html"))
    widget.screenshot(str(SHOTS / f"{name}-phone.png"))
    assert errors(browser) == []
