"""The web view under /ui/ through the ASGI app: sign-in and its cookie, CSRF, the 403 page, the
timeline, tags and downloads (the browser tests in tests/web drive the same pages in Chromium)."""

from __future__ import annotations

import hashlib
import io
import random
import re
import secrets
import time
import zipfile
from collections.abc import Callable

import jwt

from jp_primary.auth.identity import Role
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, BOB, LB_HOST, Api, new_jobid, register_job

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def _job(api: Api, scenario: str = "shallow_resubmission") -> tuple[str, str, bytes]:
    jobid = new_jobid()
    key = register_job(api, jobid=jobid, lb=True)
    dump = "\n".join(generate_job(random.Random(7), scenario, jobid=jobid)).encode()
    sent = api.client.put(
        f"/v1/jobs/{key}/files/lb", content=dump, headers=api.auth(LB_HOST, Role.TRUSTED)
    )
    assert sent.status_code == 201, sent.text
    return key, jobid, dump


def _sign_in(api: Api, subject: str = ALICE) -> None:
    form = api.client.get("/ui/sign-in")
    csrf = CSRF_RE.search(form.text)
    assert csrf is not None
    answer = api.client.post(
        "/ui/sign-in",
        data={"csrf": csrf.group(1), "token": api.tokens.issue(subject, ()), "next": "/ui/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "jp_ui_token=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; set over TLS


def test_sign_in_keeps_the_token_for_the_pages_only(api: Api) -> None:
    key, jobid, _dump = _job(api)
    _sign_in(api)
    page = api.client.get(f"/ui/jobs/{key}")
    assert page.status_code == 200
    assert jobid in page.text
    assert ALICE in page.text
    # The cookie is no credential for the REST API (no cross-site request can use it there).
    api.client.cookies.set("jp_ui_token", api.client.cookies["jp_ui_token"], path="/")
    assert api.client.get(f"/v1/jobs/{key}").status_code == 401


def test_a_bad_token_is_refused_on_the_form(api: Api) -> None:
    csrf = CSRF_RE.search(api.client.get("/ui/sign-in").text)
    assert csrf is not None
    answer = api.client.post("/ui/sign-in", data={"csrf": csrf.group(1), "token": "not.a.token"})
    assert answer.status_code == 401
    assert "invalid bearer token" in answer.text
    assert "jp_ui_token" not in answer.headers.get("set-cookie", "")


def test_sign_in_goes_back_only_to_a_page_of_this_view(api: Api) -> None:
    csrf = CSRF_RE.search(api.client.get("/ui/sign-in").text)
    assert csrf is not None
    token = api.tokens.issue(ALICE, ())
    for target, expected in (("https://evil.example/", "/ui/"), ("/ui/search", "/ui/search")):
        answer = api.client.post(
            "/ui/sign-in",
            data={"csrf": csrf.group(1), "token": token, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == expected


def test_forms_without_the_csrf_token_are_refused(api: Api) -> None:
    key, _jobid, _dump = _job(api)
    _sign_in(api)
    refused = api.client.post(f"/ui/jobs/{key}/tags", data={"name": "colour", "value": "red"})
    assert refused.status_code == 403
    assert "reload the page" in refused.text
    wrong = api.client.post(
        f"/ui/jobs/{key}/tags", data={"name": "colour", "value": "red", "csrf": "guess"}
    )
    assert wrong.status_code == 403
    tags = api.client.get(f"/v1/jobs/{key}/tags", headers=api.auth(ALICE)).json()
    assert tags == []


def test_a_tag_added_on_the_page_is_listed(api: Api) -> None:
    key, _jobid, _dump = _job(api)
    _sign_in(api)
    csrf = CSRF_RE.search(api.client.get(f"/ui/jobs/{key}").text)
    assert csrf is not None
    answer = api.client.post(
        f"/ui/jobs/{key}/tags", data={"name": "colour", "value": "red", "csrf": csrf.group(1)}
    )
    assert answer.status_code == 200  # the redirect back to the job page, followed
    assert re.search(r"<td class=\"value\">colour</td><td class=\"value\">red</td>", answer.text)
    stored = api.client.get(f"/v1/jobs/{key}/tags", headers=api.auth(ALICE)).json()
    assert [(t["name"].rpartition(":")[2], t["value"]) for t in stored] == [("colour", "red")]


def test_someone_elses_job_is_the_403_page(api: Api) -> None:
    key, _jobid, _dump = _job(api)
    _sign_in(api, BOB)
    page = api.client.get(f"/ui/jobs/{key}")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Not allowed</h1>" in page.text
    assert BOB in page.text


def test_anonymous_browsers_are_sent_to_sign_in(api: Api) -> None:
    key, _jobid, _dump = _job(api)
    answer = api.client.get(f"/ui/jobs/{key}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/sign-in?next=/ui/jobs/{key}"


def test_an_expired_token_cookie_is_dropped(api: Api) -> None:
    key, _jobid, _dump = _job(api)
    key_bytes = (api.settings.token_key_path).read_bytes()
    expired = jwt.encode(
        {
            "iss": jwt.decode(api.tokens.issue(ALICE, ()), options={"verify_signature": False})[
                "iss"
            ],
            "sub": ALICE,
            "exp": int(time.time()) - 60,
        },
        key_bytes,
        algorithm="HS256",
    )
    api.client.cookies.set("jp_ui_token", expired, path="/ui/")
    answer = api.client.get(f"/ui/jobs/{key}", follow_redirects=False)
    assert answer.status_code == 303
    assert 'jp_ui_token=""' in answer.headers["set-cookie"]


def test_a_form_posted_after_the_cookie_expired_goes_to_sign_in_and_back(api: Api) -> None:
    key, _jobid, _dump = _job(api)
    _sign_in(api)
    csrf = CSRF_RE.search(api.client.get(f"/ui/jobs/{key}").text)
    assert csrf is not None
    form = {"name": "color", "value": "red", "csrf": csrf.group(1)}
    api.client.cookies.delete("jp_ui_token")  # as the browser holds it: no longer valid
    api.client.cookies.set("jp_ui_token", "not-a-valid-token", path="/ui/")
    answer = api.client.post(
        f"/ui/jobs/{key}/tags",
        data=form,
        headers={"referer": f"http://testserver/ui/jobs/{key}"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/sign-in?next=/ui/jobs/{key}"
    assert 'jp_ui_token=""' in answer.headers["set-cookie"]
    api.client.cookies.set("jp_ui_token", "not-a-valid-token", path="/ui/")
    elsewhere = api.client.post(
        f"/ui/jobs/{key}/tags",
        data=form,
        headers={"referer": "https://evil.example/ui/x"},
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/ui/sign-in?next=/ui/x"  # a path, never a site


def test_the_timeline_shows_each_submission_as_a_branch(api: Api) -> None:
    key, _jobid, _dump = _job(api)
    _sign_in(api)
    page = api.client.get(f"/ui/jobs/{key}").text
    assert '<svg class="timeline"' in page
    branches = re.findall(r'data-branch="(\d+)"', page)
    assert branches == ["1", "2"]
    assert 'class="fork"' in page
    rows = re.findall(r'<tr><td>(\d+)</td><td class="state">(\w+)', page)
    states = [state for _branch, state in rows]
    assert states[:2] == ["Submitted", "Waiting"]
    assert [b for b, s in rows if s == "Waiting"] == ["1", "2"]


def test_the_replay_inconsistency_is_shown(api: Api) -> None:
    key, _jobid, _dump = _job(api, "lm_failed_while_running")
    _sign_in(api)
    page = api.client.get(f"/ui/jobs/{key}").text
    assert 'id="inconsistency"' in page
    assert "lm-failed-while-payload-running" in page


def test_download_from_the_page(api: Api) -> None:
    key, _jobid, dump = _job(api)
    _sign_in(api)
    page = api.client.get(f"/ui/jobs/{key}").text
    link = re.search(r'href="(/ui/jobs/[^"]+/files/lb)"', page)
    assert link is not None
    answer = api.client.get(link.group(1))
    assert hashlib.sha256(answer.content).hexdigest() == hashlib.sha256(dump).hexdigest()
    assert answer.headers["content-disposition"].startswith("attachment")


def test_search_by_jobid(api: Api) -> None:
    key, jobid, _dump = _job(api)
    _sign_in(api)
    found = api.client.get("/ui/search", params={"jobid": jobid}, follow_redirects=False)
    assert found.headers["location"] == f"/ui/jobs/{key}"
    missing = api.client.get("/ui/search", params={"jobid": new_jobid()})
    assert missing.status_code == 200
    assert 'id="no-results"' in missing.text


def test_pages_load_nothing_from_elsewhere(api: Api) -> None:
    _sign_in(api)
    for path in ("/ui/", "/ui/sign-in", "/docs", "/redoc"):
        page = api.client.get(path).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources, path
        assert all(not s.startswith(("http:", "https:", "//")) for s in sources), (path, sources)
    assert api.client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert "text/css" in api.client.get("/ui/static/ui.css").headers["content-type"]


def test_search_by_attribute_a_page_at_a_time(api: Api) -> None:
    campaign_name = secrets.token_hex(6)
    mine = {register_job(api) for _ in range(27)}
    tagged = sorted(mine)[:3]
    for key in tagged:
        api.client.post(
            f"/v1/jobs/{key}/tags",
            json={"name": "campaign", "value": campaign_name},
            headers=api.auth(ALICE),
        )
    register_job(api, BOB)  # never listed for Alice
    _sign_in(api)
    seen: list[str] = []
    url: str | None = "/ui/search?attr=jp%3AjobId&op=prefix&value=https%3A%2F%2Flb.example.org"
    pages = 0
    while url is not None:
        answer = api.client.get(url)
        assert answer.status_code == 200, answer.text
        seen += re.findall(r'<a href="/ui/jobs/([^"]+)">', answer.text)
        following = re.search(r'<a href="([^"]+)" rel="next">', answer.text)
        url = following.group(1).replace("&amp;", "&") if following else None
        pages += 1
    assert pages >= 2  # 25 a page
    assert set(seen) >= mine  # the database is shared with the other tests of the run
    assert len(seen) == len(set(seen))
    campaign = api.client.get(
        "/ui/search", params={"attr": "tag:campaign", "op": "eq", "value": campaign_name}
    ).text
    assert sorted(re.findall(r'<a href="/ui/jobs/([^"]+)">', campaign)) == tagged
    bad = api.client.get("/ui/search", params={"attr": "lb:status", "op": "lt", "value": "x"})
    assert bad.status_code == 422
    assert "where[0]" in bad.text


def test_the_page_offers_the_exports(api: Api) -> None:
    key, jobid, dump = _job(api)
    _sign_in(api)
    page = api.client.get(f"/ui/jobs/{key}").text
    links = re.findall(r'href="(/ui/jobs/[^"]+/(?:prov|ro-crate)[^"]*)"', page)
    assert len(links) == 5
    provn = api.client.get(f"/ui/jobs/{key}/prov", params={"format": "provn"})
    assert provn.headers["content-type"].startswith("text/provenance-notation")
    assert provn.text.startswith("document")
    assert f'filename="{key}.provn"' in provn.headers["content-disposition"]
    crate = api.client.get(f"/ui/jobs/{key}/ro-crate")
    archive = zipfile.ZipFile(io.BytesIO(crate.content))
    assert archive.read("files/lb/lb") == dump
    assert jobid in archive.read("ro-crate-metadata.json").decode()


def test_the_cookie_is_secure_behind_a_tls_front_end(make_api: Callable[..., Api]) -> None:
    api = make_api(server={"public_url": "https://jp.example.org"})
    csrf = CSRF_RE.search(api.client.get("/ui/sign-in").text)
    assert csrf is not None
    answer = api.client.post(
        "/ui/sign-in",
        data={"csrf": csrf.group(1), "token": api.tokens.issue(ALICE, ())},
        follow_redirects=False,
    )
    assert "Secure" in answer.headers["set-cookie"]
