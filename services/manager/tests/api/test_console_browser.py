"""The web console in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's
chromedriver, against the console served by gunicorn in front of two real agents (the ``api`` fixture).

Every screen is saved as a PNG under this module's temporary directory (the path is printed).
"""

from __future__ import annotations

import base64
import collections.abc
import os
import pathlib
from typing import Any

import pytest
from selenium import webdriver
from selenium.common import exceptions as selenium_errors
from selenium.webdriver.chrome import service as chrome_service
from selenium.webdriver.common import action_chains, by, keys
from selenium.webdriver.remote import webelement

from ..polling import wait_until
from .conftest import Api, b64

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
#: How long the console may take to show what the API answered (a refresh runs every 5 s).
SHOWN = 15.0
ID = by.By.ID
CSS = by.By.CSS_SELECTOR
#: Every shown element with text of its own whose contrast with the background behind it is below WCAG's
#: 4.5:1 for normal text, as [tag, id or class, text, ratio].
LOW_CONTRAST = """
const channels = (text) => text.match(/[0-9.]+/g).map(Number);
const luminance = ([r, g, b]) => {
  const linear = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
};
const background = (element) => {
  for (let at = element; at; at = at.parentElement) {
    const found = channels(getComputedStyle(at).backgroundColor);
    if (found.length < 4 || found[3] > 0) return found;
  }
  return [255, 255, 255];
};
const low = [];
for (const element of document.querySelectorAll("body *")) {
  const ownText = [...element.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  if (!ownText || !element.checkVisibility()) continue;
  const [a, b] = [luminance(channels(getComputedStyle(element).color)), luminance(background(element))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) {
    const name = element.id || element.className;
    low.push([element.tagName, name, element.textContent.trim().slice(0, 40), ratio]);
  }
}
return low;
"""


