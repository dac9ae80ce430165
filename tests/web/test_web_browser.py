"""The page in real headless Chromium, served by `thumbsearch serve` over a real-photo corpus."""

from __future__ import annotations

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

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but Debian's chromium/chromium-driver are not installed "
                    "(.ci/run installs them with apt-get)", pytrace=False)
    pytest.skip("chromium and chromium-driver are not installed "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A corpus of sample photos and `thumbsearch serve` on loopback; (base URL, a photo)."""
    root = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("THUMBSEARCH_")}
    env["THUMBSEARCH_HOME"] = str(root / "home")
    samples = write_ytdlp_folder(root / "thumbs", variants_per_photo=1)
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
