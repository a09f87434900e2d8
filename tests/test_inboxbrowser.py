# -*- test-case-name: tests.test_inboxbrowser -*-
"""
Browser tests of the web inbox (L{twisted_smtpd._inboxweb}): a real headless
Chromium driven by selenium, mail sent over real SMTP, all on 127.0.0.1.

They need Debian's C{chromium} and C{chromium-driver} and the C{selenium}
package (C{.ci/run} installs them); where any is missing or the browser
cannot start, they are skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import smtplib
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from tests._support import listen
from twisted_smtpd._inboxweb import inboxSite
from twisted_smtpd.handlers import Inbox

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - depends on the machine
    webdriver = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

#: Seconds the browser is given for anything to show.
WAIT = 30

PARTS = (
    "From: Bob <bob@example.com>\r\n"
    "To: Ann <ann@example.com>\r\n"
    "Subject: Your invoice\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b1"\r\n'
    "\r\n"
    "--b1\r\n"
    'Content-Type: multipart/alternative; boundary="b2"\r\n'
    "\r\n"
    "--b2\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Plain words\r\n"
    "--b2\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<p><b>Bold words</b></p>\r\n"
    "--b2--\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    'Content-Disposition: attachment; filename="notes.txt"\r\n'
    "\r\n"
    "attached text\r\n"
    "--b1--\r\n"
)

HOSTILE = (
    "From: <mallory@example.com>\r\n"
    "Subject: <img src=x onerror=\"window.pwned='subject'\">\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<script>window.parent.pwned='script'; document.title='pwned'</script>\r\n"
    "<img src=x onerror=\"window.parent.pwned='onerror'\">\r\n"
    "<p>hostile</p>\r\n"
)

BROKEN = (
    "Subject: =?bogus?x?zz?=\r\n"
    "Content-Type: multipart/mixed; boundary=x\r\n"
    "\r\n"
    "--x\r\n"
    "Content-Type: text/plain; charset=nonexistent\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "!!!!\r\n"
)


def startBrowser() -> Any:
    """
    Start headless Chromium, or raise L{SkipTest} saying why it cannot.
    """
    if webdriver is None:
        raise SkipTest("selenium is not installed (pip install selenium)")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise SkipTest(
                f"{path} not found (apt-get install chromium chromium-driver)"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as error:
        raise SkipTest(f"Chromium cannot start here: {error.msg}") from None


class InboxBrowserTests(TestCase):
    """
    The page in a real browser (integration tests, slow: a browser starts
    for each test).
    """

    slow = True
    timeout = 120

    def setUp(self) -> Deferred[None]:
        self.inbox = Inbox()
        self.smtpPort = listen(self, self.inbox).port
        web = reactor.listenTCP(0, inboxSite(self.inbox), interface="127.0.0.1")
        self.addCleanup(web.stopListening)
        self.url = f"http://127.0.0.1:{web.getHost().port}/"
        started = deferToThread(startBrowser)

        def keep(driver: Any) -> None:
            self.driver = driver
            self.addCleanup(deferToThread, driver.quit)

        return started.addCallback(keep)

    def inBrowser(self, steps: Callable[[Any], None]) -> Deferred[None]:
        """
        Run blocking browser steps in a thread, while the reactor serves.
        """
        return deferToThread(steps, self.driver)

    def send(self, message: str, to: str = "ann@example.com") -> None:
        """
        Send a message over SMTP (from the browser thread).
        """
        with smtplib.SMTP("127.0.0.1", self.smtpPort, timeout=WAIT) as client:
            client.sendmail("bob@example.com", [to], message.encode("utf-8"))

    def rows(self, driver: Any) -> list[str]:
        """
        The text of each row of the list, read at once (the page rebuilds
        the list as it searches).
        """
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('#list tbody tr'),"
            " (row) => row.innerText)"
        )

    def until(self, driver: Any, condition: Callable[[Any], Any]) -> Any:
        return WebDriverWait(driver, WAIT).until(condition)

    def untilFrameHas(self, driver: Any, text: str) -> None:
        """
        Wait until the body of the current frame shows C{text}.
        """
        body = (By.TAG_NAME, "body")
        self.until(driver, lambda d: text in d.find_element(*body).text)

    def errors(self, driver: Any) -> list[str]:
        """
        The console's errors, but for the sandbox's own report of the
        scripts it blocked.
        """
        return [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "sandboxed" not in entry["message"]
        ]

    def open(self, driver: Any, subject: str) -> None:
        """
        Click the row whose text has C{subject} and wait for its view.
        """
        click = (
            "for (const row of document.querySelectorAll('#list tbody tr'))"
            " if (row.innerText.includes(arguments[0])) { row.click(); return true }"
            " return false"
        )
        self.until(driver, lambda d: d.execute_script(click, subject))
        self.until(driver, lambda d: subject in d.find_element(By.ID, "subject").text)

    def test_liveOpenSearchDelete(self) -> None:
        """
        Mail appears live; its view shows the text part, the HTML part in
        the frame and an attachment that downloads; search filters; delete
        one, then all.
        """

        def steps(driver: Any) -> None:
            driver.get(self.url)
            self.until(driver, lambda d: d.find_element(By.ID, "empty").is_displayed())
            self.send(PARTS)
            self.send("Subject: Other\r\n\r\nx\r\n", to="carol@example.com")
            self.until(driver, lambda d: len(self.rows(d)) == 2)
            self.assertIn("Other", self.rows(driver)[0])
            self.open(driver, "Your invoice")
            text = driver.find_element(By.ID, "text").text
            self.assertEqual(text.strip(), "Plain words")
            link = driver.find_element(By.CSS_SELECTOR, "#attachments a")
            self.assertEqual(link.get_attribute("download"), "notes.txt")
            downloaded = driver.execute_async_script(
                "fetch(arguments[0]).then(r => r.text()).then(arguments[1])",
                link.get_attribute("href"),
            )
            self.assertEqual(downloaded, "attached text")
            driver.find_element(By.CSS_SELECTOR, "[data-tab=html]").click()
            driver.switch_to.frame(driver.find_element(By.ID, "html"))
            self.until(
                driver,
                lambda d: "Bold words" in d.find_element(By.TAG_NAME, "body").text,
            )
            driver.switch_to.default_content()
            driver.find_element(By.ID, "search").send_keys("carol")
            self.until(driver, lambda d: len(self.rows(d)) == 1)
            self.assertIn("Other", self.rows(driver)[0])
            driver.find_element(By.ID, "search").clear()
            driver.find_element(By.ID, "search").send_keys(" ")
            self.until(driver, lambda d: len(self.rows(d)) == 2)
            driver.find_element(By.ID, "delete-one").click()
            self.until(driver, lambda d: len(self.rows(d)) == 1)
            self.assertEqual(len(self.inbox), 1)
            driver.find_element(By.ID, "delete-all").click()
            self.until(driver, lambda d: d.find_element(By.ID, "empty").is_displayed())
            self.assertEqual(len(self.inbox), 0)
            self.assertEqual(self.errors(driver), [])

        return self.inBrowser(steps)

    def test_noScriptRuns(self) -> None:
        """
        A message whose subject and HTML part carry C{<script>} and
        C{onerror=} runs nothing: in the list, in the view, in the frame.
        """

        def steps(driver: Any) -> None:
            driver.get(self.url)
            self.send(HOSTILE)
            self.open(driver, "onerror")
            driver.find_element(By.CSS_SELECTOR, "[data-tab=html]").click()
            driver.switch_to.frame(driver.find_element(By.ID, "html"))
            self.until(
                driver, lambda d: "hostile" in d.find_element(By.TAG_NAME, "body").text
            )
            driver.switch_to.default_content()
            self.assertIsNone(driver.execute_script("return window.pwned"))
            self.assertNotEqual(driver.title, "pwned")
            self.assertEqual(driver.find_elements(By.CSS_SELECTOR, "#list img"), [])

        return self.inBrowser(steps)

    def test_longAndBroken(self) -> None:
        """
        A subject of 10,000 characters and a message with broken MIME show
        without an error in the console.
        """

        def steps(driver: Any) -> None:
            driver.get(self.url)
            # Folded into lines of 100 characters, as SMTP allows no longer.
            subject = "\r\n ".join(["y" * 99] * 101)
            self.send(f"Subject: {subject}\r\n\r\nlong\r\n")
            self.send(BROKEN)
            self.until(driver, lambda d: len(self.rows(d)) == 2)
            self.open(driver, "bogus")
            self.assertEqual(
                driver.find_element(By.ID, "subject").text, "=?bogus?x?zz?="
            )
            self.open(driver, "yyyy")
            self.assertEqual(driver.find_element(By.ID, "text").text.strip(), "long")
            self.assertEqual(self.errors(driver), [])

        return self.inBrowser(steps)
