"""The page and the HTML galleries in real headless Chromium, served by `thumbsearch serve`
over a real-photo corpus.

``DOCS_SCREENSHOTS=docs python -m pytest -m browser tests/web/test_web_browser.py`` also
writes the pictures the docs show: docs/web-page.png (1280 px wide), docs/web-page-400.png
(400 px), docs/watchlist.png (the Watchlist tab) and docs/duplicates.png (the
`duplicates --html` gallery).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from search.eval.samples import write_ytdlp_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
BIN = Path(sys.executable).parent
# Where the docs' screenshots go when asked for (read before the tests clear the environment).
SCREENSHOTS = os.environ.get("DOCS_SCREENSHOTS", "")
STRENGTHS = {"strong", "medium", "weak"}

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but Debian's chromium/chromium-driver are not installed "
                    "(.ci/run installs them with apt-get)", pytrace=False)
    pytest.skip("chromium and chromium-driver are not installed "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THUMBSEARCH_")}
    env["THUMBSEARCH_HOME"] = str(root / "home")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A corpus of sample photos (two pages to browse) and `thumbsearch serve` on loopback;
    (base URL, a photo); the home is the photo's grandparent's ``home``."""
    root = tmp_path_factory.mktemp("site")
    env = _env(root)
    samples = write_ytdlp_folder(root / "thumbs", variants_per_photo=3)
    subprocess.run([str(BIN / "thumbsearch"), "add", str(root / "thumbs")], env=env,
                   check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = root / "serve.log"
    with log.open("wb") as errors:
        server = subprocess.Popen([str(BIN / "thumbsearch"), "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=errors)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/api/stats", timeout=2) as answer:
                    answer.read()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.1)
        yield base, samples[0].path
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium through chromedriver, with a fresh profile and no network extras."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER or ""),
                              options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, predicate: Any, timeout: float = 90) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(predicate)


