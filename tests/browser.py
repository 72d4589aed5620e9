"""A real Chromium (Debian's `chromium` and `chromedriver`) driven by Selenium, with small
page helpers: open, fill a labelled field, click by visible text, wait for text, screenshot."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parent.parent
# Screenshots go to results/console/; `make screenshots` points this at docs/console/.
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", ROOT / "results" / "console"))
WAIT_SECONDS = 20


class Browser:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self._profile = tempfile.mkdtemp(prefix="chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,800",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            f"--user-data-dir={self._profile}",
        ):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self._profile, ignore_errors=True)

    def open(self, path: str) -> None:
        self.driver.get(path if path.startswith("http") else self.base_url + path)

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def fill(self, label: str, value: str) -> None:
        """Types into the field whose <label> says `label` (emptied first)."""
        field = self.field(label)
        field.clear()
        field.send_keys(value)

    def field(self, label: str):  # noqa: ANN201 - a WebElement
        element = self.driver.find_element(By.XPATH, f"//label[normalize-space()={_xpath(label)}]")
        target = element.get_attribute("for")
        if target:
            return self.driver.find_element(By.ID, target)
        return element.find_element(By.TAG_NAME, "input")

    def select(self, label: str, option: str) -> None:
        """Chooses `option`, waiting out a part of the page that htmx is replacing."""

        def chosen(_driver: object) -> bool:
            try:
                field = self.field(label)
                field.find_element(
                    By.XPATH, f".//option[normalize-space()={_xpath(option)}]"
                ).click()
            except (NoSuchElementException, StaleElementReferenceException):
                return False
            return True

        WebDriverWait(self.driver, WAIT_SECONDS, 0.1).until(chosen)

    def check(self, label_start: str) -> None:
        """Ticks the checkbox or radio button whose label starts with `label_start`."""
        xpath = f"//label[starts-with(normalize-space(), {_xpath(label_start)})]//input"
        box = self.driver.find_element(By.XPATH, xpath)
        if not box.is_selected():
            box.click()

    def click(self, text: str) -> None:
        """Clicks the button or link that says `text`."""
        self.driver.find_element(By.XPATH, _button_or_link(text)).click()

    def has(self, text: str) -> bool:
        """The page has a button or link that says `text`."""
        return bool(self.driver.find_elements(By.XPATH, _button_or_link(text)))

    def wait_for(self, text: str, timeout: float = WAIT_SECONDS) -> None:
        """Until the page shows `text`; fails with what it shows instead."""

        def shown(_driver: object) -> bool:
            try:
                return text in self.text()
            except WebDriverException:  # the page is being replaced under us
                return False

        try:
            WebDriverWait(self.driver, timeout, 0.1).until(shown)
        except TimeoutException:
            raise AssertionError(f"{text!r} never showed; the page says:\n{self.text()}") from None

    def shot(self, name: str, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if full_page:
            height = self.driver.execute_script("return document.body.scrollHeight")
            self.driver.set_window_size(1280, min(max(800, height), 2400))
        self.driver.save_screenshot(str(path))
        if full_page:
            self.driver.set_window_size(1280, 800)
        return path


def _button_or_link(text: str) -> str:
    return f"//button[normalize-space()={_xpath(text)}] | //a[normalize-space()={_xpath(text)}]"


def _xpath(text: str) -> str:
    """A string literal for XPath 1.0, whatever quotes it holds."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    parts = text.split("'")
    return "concat(" + ', "\'", '.join(f"'{p}'" for p in parts) + ")"
