"""The web console at /gateway/console, in a real headless Chromium.

The gateway runs as a user runs it (`gateway serve --demo` over the shipped
policies, an admin key in GATEWAY_ADMIN_KEY); the browser logs in with the
form, reads the policy tables, runs the explain playground, sees spend and
the recent decisions, and leaves a screenshot that is checked.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings
from tests.browser import chromium, chromium_binary, png_facts
from tests.harness import GatewayProcess, GatewayServer

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "adm-console-test-0123456789"
SECRET_TEXT = "write python code to sort the list of jane.doe@example.com"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    policies = tmp_path_factory.mktemp("console") / "policies"
    shutil.copytree(ROOT / "policies", policies)
    process = GatewayProcess(
        "--demo", "--policies", str(policies), env={"GATEWAY_ADMIN_KEY": ADMIN}
    )
    process.wait_ready()
    for content in ("Summarize: the meeting moved to Tuesday.", SECRET_TEXT):
        answer = httpx.post(
            process.url + "/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": content}]},
            timeout=10,
        )
        assert answer.status_code == 200
    yield process
    process.stop()


def test_console_needs_the_admin_key(demo: GatewayProcess) -> None:
    page = httpx.get(demo.url + "/gateway/console")
    assert page.status_code == 401 and 'name="key"' in page.text  # the login form
    wrong = httpx.post(demo.url + "/gateway/console/login", data={"key": "nope"})
    assert wrong.status_code == 401 and "not the admin key" in wrong.text
    assert "set-cookie" not in wrong.headers
    right = httpx.post(demo.url + "/gateway/console/login", data={"key": ADMIN})
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ADMIN not in cookie
    session = cookie.split(";")[0]
    with_cookie = httpx.get(demo.url + "/gateway/console", headers={"cookie": session})
    assert with_cookie.status_code == 200 and 'id="rules-default"' in with_cookie.text
    assert "default-src 'none'" in with_cookie.headers["content-security-policy"]
    spend = httpx.get(demo.url + "/gateway/spend", headers={"cookie": session})
    assert spend.status_code == 200
    bad_cookie = httpx.get(demo.url + "/gateway/spend", headers={"cookie": "gateway_console=x"})
    assert bad_cookie.status_code == 401
    by_header = httpx.get(
        demo.url + "/gateway/console", headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert by_header.status_code == 200


def test_recent_decisions_hold_no_text(demo: GatewayProcess) -> None:
    auth = {"authorization": f"Bearer {ADMIN}"}
    decisions = httpx.get(demo.url + "/gateway/console/decisions", headers=auth)
    assert decisions.status_code == 200
    data = decisions.json()["data"]
    assert len(data) >= 2 and "email" in data[0]["entities"]  # newest first
    assert "jane.doe" not in decisions.text and "python code" not in decisions.text
    page = httpx.get(demo.url + "/gateway/console", headers=auth).text
    assert "jane.doe" not in page
    assert httpx.get(demo.url + "/gateway/console/decisions").status_code == 401


def test_console_is_closed_without_an_admin_key(tmp_path: Path) -> None:
    gateway = GatewayServer(
        Settings.from_env({"GATEWAY_POLICIES": str(ROOT / "policies")}, demo=True)
    ).start()
    try:
        page = httpx.get(gateway.url + "/gateway/console")
        assert page.status_code == 403 and "GATEWAY_ADMIN_KEY" in page.text
        login = httpx.post(gateway.url + "/gateway/console/login", data={"key": "x"})
        assert login.status_code == 403
    finally:
        gateway.stop()


@pytest.mark.skipif(chromium_binary() is None, reason="needs chromium (apt-get install chromium)")
async def test_console_in_a_real_browser(demo: GatewayProcess, tmp_path: Path) -> None:
    explain_body = (
        '{"model": "auto", "messages": [{"role": "user", "content": "My SSN is 078-05-1120"}]}'
    )
    async with httpx.AsyncClient() as client:
        expected = (await client.post(demo.url + "/gateway/explain", content=explain_body)).json()
    async with chromium(tmp_path / "profile") as page:
        await page.goto(demo.url + "/gateway/console")
        await page.wait_for("document.getElementById('login')")
        await page.evaluate(
            f"document.querySelector('input[name=key]').value = {ADMIN!r};"
            "document.getElementById('login').submit(); true"
        )
        await page.wait_for("document.getElementById('targets-table')")
        # spend, loaded by the page's script from /gateway/spend
        await page.wait_for("document.getElementById('spend-rows')")
        # the playground: paste a body, press Explain
        await page.evaluate(
            f"document.getElementById('explain-body').value = {explain_body!r};"
            "document.getElementById('explain-run').click(); true"
        )
        await page.wait_for("document.getElementById('explain-rule')")
        dom = await page.dom()
        png = await page.screenshot()
    shot = tmp_path / "console.png"
    shot.write_bytes(png)  # left in the test's temp dir to look at

    # the policy as tables: every rule of the shipped default rule set, its targets
    rules = re.search(r'<table id="rules-default">.*?</table>', dom, re.S)
    assert rules is not None
    for name in ("confidential-code-redacted", "restricted-stays-local"):
        assert f">{name}<" in rules.group(0)
    targets = re.search(r'<table id="targets-table">.*?</table>', dom, re.S)
    assert (
        targets is not None and ">local<" in targets.group(0) and ">restricted<" in targets.group(0)
    )
    # the explain result is the gateway's own answer, trace included
    assert f'<strong id="explain-rule">{expected["rule"]}</strong>' in dom
    assert 'id="explain-trace"' in dom and expected["sensitivity"]["level"] in dom
    # spend per team and the recent decisions
    spend = re.search(r'<table id="spend-rows">.*?</table>', dom, re.S)
    assert spend is not None and ">anonymous<" in spend.group(0)
    decisions = re.search(r'<table id="decisions-table">.*?</table>', dom, re.S)
    assert decisions is not None and ">email<" in decisions.group(0)
    # and a screenshot of a rendered page, not a blank one
    width, height, distinct = png_facts(png)
    assert width == 1280 and height >= 900, (width, height)
    assert len(png) > 20_000 and distinct > 50, (len(png), distinct)