def _click(driver: Any, selector: str) -> None:
    """Click the element ``selector`` finds, finding it again when the page re-rendered it
    between the find and the click."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(d: Any) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, selector).click()
        except StaleElementReferenceException:
            return False
        return True

    _wait(driver, attempt)


def _result_ids(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [img.get_attribute("data-video-id")
            for img in driver.find_elements(By.CSS_SELECTOR, "#results img")]


def _screenshot_not_blank(driver: Any, path: Path) -> None:
    driver.save_screenshot(str(path))
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert pixels.std() > 20, f"{path} looks blank"
    assert len(np.unique(pixels.astype(np.uint8))) > 50


def test_search_click_and_upload(site: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base, photo = site
    with urllib.request.urlopen(base + "/api/videos?per_page=3") as answer:
        ids = answer.read().decode()
    first = ids.split('"video_id":"', 1)[1].split('"', 1)[0]
    browser.get(base + "/")
    box = browser.find_element(By.ID, "ref")
    box.send_keys(f"https://youtu.be/{first}")
    browser.find_element(By.ID, "search-button").click()
    _wait(browser, lambda d: len(_result_ids(d)) >= 5)
    _wait(browser, lambda d: d.execute_script(
        "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"))
    assert first not in _result_ids(browser)
    _screenshot_not_blank(browser, tmp_path / "search.png")

    clicked = _result_ids(browser)[0]
    browser.find_element(By.CSS_SELECTOR, f'#results img[data-video-id="{clicked}"]').click()
    _wait(browser, lambda d: d.find_element(By.ID, "ref").get_attribute("value") == clicked
          and clicked not in _result_ids(d) and len(_result_ids(d)) >= 5)
    assert browser.current_url.endswith(f"/?v={clicked}")
    _screenshot_not_blank(browser, tmp_path / "clicked.png")

    browser.find_element(By.ID, "upload").send_keys(str(photo))
    _wait(browser, lambda d: "query image" in d.find_element(By.ID, "query").text)
    _wait(browser, lambda d: len(_result_ids(d)) >= 5)
    assert "error" not in (browser.find_element(By.ID, "status").get_attribute("class") or "")
    _screenshot_not_blank(browser, tmp_path / "upload.png")

    browser.find_element(By.CSS_SELECTOR, 'nav button[data-tab="duplicates"]').click()
    browser.find_element(By.ID, "dup-button").click()
    _wait(browser, lambda d: "groups above" in d.find_element(By.ID, "dup-status").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#groups .group")
    logs = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not logs, logs


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.loads(answer.read())


def _save(driver: Any, name: str) -> None:
    """A screenshot for the docs, when DOCS_SCREENSHOTS names a folder (256 colours)."""
    if not SCREENSHOTS:
        return
    path = Path(SCREENSHOTS) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def _heights(driver: Any, selector: str) -> set[int]:
    return set(driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(e => Math.round(e.getBoundingClientRect().height))", selector))


def test_landing_history_reload_strengths_and_errors(site: tuple[str, Path],
                                                     browser: Any) -> None:
    from selenium.webdriver.common.by import By

    base, _ = site
    browser.get(base + "/")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#landing-grid img")) >= 4)
    assert "The corpus holds" in browser.find_element(By.ID, "landing-note").text
    start = browser.find_elements(By.CSS_SELECTOR, "#landing-grid img")[0]
    first = start.get_attribute("data-video-id")
    start.click()
    _wait(browser, lambda d: d.current_url.endswith(f"/?v={first}") and len(_result_ids(d)) >= 5)
    assert browser.find_element(By.ID, "landing").get_attribute("hidden") is not None
    before = _result_ids(browser)

    clicked = before[0]
    browser.find_element(By.CSS_SELECTOR, f'#results img[data-video-id="{clicked}"]').click()
    _wait(browser, lambda d: d.current_url.endswith(f"/?v={clicked}")
          and len(_result_ids(d)) >= 5 and _result_ids(d) != before)
    after = _result_ids(browser)

    browser.back()
    _wait(browser, lambda d: d.current_url.endswith(f"/?v={first}") and _result_ids(d) == before)
    assert browser.find_element(By.ID, "ref").get_attribute("value") == first
    browser.forward()
    _wait(browser, lambda d: d.current_url.endswith(f"/?v={clicked}") and _result_ids(d) == after)
    browser.refresh()
    _wait(browser, lambda d: _result_ids(d) == after)
    assert browser.find_element(By.ID, "ref").get_attribute("value") == clicked

    # Every score carries the strength the API gives it; cells are one size.
    answer = _json(f"{base}/api/similar/{clicked}?k=12")
    classes = browser.execute_script(
        "return [...document.querySelectorAll('#results .score')].map(e => e.className)")
    assert [set(c.split()) & STRENGTHS for c in classes] == [
        {r["strength"]} for r in answer["results"]]
    _wait(browser, lambda d: d.execute_script(
        "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"))
    assert len(_heights(browser, "#results .card")) == 1
    assert len(_heights(browser, "#results .card img")) == 1
    _save(browser, "web-page.png")

    box = browser.find_element(By.ID, "ref")
    box.clear()
    box.send_keys("not a video id")
    browser.find_element(By.ID, "search-button").click()
    _wait(browser, lambda d: "error" in (d.find_element(By.ID, "status").get_attribute("class")
                                         or ""))
    assert not _result_ids(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, "#query *")
    logs = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"
            and "/api/similar/" not in e.get("message", "")]  # the 400 the error came from
    assert not logs, logs


def test_paging_stops_at_the_last_page(site: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    base, _ = site
    pages = _json(f"{base}/api/videos")["pages"]
    assert pages == 2

    def info(d: Any) -> str:
        return str(d.find_element(By.ID, "page-info").text)

    def shown(d: Any) -> int:
        return len(d.find_elements(By.CSS_SELECTOR, "#browse .card"))

    browser.get(base + "/")
    browser.find_element(By.CSS_SELECTOR, 'nav button[data-tab="browse"]').click()
    _wait(browser, lambda d: info(d).startswith("page 1 of 2") and shown(d) > 0)
    assert browser.current_url.endswith("/?page=1")
    assert not browser.find_element(By.ID, "next").get_attribute("disabled")
    assert browser.find_element(By.ID, "prev").get_attribute("disabled")
    browser.find_element(By.ID, "next").click()
    _wait(browser, lambda d: info(d).startswith("page 2 of 2") and shown(d) > 0)
    assert browser.current_url.endswith("/?page=2")
    assert browser.find_element(By.ID, "next").get_attribute("disabled")
    browser.back()
    _wait(browser, lambda d: info(d).startswith("page 1 of 2"))

    browser.get(base + "/?page=7")  # past the end: the last page, and the address says so
    _wait(browser, lambda d: info(d).startswith("page 2 of 2") and shown(d) > 0)
    assert browser.current_url.endswith("/?page=2")
    assert browser.find_element(By.ID, "next").get_attribute("disabled")


def test_the_page_fits_400_pixels(site: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    base, _ = site
    browser.set_window_size(400, 900)
    assert browser.execute_script("return window.innerWidth") <= 400
    first = _json(f"{base}/api/videos?per_page=1")["videos"][0]["video_id"]

    def fits(d: Any) -> bool:
        return bool(d.execute_script(
            "return document.documentElement.scrollWidth <= 400"))

    browser.get(base + "/")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#landing-grid img")) >= 4)
    assert fits(browser)
    browser.get(f"{base}/?v={first}")
    _wait(browser, lambda d: len(_result_ids(d)) >= 5)
    _wait(browser, lambda d: d.execute_script(  # lazy images below the fold never load
        "return [...document.images].filter(i => i.getBoundingClientRect().top < innerHeight)"
        ".every(i => i.complete && i.naturalWidth > 0)"))
    assert fits(browser)
    header = browser.find_element(By.TAG_NAME, "header").rect
    assert header["x"] + header["width"] <= 400
    _save(browser, "web-page-400.png")
    browser.get(f"{base}/?page=1")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#browse .card")) > 0)
    assert fits(browser)
    browser.find_element(By.CSS_SELECTOR, 'nav button[data-tab="duplicates"]').click()
    browser.find_element(By.ID, "dup-button").click()
    _wait(browser, lambda d: "groups above" in d.find_element(By.ID, "dup-status").text)
    assert fits(browser)


def test_the_duplicates_gallery_in_chromium(site: tuple[str, Path], browser: Any,
                                            tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _, photo = site
    page = tmp_path / "duplicates.html"
    subprocess.run([str(BIN / "thumbsearch"), "duplicates", "--threshold", "0.9",
                    "--html", str(page)], env=_env(photo.parents[1]), check=True,
                   capture_output=True, timeout=300)
    browser.get(page.as_uri())
    groups = browser.find_elements(By.CSS_SELECTOR, ".gallery .heading")
    assert groups and not browser.find_elements(By.CSS_SELECTOR, ".noimg")
    assert all("first published" in g.text and "T" not in g.text.split("published")[1]
               for g in groups)
    assert len(_heights(browser, ".gallery img")) == 1
    classes = browser.execute_script(
        "return [...document.querySelectorAll('.gallery .score')].map(e => e.className)")
    assert classes and all(set(c.split()) & STRENGTHS for c in classes)
    # A date never breaks inside: each is one line.
    dates = browser.find_elements(By.CSS_SELECTOR, ".gallery .date")
    line = browser.execute_script("return parseFloat(getComputedStyle(arguments[0]).lineHeight)"
                                  " || 16", dates[0])
    assert all(d.rect["height"] <= line * 1.5 for d in dates)
    browser.set_window_size(1280, 900)
    _save(browser, "duplicates.png")
    browser.set_window_size(400, 900)
    assert browser.execute_script("return document.documentElement.scrollWidth <= 400")


def test_the_similar_page_and_the_eval_report_fit_400_pixels(
        site: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base, photo = site
    env = _env(photo.parents[1])
    first = _json(f"{base}/api/videos?per_page=1")["videos"][0]["video_id"]
    page = tmp_path / "similar.html"
    subprocess.run([str(BIN / "thumbsearch"), "similar", "-k", "8", "--html", str(page),
                    "--", first], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([str(BIN / "thumbsearch"), "make-neardup", "--sample-photos",
                    str(tmp_path / "set"), "--variants", "2"], env=env, check=True,
                   capture_output=True, timeout=300)
    subprocess.run([str(BIN / "thumbsearch"), "eval", str(tmp_path / "set"), "-k", "1,5,10",
                    "--report", str(tmp_path / "report")], env=env, check=True,
                   capture_output=True, timeout=600)
    report = next((tmp_path / "report").glob("*.html"))
    for target in (page, report):
        browser.set_window_size(1280, 900)
        browser.get(target.as_uri())
        cells = ".gallery img" if target == page else "img"
        assert browser.find_elements(By.CSS_SELECTOR, cells), target
        if target == page:
            assert len(_heights(browser, ".gallery img")) == 1  # uniform 16:9 cells
            classes = browser.execute_script(
                "return [...document.querySelectorAll('.score')].map(e => e.className)")
            assert classes and all(set(c.split()) & STRENGTHS for c in classes)
        browser.set_window_size(400, 900)
        assert browser.execute_script("return window.innerWidth") <= 400
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"), target


def test_watch_a_search_result_and_see_its_matches(site: tuple[str, Path], browser: Any,
                                                    tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base, photo = site
    original = photo.stem.rsplit("[", 1)[1].rstrip("]")  # "Title [VIDEO_ID].jpg"
    browser.get(f"{base}/?v={original}")
    _wait(browser, lambda d: len(_result_ids(d)) >= 5)
    top = _result_ids(browser)[0]
    top_score = _json(f"{base}/api/similar/{original}?k=1")["results"][0]["score"]
    browser.find_element(By.CSS_SELECTOR, "#query button.watch").click()  # the query first
    _wait(browser, lambda d: d.find_element(By.ID, "status").text.startswith(
        f"watching {original}"))
    browser.find_element(By.CSS_SELECTOR, f'#results button.watch[data-video-id="{top}"]').click()
    _wait(browser, lambda d: d.find_element(By.ID, "status").text.startswith(f"watching {top}"))
    button = browser.find_element(By.CSS_SELECTOR, f'#results button.watch[data-video-id="{top}"]')
    assert button.text == "watched" and not button.is_enabled()

    browser.find_element(By.CSS_SELECTOR, 'nav button[data-tab="watchlist"]').click()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".watch-item")) == 2)
    assert browser.current_url.endswith("/?tab=watchlist")
    listed = {i["name"]: i for i in _json(f"{base}/api/watch")["items"]}
    assert list(listed) == [original, top]
    assert listed[top]["title"] in browser.find_element(By.ID, "watchlist").text
    threshold = listed[top]["threshold"]
    for name, item in listed.items():
        block = browser.find_element(By.CSS_SELECTOR, f'.watch-item[data-name="{name}"]')
        shown = [img.get_attribute("data-video-id")
                 for img in block.find_elements(By.CSS_SELECTOR, ".card img")]
        assert shown == [m["video_id"] for m in item["latest_matches"]]
        classes = [e.get_attribute("class") for e in block.find_elements(By.CSS_SELECTOR,
                                                                        ".card .score")]
        assert [set(c.split()) & STRENGTHS for c in classes] == [
            {m["strength"]} for m in item["latest_matches"]]
        assert f"{item['matches_total']} match" in block.text
    # The original scored top_score against the watched result: it is that item's match
    # exactly when that reaches the threshold.
    matched = [m["video_id"] for m in listed[top]["latest_matches"]]
    assert (original in matched) == (top_score >= threshold)
    assert listed[original]["latest_matches"]  # the query's re-uploads
    _wait(browser, lambda d: d.execute_script(
        "return [...document.images].filter(i => i.getBoundingClientRect().top < innerHeight)"
        ".every(i => i.complete && i.naturalWidth > 0)"))
    _save(browser, "watchlist.png")
    browser.set_window_size(400, 900)
    assert browser.execute_script("return document.documentElement.scrollWidth <= 400")
    browser.set_window_size(1280, 900)

    # "search from it" on a match searches from that video.
    first_match = listed[original]["latest_matches"][0]["video_id"]
    _click(browser, f'.watch-item[data-name="{original}"] a.search-from')
    _wait(browser, lambda d: d.current_url.endswith(f"/?v={first_match}")
          and len(_result_ids(d)) >= 5)
    browser.back()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".watch-item")) == 2)

    # Remove asks first: dismissed, nothing changes; accepted, the item goes.
    remove = f'.watch-item[data-name="{top}"] button.remove'
    _click(browser, remove)
    browser.switch_to.alert.dismiss()
    assert len(_json(f"{base}/api/watch")["items"]) == 2
    _click(browser, remove)
    browser.switch_to.alert.accept()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".watch-item")) == 1)
    assert [i["name"] for i in _json(f"{base}/api/watch")["items"]] == [original]

    # A plain HTML form on another page (a file: its Origin is "null") cannot add or remove.
    page = tmp_path / "elsewhere.html"
    page.write_text(f'<form method="post" action="{base}/api/watch">'
                    f'<input name="video" value="{top}"></form>'
                    "<script>document.forms[0].submit()</script>")
    browser.get(page.as_uri())
    _wait(browser, lambda d: "may not send POST" in d.find_element(By.TAG_NAME, "body").text)
    assert [i["name"] for i in _json(f"{base}/api/watch")["items"]] == [original]

    browser.get(f"{base}/?tab=watchlist")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".watch-item")) == 1)
    browser.find_element(By.CSS_SELECTOR, f'.watch-item[data-name="{original}"] button.remove'
                         ).click()
    browser.switch_to.alert.accept()
    _wait(browser, lambda d: "Nothing is watched yet" in d.find_element(By.ID, "watchlist").text)
    logs = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"
            and "/api/watch" not in e.get("message", "")  # the refused form's 403 ...
            and "/favicon.ico" not in e.get("message", "")]  # ... shown as a page
    assert not logs, logs