class Console:
    """The console in one browser tab: what a person does, and what they see."""

    def __init__(self, driver: webdriver.Chrome, url: str, screens: pathlib.Path) -> None:
        self.driver = driver
        self.url = url
        self.screens = screens

    def fresh(self) -> None:
        """The console as a new tab shows it: signed out, nothing remembered, 1280x800."""
        self.viewport(1280, 800)
        self.driver.get(f"{self.url}/")

        def cleared() -> bool:
            # A page still signed in from the last test may remember a namespace after the clear.
            self.driver.execute_script("sessionStorage.clear()")
            self.driver.get(f"{self.url}/")
            return self.driver.execute_script("return sessionStorage.length") == 0

        wait_until(cleared, SHOWN, "a console that remembers nothing")
        self.wait_visible("screen-sign-in")

    def viewport(self, width: int, height: int) -> None:
        """The page's own size in CSS pixels (a window's size would include the browser's frame)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def find(self, element_id: str) -> webelement.WebElement:
        return self.driver.find_element(ID, element_id)

    def visible(self, element_id: str) -> bool:
        try:
            return self.find(element_id).is_displayed()
        except selenium_errors.NoSuchElementException:
            return False

    def wait_visible(self, element_id: str) -> None:
        wait_until(lambda: self.visible(element_id), SHOWN, f"#{element_id} shown")

    def wait_text(self, element_id: str, text: str) -> str:
        """The text of the element once it contains text."""
        found: str = wait_until(
            lambda: (shown := self.find(element_id).text) and text in shown and shown,
            SHOWN,
            f"{text!r} in #{element_id}",
        )
        return found

    def screenshot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.screens / f"{name}.png"))

    def sign_in(self, token: str) -> None:
        field = self.find("token")
        field.clear()
        # By keyboard: type the token and press Enter in its field.
        field.send_keys(token, keys.Keys.ENTER)

    def open_namespace(self, namespace: str) -> None:
        self.wait_visible("screen-list")
        field = self.find("namespace")
        field.clear()
        field.send_keys(namespace, keys.Keys.ENTER)

    def row(self, path: str) -> str | None:
        """The text of path's row in the list, None while it is not shown."""
        try:
            rows = self.driver.find_elements(CSS, f'#secret-rows tr[data-path="{path}"]')
            return str(rows[0].text) if rows and rows[0].is_displayed() else None
        except selenium_errors.StaleElementReferenceException:
            return None  # the list changed under our feet: ask again

    def open_secret(self, path: str) -> None:
        wait_until(lambda: self.row(path), SHOWN, f"{path} listed")
        self.driver.find_element(CSS, f'#secret-rows tr[data-path="{path}"] button').click()
        self.wait_text("secret-title", path)

    def choices(self) -> list[str]:
        """The namespaces the picker offers to choose, and those it suggests while typing."""
        buttons = self.driver.find_elements(CSS, "#namespace-choices button")
        options = self.driver.find_elements(CSS, "#namespace-options option")
        offered = [str(button.text) for button in buttons]
        assert offered == [str(option.get_attribute("value")) for option in options]
        return offered

    def pairs(self) -> list[webelement.WebElement]:
        return self.driver.find_elements(CSS, "#pairs li")

    def value_of(self, key: str) -> str:
        return str(self.driver.find_element(CSS, f'#secret-values li[data-key="{key}"] code').text)


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    found = tmp_path_factory.mktemp("console-screens")
    print(f"console screenshots: {found}")
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> collections.abc.Iterator[webdriver.Chrome]:
    """Headless Chromium through chromedriver, both Debian's: named explicitly, so Selenium Manager never
    looks for (or downloads) another."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.exists():
            pytest.fail(f"{program} is missing: install Debian's chromium and chromium-driver (make apt)")
    root = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--window-size=1280,800",
        f"--user-data-dir={root / 'profile'}",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        # Chromium's sandbox refuses to start as root (CI machines run the tests as root).
        options.add_argument("--no-sandbox")
    home = root / "home"
    home.mkdir()
    service = chrome_service.Service(
        executable_path=str(CHROMEDRIVER),
        log_output=str(root / "chromedriver.log"),
        # A home of its own: what Chromium leaves there stays out of the machine's home.
        env={**os.environ, "HOME": str(home)},
    )
    with pytest.MonkeyPatch.context() as patch:
        # Selenium Manager (which downloads what it cannot find) must not run: were it used, it would
        # fail here on a binary that does not exist.
        patch.setenv("SE_MANAGER_PATH", str(root / "no-selenium-manager"))
        driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


@pytest.fixture
def console(browser: webdriver.Chrome, api: Api, screens: pathlib.Path) -> Console:
    opened = Console(browser, api.url, screens)
    opened.fresh()
    return opened


def _put(api: Api, path: str, data: dict[str, bytes]) -> dict[str, Any]:
    response = api.call("POST", f"/api/v1/hsm/secrets/{path}", json={"data": _encoded(data)})
    assert response.status_code == 201, response.text
    written: dict[str, Any] = response.json()["data"]
    return written


def _key_of(pair: webelement.WebElement) -> str:
    return str(pair.find_element(CSS, ".pair-key").get_attribute("value"))


def _encoded(data: dict[str, bytes]) -> dict[str, str]:
    return {key: b64(value) for key, value in data.items()}


def _read(api: Api, path: str) -> dict[str, bytes] | None:
    response = api.call("GET", f"/api/v1/hsm/secrets/{path}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return {key: base64.b64decode(value) for key, value in response.json()["data"]["data"].items()}


def test_signing_in_shows_the_namespace_picker_and_the_devices_health(console: Console, api: Api) -> None:
    _put(api, "demo/database", {"username": b"app", "password": b"Xq3r-TT9z_c0LmQp"})
    console.screenshot("01-sign-in")
    console.sign_in("admin")
    console.wait_visible("screen-list")
    console.wait_text("who-name", "Signed in as admin")
    pool = console.wait_text("devices", "Pool Ready: 2 of 2 devices available")
    assert "Agents: 2 of 2 connected" in pool
    assert "hsm-a" in pool
    assert "hsm-b" in pool
    console.wait_text("namespace-choices", "demo")
    console.screenshot("02-namespace-picker")
    console.open_namespace("demo")
    row = wait_until(
        lambda: (text := console.row("demo/database")) and "In sync" in text and text,
        SHOWN,
        "demo/database listed, its copies in sync",
    )
    assert "hsm-a: v1" in row
    assert "hsm-b: v1" in row
    console.screenshot("03-secret-list")


def test_a_secret_created_in_the_console_is_on_the_devices_and_shown_masked(
    console: Console, api: Api
) -> None:
    console.sign_in("team-a")
    console.open_namespace("team-a")
    console.wait_text("list-title", "Secrets in team-a")
    console.find("new-secret").click()
    console.wait_visible("screen-editor")
    console.find("secret-name").send_keys("created")
    pair = console.pairs()[0]
    pair.find_element(CSS, ".pair-key").send_keys("password")
    pair.find_element(CSS, ".pair-value").send_keys("first value")
    console.find("add-pair").click()
    pair = console.pairs()[1]
    pair.find_element(CSS, ".pair-key").send_keys("user")
    pair.find_element(CSS, ".pair-value").send_keys("app")
    console.screenshot("04-create")
    console.find("save").click()
    console.wait_text("secret-title", "team-a/created")
    assert _read(api, "team-a/created") == {"password": b"first value", "user": b"app"}
    assert console.value_of("password") == "••••••••"
    assert "first value" not in console.find("screen-secret").text
    console.wait_text("secret-sync", "In sync")
    console.screenshot("05-view-masked")


def test_revealing_a_value_shows_it_and_copy_puts_it_on_the_clipboard(console: Console, api: Api) -> None:
    _put(api, "team-a/revealed", {"token": b"open sesame"})
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.open_secret("team-a/revealed")
    button = console.driver.find_element(CSS, '#secret-values li[data-key="token"] button[aria-pressed]')
    button.click()
    assert console.value_of("token") == "open sesame"
    assert button.get_attribute("aria-pressed") == "true"
    console.screenshot("06-view-revealed")
    console.driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": api.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    console.driver.find_element(CSS, '#secret-values li[data-key="token"] button[data-key]').click()
    console.wait_text("notice", "Copied the value of token")
    copied = console.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, () => done(null));"
    )
    assert copied == "open sesame"
    button.click()
    assert console.value_of("token") == "••••••••"


def test_an_update_replaces_one_value_and_keeps_the_others(console: Console, api: Api) -> None:
    _put(api, "team-a/updated", {"password": b"old", "binary": bytes([0, 255, 1])})
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.open_secret("team-a/updated")
    console.find("secret-edit").click()
    console.wait_visible("screen-editor")
    pair = next(row for row in console.pairs() if _key_of(row) == "password")
    pair.find_element(CSS, "button.secondary").click()  # Replace value
    pair.find_element(CSS, ".pair-value").send_keys("new")
    console.screenshot("07-update")
    console.find("save").click()
    console.wait_text("secret-summary", "Version 2")
    assert _read(api, "team-a/updated") == {"password": b"new", "binary": bytes([0, 255, 1])}


def test_an_invalid_key_shows_the_apis_message_on_its_field(console: Console, api: Api) -> None:
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.wait_text("list-title", "Secrets in team-a")
    console.find("new-secret").click()
    console.find("secret-name").send_keys("invalid")
    pair = console.pairs()[0]
    pair.find_element(CSS, ".pair-key").send_keys("bad key!")
    pair.find_element(CSS, ".pair-value").send_keys("x")
    console.find("save").click()
    expected = api.call(
        "POST", "/api/v1/hsm/secrets/team-a/invalid", json={"data": {"bad key!": b64(b"x")}}
    ).json()["error"]
    shown = console.wait_text("alert-text", expected["message"])
    assert f"(field: {expected['details']['field']})" in shown
    assert pair.find_element(CSS, ".pair-key").get_attribute("aria-invalid") == "true"
    console.screenshot("08-invalid-key")
    assert _read(api, "team-a/invalid") is None


def test_delete_asks_for_confirmation_and_then_deletes(console: Console, api: Api) -> None:
    _put(api, "team-a/deleted", {"k": b"v"})
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.open_secret("team-a/deleted")
    console.find("secret-delete").click()
    wait_until(lambda: console.find("delete-dialog").is_displayed(), SHOWN, "the confirmation")
    assert "team-a/deleted" in console.find("delete-title").text
    console.screenshot("09-delete-confirmation")
    console.find("delete-cancel").click()
    assert not console.find("delete-dialog").is_displayed()
    assert _read(api, "team-a/deleted") == {"k": b"v"}
    console.find("secret-delete").click()
    console.find("delete-confirm").click()
    console.wait_text("notice", "Deleted team-a/deleted")
    console.wait_visible("screen-list")
    assert _read(api, "team-a/deleted") is None
    wait_until(lambda: console.row("team-a/deleted") is None, SHOWN, "team-a/deleted gone from the list")


def test_a_namespace_the_token_may_not_list_shows_not_allowed(console: Console) -> None:
    console.sign_in("team-a")
    console.wait_text("who-name", "Signed in")
    console.open_namespace("team-b")
    shown = console.wait_text("alert-text", "Not allowed")
    assert "may not list hsmsecrets" in shown
    assert "team-b" in shown
    assert not console.find("secret-table").is_displayed()
    assert not console.find("new-secret").is_enabled()
    console.wait_text("devices", "may not read device health")
    console.screenshot("10-forbidden-namespace")


def test_a_token_without_any_permission_sees_nothing(console: Console, api: Api) -> None:
    _put(api, "team-a/hidden", {"k": b"v"})
    console.sign_in("nobody")
    console.open_namespace("team-a")
    console.wait_text("alert-text", "Not allowed")
    assert "team-a/hidden" not in console.driver.page_source


def test_a_token_allowed_in_one_namespace_is_offered_only_that_one(console: Console, api: Api) -> None:
    _put(api, "team-a/offered", {"k": b"v"})
    _put(api, "team-b/not-offered", {"k": b"v"})
    console.sign_in("team-a")
    console.wait_visible("screen-list")
    wait_until(lambda: console.choices() == ["team-a"], SHOWN, "team-a offered, alone")
    console.screenshot("14-namespace-picker-one-namespace")
    console.driver.find_element(CSS, '#namespace-choices button[data-namespace="team-a"]').click()
    console.wait_text("list-title", "Secrets in team-a")
    wait_until(lambda: console.row("team-a/offered"), SHOWN, "team-a/offered listed")
    chosen = console.driver.find_element(CSS, '#namespace-choices button[data-namespace="team-a"]')
    assert chosen.get_attribute("aria-current") == "true"
    assert "team-b" not in console.find("namespace-choices").text


def test_a_token_without_any_permission_is_offered_no_namespace(console: Console, api: Api) -> None:
    _put(api, "team-a/not-offered", {"k": b"v"})
    console.sign_in("nobody")
    console.wait_text("namespace-notes", "may list secrets in no namespace")
    assert console.choices() == []
    assert "team-a" not in console.driver.page_source
    console.screenshot("15-namespace-picker-none")


def test_the_health_view_shows_the_hsmpools_phase_and_conditions(console: Console) -> None:
    console.sign_in("admin")
    console.wait_text("devices", "Pool Ready: 2 of 2 devices available")
    conditions = {
        str(item.get_attribute("data-condition")): str(item.text)
        for item in console.driver.find_elements(CSS, '#devices .pool[data-device="pair"] .conditions li')
    }
    assert conditions == {
        "Ready": "Ready True (Ready): 2 devices available",
        "CapacityLow": "CapacityLow False (ObjectBudgetAvailable): every device has room",
        "AgentsAnswering": "AgentsAnswering True (AgentsAnswer): every Ready agent answers",
    }
    console.screenshot("16-devices-and-pool")


def test_a_wrong_token_is_refused_at_sign_in(console: Console) -> None:
    console.sign_in("not-a-token")
    console.wait_text("alert-text", "did not accept this token")
    assert console.visible("screen-sign-in")
    assert console.driver.execute_script("return sessionStorage.length") == 0


def test_a_token_that_stops_working_signs_out_with_a_message(console: Console) -> None:
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.wait_text("list-title", "Secrets in team-a")
    # As if the token expired: the next refresh is refused.
    console.driver.execute_script("sessionStorage.setItem('hsm-console.token', 'expired')")
    console.wait_visible("screen-sign-in")
    console.wait_text("alert-text", "You were signed out")
    assert console.driver.execute_script("return sessionStorage.getItem('hsm-console.token')") is None
    console.screenshot("11-signed-out")


def test_the_list_follows_changes_without_reloading(console: Console, api: Api) -> None:
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.wait_text("list-title", "Secrets in team-a")
    console.driver.execute_script("window.notReloaded = true")
    _put(api, "team-a/arrived-later", {"k": b"v"})
    wait_until(lambda: console.row("team-a/arrived-later"), SHOWN, "the new secret listed")
    assert console.driver.execute_script("return window.notReloaded") is True


def test_the_next_token_signed_in_is_not_shown_the_namespaces_the_last_one_opened(
    console: Console, api: Api
) -> None:
    _put(api, "team-a/opened-before", {"k": b"v"})
    console.sign_in("team-a")
    console.open_namespace("team-a")
    wait_until(lambda: console.row("team-a/opened-before"), SHOWN, "team-a/opened-before listed")
    console.find("sign-out").click()
    console.wait_visible("screen-sign-in")
    console.sign_in("nobody")
    console.wait_text("namespace-notes", "may list secrets in no namespace")
    assert console.find("namespace").get_attribute("value") == ""
    assert "team-a" not in console.driver.page_source


def test_the_token_is_in_session_storage_only(console: Console) -> None:
    console.sign_in("admin")
    console.wait_visible("screen-list")
    assert console.driver.get_cookies() == []
    assert console.driver.execute_script("return localStorage.length") == 0
    assert "admin" not in console.driver.current_url


def test_the_csp_blocks_an_injected_inline_script(console: Console, api: Api) -> None:
    policy = api.call("GET", "/", token=None).headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    console.driver.execute_script(
        "window.violations = [];"
        "document.addEventListener("
        "  'securitypolicyviolation', (event) => window.violations.push(event.violatedDirective));"
        "const injected = document.createElement('script');"
        "injected.textContent = 'window.injectedRan = true';"
        "document.body.appendChild(injected);"
        "const styled = document.createElement('div');"
        "styled.setAttribute('style', 'color: red');"
    )
    violations = wait_until(
        lambda: console.driver.execute_script("return window.violations"), SHOWN, "a CSP violation report"
    )
    assert console.driver.execute_script("return window.injectedRan === undefined") is True
    assert any(directive.startswith("script-src") for directive in violations)


def test_the_console_fits_a_narrow_window(console: Console, api: Api) -> None:
    _put(api, "team-a/narrow", {"k": b"v"})
    console.viewport(420, 800)
    console.sign_in("admin")
    console.open_namespace("team-a")
    wait_until(lambda: console.row("team-a/narrow"), SHOWN, "team-a/narrow listed")
    overflow = console.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    console.screenshot("12-narrow-list")
    console.open_secret("team-a/narrow")
    console.screenshot("13-narrow-view")


def test_every_control_is_reachable_by_keyboard_with_a_visible_focus(console: Console) -> None:
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.wait_text("list-title", "Secrets in team-a")
    reached = set()
    for _ in range(40):
        action_chains.ActionChains(console.driver).send_keys(keys.Keys.TAB).perform()
        focused = console.driver.switch_to.active_element
        if focused.tag_name == "body":
            continue
        reached.add(focused.get_attribute("id") or focused.text)
        outline = focused.value_of_css_property("outline-style")
        assert outline != "none", f"no focus ring on {focused.tag_name} {focused.text!r}"
    assert {"sign-out", "namespace", "open-namespace", "new-secret"} <= reached


def test_text_has_enough_contrast_on_every_screen(console: Console, api: Api) -> None:
    _put(api, "team-a/contrast", {"k": b"v"})
    assert console.driver.execute_script(LOW_CONTRAST) == []
    console.sign_in("admin")
    console.open_namespace("Not_A_Namespace")
    console.wait_text("alert-text", "Could not list")
    assert console.driver.execute_script(LOW_CONTRAST) == []
    console.open_namespace("team-a")
    wait_until(lambda: console.row("team-a/contrast"), SHOWN, "team-a/contrast listed")
    console.wait_text("devices", "Ready")
    assert console.driver.execute_script(LOW_CONTRAST) == []
    console.open_secret("team-a/contrast")
    console.driver.find_element(CSS, '#secret-values li[data-key="k"] button[aria-pressed]').click()
    assert console.driver.execute_script(LOW_CONTRAST) == []
    console.find("secret-edit").click()
    console.wait_visible("screen-editor")
    assert console.driver.execute_script(LOW_CONTRAST) == []


def test_values_leave_the_page_with_the_screen_that_showed_them(console: Console, api: Api) -> None:
    _put(api, "team-a/left-behind", {"token": b"do not linger"})
    console.sign_in("admin")
    console.open_namespace("team-a")
    console.open_secret("team-a/left-behind")
    console.driver.find_element(CSS, '#secret-values li[data-key="token"] button[aria-pressed]').click()
    assert "do not linger" in console.driver.page_source
    console.find("secret-edit").click()
    console.wait_visible("screen-editor")
    console.find("editor-cancel").click()
    console.wait_text("secret-title", "team-a/left-behind")
    console.find("secret-back").click()
    console.wait_visible("screen-list")
    assert "do not linger" not in console.driver.page_source
    assert b64(b"do not linger") not in console.driver.page_source
