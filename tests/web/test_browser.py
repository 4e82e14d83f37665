"""The web view and the API docs in headless Chromium against a real ``jp-primary serve``.

Screenshots go to each test's tmp_path (the test run's output, kept by pytest for the last
runs: ``/tmp/pytest-of-<user>/pytest-current/``).
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from jp_primary.auth.identity import Role
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, BOB, LB_HOST, SHARED, new_jobid, shared_data_or_skip

Served = Any  # the ``served`` fixture's value (tests/web/conftest.py)

pytestmark = pytest.mark.slow
_JOBID = re.compile(r'DG\.JOBID="([^"]+)"')
_USER = re.compile(r'DG\.USER="([^"]+)"')


def _store(served: Served, jobid: str, owner: str, dump: bytes) -> str:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        lb = served.auth(LB_HOST, Role.TRUSTED)
        registered = client.post("/v1/jobs", json={"jobid": jobid, "owner": owner}, headers=lb)
        assert registered.status_code == 201, registered.text
        key = str(registered.json()["key"])
        sent = client.put(f"/v1/jobs/{key}/files/lb", content=dump, headers=lb)
        assert sent.status_code == 201, sent.text
    return key


def _sign_in(page: Any, served: Served, subject: str) -> None:
    page.goto(f"{served.base_url}/ui/sign-in")
    page.get_by_label("Access token").fill(served.tokens.issue(subject, ()))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{served.base_url}/ui/")
    assert page.locator("#who").inner_text() == subject


def _states(page: Any) -> list[tuple[str, str, str]]:
    rows = page.locator("#history tbody tr")
    found = []
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td").all_inner_texts()
        found.append((cells[0], cells[1].split(" ")[0], cells[2]))
    return found


def test_a_job_without_javascript(browser: Any, served: Served, tmp_path: Path) -> None:
    """Sign in, read the timeline, add a tag, download the dump: all with JavaScript off."""
    jobid = new_jobid()
    dump = "\n".join(generate_job(random.Random(11), "shallow_resubmission", jobid=jobid)).encode()
    key = _store(served, jobid, ALICE, dump)
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    _sign_in(page, served, ALICE)
    page.get_by_label("Jobid").fill(jobid)
    page.get_by_role("button", name="Find the job").click()
    page.wait_for_url(f"{served.base_url}/ui/jobs/{key}")
    assert page.get_by_role("heading", level=1).inner_text() == f"Job {jobid}"
    # The timeline: states in order, the resubmission as a second branch.
    states = _states(page)
    assert [s for _b, s, _t in states][:2] == ["Submitted", "Waiting"]
    assert [b for b, s, _t in states if s == "Waiting"] == ["1", "2"]
    assert [t for _b, _s, t in states] == sorted(t for _b, _s, t in states)
    svg = page.locator("svg#timeline-svg")
    assert svg.locator("g.branch").count() == 2
    drawn = svg.locator("text.state").all_text_contents()
    assert drawn == [s for _b, s, _t in states]
    page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
    # A tag added with the form is listed.
    page.get_by_label("Tag name").fill("experiment")
    page.get_by_label("Value").fill("run 42")
    page.get_by_role("button", name="Add tag").click()
    listed = page.locator("#tag-list tbody tr").first.locator("td").all_inner_texts()
    assert listed[:2] == ["experiment", "run 42"]
    # The search page finds it by that tag.
    page.goto(f"{served.base_url}/ui/search")
    page.get_by_role("textbox", name="Attribute").fill("tag:experiment")
    page.get_by_label("Condition").select_option("eq")
    page.get_by_label("Value", exact=True).fill("run 42")
    page.get_by_role("button", name="Search", exact=True).click()
    assert page.locator("#result-list a").all_inner_texts() == [jobid]
    page.locator("#result-list a").click()
    page.wait_for_url(f"{served.base_url}/ui/jobs/{key}")
    # The dump downloads with the bytes that were stored.
    with page.expect_download() as info:
        page.get_by_role("link", name="Download lb").click()
    saved = tmp_path / "downloaded.lb"
    info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(dump).hexdigest()
    # Signing out forgets the token: the job page sends the browser to sign in.
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{served.base_url}/ui/jobs/{key}")
    assert urlsplit(page.url).path == "/ui/sign-in"
    context.close()


def test_a_real_lb_dump_on_a_phone(browser: Any, served: Served, tmp_path: Path) -> None:
    folder = shared_data_or_skip("data", "lb", pattern="sample_job_*.lb")
    dump = (folder / "sample_job_cleared.lb").read_bytes()
    text = dump.decode("utf-8", "replace")
    jobid, owner = _JOBID.search(text), _USER.search(text)
    assert jobid is not None
    assert owner is not None
    key = _store(served, jobid.group(1), owner.group(1), dump)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    _sign_in(page, served, owner.group(1))
    page.goto(f"{served.base_url}/ui/jobs/{key}")
    states = [s for _b, s, _t in _states(page)]
    assert states[0] == "Submitted"
    assert states[-1] == "Cleared"
    times = [
        datetime.strptime(t.replace("UTC", "+0000"), "%Y-%m-%d %H:%M:%S %z")
        for _b, _s, t in _states(page)
    ]
    assert times == sorted(times)
    # Usable on a phone: the page itself never scrolls sideways (wide tables scroll in place).
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=str(tmp_path / "job-phone.png"), full_page=True)
    page.screenshot(path=str(tmp_path / "job-phone-top.png"))  # what the phone shows first
    assert SHARED in folder.parents
    context.close()


def test_another_users_job_and_a_forged_form(browser: Any, served: Served, tmp_path: Path) -> None:
    jobid = new_jobid()
    key = _store(
        served,
        jobid,
        ALICE,
        "\n".join(generate_job(random.Random(2), "done", jobid=jobid)).encode(),
    )
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, served, BOB)
    answer = page.goto(f"{served.base_url}/ui/jobs/{key}")
    assert answer is not None
    assert answer.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    page.screenshot(path=str(tmp_path / "forbidden.png"))
    # Alice's own page, its tag form stripped of the CSRF token: refused.
    _sign_in(page, served, ALICE)
    page.goto(f"{served.base_url}/ui/jobs/{key}")
    page.evaluate("document.querySelector('#tag-form input[name=csrf]').remove()")
    page.get_by_label("Tag name").fill("forged")
    with page.expect_navigation():
        page.get_by_role("button", name="Add tag").click()
    assert "reload the page" in page.locator("#error-detail").inner_text()
    page.goto(f"{served.base_url}/ui/jobs/{key}")
    assert "forged" not in page.content()
    context.close()


def test_api_docs_load_with_the_network_blocked(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    context = browser.new_context()
    left: list[str] = []

    def only_localhost(route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    context.route("**/*", only_localhost)
    page = context.new_page()
    page.goto(f"{served.base_url}/docs")
    page.locator(".swagger-ui .info .title").wait_for(timeout=30000)
    assert "jp_primary" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock").count() > 10
    page.screenshot(path=str(tmp_path / "docs.png"))
    page.goto(f"{served.base_url}/redoc")
    page.get_by_role("heading", name=re.compile("jp_primary")).first.wait_for(timeout=30000)
    page.screenshot(path=str(tmp_path / "redoc.png"))
    assert left == []
    context.close()
