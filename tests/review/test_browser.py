"""The review page in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven
by Selenium, on a run with a hostile instance in it."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.review.conftest import serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Chromium and its driver: apt-get install chromium chromium-driver (CI installs them)",
)
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
SCREENSHOT = os.environ.get("TARGEN_REVIEW_SCREENSHOT")  # also save the screenshot there, to look at


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1400"):
        options.add_argument(argument)
    # The Debian driver by its path: Selenium Manager, which would download one, is never asked.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def wait_ready(driver):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready"))


def test_filter_annotate_three_reload_and_find_them_kept(run, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    records = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    records[0]["message"] = HOSTILE
    (run / "data.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    with serving(run) as url:
        browser.get(url + "/#browse")
        wait_ready(browser)
        shown = browser.find_elements(By.CSS_SELECTOR, "#instances article")
        assert len(shown) == len(records)
        assert browser.title == "targen review" and HOSTILE in browser.find_element(By.ID, "instances").text

        Select(browser.find_element(By.ID, "f-relabeled")).select_by_value("yes")
        browser.find_element(By.ID, "f-apply").click()
        relabeled = {r["id"] for r in records if r["relabeled"]}
        WebDriverWait(browser, 5).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#instances article")) == len(relabeled)
        )
        ids = {
            a.get_attribute("data-id") for a in browser.find_elements(By.CSS_SELECTOR, "#instances article")
        }
        assert ids == relabeled
        browser.find_element(By.ID, "f-text").send_keys(records[1]["subject"])
        Select(browser.find_element(By.ID, "f-relabeled")).select_by_value("")
        browser.find_element(By.ID, "f-apply").click()
        WebDriverWait(browser, 5).until(
            lambda d: d.find_element(By.ID, "browse-count").text.endswith("of 1 instances")
        )

        browser.find_element(By.ID, "tab-review").click()
        given = {}
        for done, choice in enumerate(('"low"', "not-instance", '"critical"'), 1):
            current = browser.find_element(By.CSS_SELECTOR, "#pending article").get_attribute("data-id")
            browser.find_element(By.CSS_SELECTOR, f"#pending button[data-label='{choice}']").click()
            WebDriverWait(browser, 5).until(
                lambda d, done=done: d.find_element(By.ID, "progress").text.startswith(f"{done} of ")
            )
            given[current] = choice

        browser.refresh()
        wait_ready(browser)
        answered = browser.find_elements(By.CSS_SELECTOR, "#answered article")
        assert {a.get_attribute("data-id") for a in answered} == set(given)
        pending = browser.find_element(By.CSS_SELECTOR, "#pending article").get_attribute("data-id")
        assert pending not in given
        assert browser.find_element(By.ID, "progress").text.startswith("3 of ")
        assert "of 3" in browser.find_element(By.ID, "agreement").text
        browser.save_screenshot(str(tmp_path / "review.png"))
        if SCREENSHOT:
            browser.save_screenshot(SCREENSHOT)
    assert (tmp_path / "review.png").stat().st_size > 10_000
    lines = [json.loads(line) for line in (run / "review.jsonl").read_text().splitlines()]
    assert {line["id"]: line["not_instance"] or json.dumps(line["label"]) for line in lines} == {
        i: True if choice == "not-instance" else choice for i, choice in given.items()
    }
    assert Path(run / "review.jsonl").read_text().count("\n") == 3
