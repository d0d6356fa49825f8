"""The console's sign-in, session cookie and CSRF protection, over a real coordinator's REST server
on loopback (fake dispatcher: no runs needed). What a browser does with the cookie is in
tests/browser."""

from __future__ import annotations

import base64
import http.client
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from seedbed.client import Client
from seedbed.coordinator import CoordinatorSettings
from seedbed.coordinator.access import Role
from seedbed.coordinator.faces import console
from seedbed.coordinator.faces.console import COOKIE, Sessions
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.server import running_in_thread
from tests.conftest import ADMIN_API_KEY, settings_for
from tests.unit.test_access import make_user

SCRIPT = "print('hello')\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, rest_listen="127.0.0.1:0"
    )
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        yield coordinator, f"http://{coordinator.rest_address}"


def sign_in(http: httpx.Client, key: str = ADMIN_API_KEY) -> str:
    """Sign ``http`` in as a browser would: it keeps the cookie; answers the page's CSRF token."""
    answer = http.post("/console/session", json={"api_key": key})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf_token"])


def get(url: str, path: str, cookie: str) -> httpx.Response:
    with httpx.Client(base_url=url, cookies={COOKIE: cookie}, timeout=30) as http:
        return http.get(path)


def test_signing_in_sets_an_httponly_strict_cookie_that_stands_for_the_key(served: tuple[Any, str]) -> None:
    _, url = served
    with httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/console/session", json={"api_key": ADMIN_API_KEY})
        assert answer.status_code == 200, answer.text
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        # The key itself is never in the cookie, nor in the answer.
        assert ADMIN_API_KEY not in cookie and ADMIN_API_KEY not in answer.text
        me = answer.json()
        assert me["superuser"] is True and len(me["csrf_token"]) == 64
        assert http.get("/v1/scenarios").status_code == 200
        assert http.get("/console/session").json()["csrf_token"] == me["csrf_token"]
        assert http.delete("/console/session").status_code == 204
        assert http.get("/v1/scenarios").status_code == 401
        assert http.get("/console/session").json() == {"signed_in": False, "reason": ""}


def test_a_wrong_key_a_form_post_and_another_site_cannot_sign_in(served: tuple[Any, str]) -> None:
    _, url = served
    with httpx.Client(base_url=url, timeout=30) as http:
        wrong = http.post("/console/session", json={"api_key": "sbk_0000000000000000_not-a-key"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        form = http.post("/console/session", data={"api_key": ADMIN_API_KEY})
        assert form.status_code == 400 and "must be JSON" in form.json()["error"]["message"]
        foreign = http.post(
            "/console/session", json={"api_key": ADMIN_API_KEY}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 401 and "set-cookie" not in foreign.headers
        huge = http.post("/console/session", json={"api_key": "x" * 5000})
        assert huge.status_code == 400 and "longer than" in huge.json()["error"]["message"]
        missing = http.post("/console/session", json={"key": ADMIN_API_KEY})
        assert missing.status_code == 400 and "api_key" in missing.json()["error"]["message"]


def test_a_forged_or_expired_session_is_refused(served: tuple[Any, str]) -> None:
    coordinator, url = served
    for forged in ("nonsense", Fernet(Fernet.generate_key()).encrypt(ADMIN_API_KEY.encode()).decode()):
        answer = get(url, "/v1/scenarios", forged)
        assert answer.status_code == 401, answer.text
        assert "sign in again" in answer.json()["error"]["message"]
        said = get(url, "/console/session", forged).json()
        assert said["signed_in"] is False and "sign in again" in said["reason"]
    # A cookie this coordinator made, but older than the session's lifetime.
    sessions = coordinator.console_sessions
    assert sessions is not None
    old = Fernet(base64.urlsafe_b64encode(sessions.key)).encrypt_at_time(
        ADMIN_API_KEY.encode(), int(time.time()) - sessions.lifetime_seconds - 60
    )
    expired = get(url, "/v1/scenarios", old.decode())
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    fresh = get(url, "/v1/scenarios", sessions.seal(ADMIN_API_KEY))
    assert fresh.status_code == 200


def test_a_change_needs_the_csrf_token_and_the_same_origin(served: tuple[Any, str]) -> None:
    _, url = served
    with httpx.Client(base_url=url, timeout=30) as http:
        csrf = sign_in(http)
        body = {"script": SCRIPT}
        bare = http.put("/v1/scenarios/scn_csrf", json=body)
        assert bare.status_code == 403 and "CSRF" in bare.json()["error"]["message"]
        wrong = http.put("/v1/scenarios/scn_csrf", json=body, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        cross = http.put(
            "/v1/scenarios/scn_csrf",
            json=body,
            headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        )
        assert cross.status_code == 403 and "another site" in cross.json()["error"]["message"]
        assert http.get("/v1/scenarios/scn_csrf").status_code == 404  # nothing was written
        made = http.put("/v1/scenarios/scn_csrf", json=body, headers={"X-CSRF-Token": csrf, "Origin": url})
        assert made.status_code == 201, made.text
        # A key in an Authorization header needs no token (scripts and CI are not browsers).
        keyed = httpx.put(
            f"{url}/v1/scenarios/scn_keyed",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_API_KEY}"},
            timeout=30,
        )
        assert keyed.status_code == 201


def test_a_viewer_session_is_refused_a_change_by_the_api(served: tuple[Any, str]) -> None:
    coordinator, url = served
    with Client(coordinator.address, api_key=ADMIN_API_KEY) as admin:
        key = make_user(admin, "vera", "default", Role.VIEWER)
    with httpx.Client(base_url=url, timeout=30) as http:
        csrf = sign_in(http, key)
        me = http.get("/console/session").json()
        assert me["user_id"] == "vera" and me["roles"] == {"default": "viewer"} and not me["superuser"]
        refused = http.put("/v1/scenarios/scn_v", json={"script": SCRIPT}, headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403, refused.text


def test_the_page_and_its_files_are_served_with_a_strict_policy(served: tuple[Any, str]) -> None:
    _, url = served
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/").headers["location"] == "/console/"
        page = http.get("/console/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "default-src 'self'" in policy
        for asset in ("static/app.js", "static/app.css"):
            served_file = http.get(f"/console/{asset}", headers={"Accept-Encoding": "gzip"})
            assert served_file.status_code == 200
            assert served_file.headers.get("content-encoding") == "gzip"
            assert served_file.headers["x-content-type-options"] == "nosniff"
        # Nothing outside the coordinator: every src and href of the page is its own.
        for ref in ("src=", "href="):
            for part in page.text.split(ref)[1:]:
                target = part.split('"')[1]
                assert not target.startswith(("http:", "https:", "//")), target
    # httpx would resolve "../" before sending: these go out exactly as written, so the server sees
    # each way of climbing out of the static folder.
    for target in (
        "/console/static/../_session.py",
        "/console/static/%2e%2e/_session.py",
        "/console/static/..%2f_session.py",
        "/console/static/%2e%2e%2f_session.py",
        "/console/static/vendor/%2e%2e/%2e%2e/_session.py",
        "/console/static/%2e%2e/%2e%2e/console/_session.py",
    ):
        status, body = raw_get(url, target)
        assert status == 404, (target, status)
        assert b"import " not in body and b"COOKIE" not in body, target
    # A dot segment that stays inside the folder is resolved, not refused: the 404s above are the
    # folder's boundary, not a path the server failed to read.
    status, body = raw_get(url, "/console/static/vendor/%2e%2e/app.js")
    assert status == 200 and body == (resources.files(console) / "static" / "app.js").read_bytes()


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` sent as written (no dot segments resolved, no escapes decoded)."""
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    try:
        connection.request("GET", target)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_the_console_can_be_turned_off(tmp_path: Path) -> None:
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, rest_listen="127.0.0.1:0", console=False
    )
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        url = f"http://{coordinator.rest_address}"
        assert httpx.get(f"{url}/console/", timeout=30).status_code == 404
        signing_in = httpx.post(f"{url}/console/session", json={"api_key": ADMIN_API_KEY}, timeout=30)
        assert signing_in.status_code in (404, 405)
        # A genuine cookie, sealed with the key this coordinator's console would use (its secret
        # key file exists once it has started), means nothing to a coordinator without a console.
        cookie = sessions_of(settings).seal(ADMIN_API_KEY)
        assert get(url, "/v1/scenarios", cookie).status_code == 401
    # The same cookie, the same data folder and store, the console on: it is a session.
    again = settings_for(settings.store_url, tmp_path, rest_listen="127.0.0.1:0", console=True)
    with running_in_thread(again, FakeDispatcher()) as coordinator:
        assert get(f"http://{coordinator.rest_address}", "/v1/scenarios", cookie).status_code == 200


def sessions_of(settings: CoordinatorSettings) -> Sessions:
    """The sessions a coordinator with these settings makes, as its server builds them."""
    secrets = SecretBox.from_key_or_file(settings.secret_key, settings.data_dir)
    return Sessions(
        secrets.derive_key("seedbed console session"),
        secrets.derive_key("seedbed console csrf"),
        round(settings.console_session_seconds),
        settings.console_origin,
    )


def test_a_cookie_of_the_same_name_set_by_another_app_does_not_shadow_the_session(
    served: tuple[Any, str],
) -> None:
    coordinator, url = served
    good = coordinator.console_sessions.seal(ADMIN_API_KEY)
    for header in (f"{COOKIE}=planted; {COOKIE}={good}", f"{COOKIE}={good}; {COOKIE}=planted"):
        answer = httpx.get(f"{url}/v1/scenarios", headers={"Cookie": header}, timeout=30)
        assert answer.status_code == 200, (header, answer.text)


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_crash(served: tuple[Any, str]) -> None:
    _, url = served
    with httpx.Client(base_url=url, timeout=30) as http:
        sign_in(http)
        answer = http.put(
            "/v1/scenarios/scn_x",
            json={"script": SCRIPT},
            headers=[("X-CSRF-Token", "\xe9t\xe9".encode("latin-1"))],
        )
        assert answer.status_code == 403, answer.text


def test_behind_a_proxy_the_configured_origin_is_the_console_s(tmp_path: Path) -> None:
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}",
        tmp_path,
        rest_listen="127.0.0.1:0",
        console_origin="https://seedbed.example.com/",
    )
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        url = f"http://{coordinator.rest_address}"
        with httpx.Client(base_url=url, timeout=30) as http:
            # The proxy's Host is not the browser's: the configured origin decides.
            refused = http.post("/console/session", json={"api_key": ADMIN_API_KEY}, headers={"Origin": url})
            assert refused.status_code == 401
            signed = http.post(
                "/console/session",
                json={"api_key": ADMIN_API_KEY},
                headers={"Origin": "https://seedbed.example.com"},
            )
            assert signed.status_code == 200, signed.text
            csrf = signed.json()["csrf_token"]
            made = http.put(
                "/v1/scenarios/scn_p",
                json={"script": SCRIPT},
                headers={"X-CSRF-Token": csrf, "Origin": "https://seedbed.example.com"},
            )
            assert made.status_code == 201, made.text
    with pytest.raises(ValueError, match="console_origin"):
        settings_for(
            f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path, console_origin="seedbed.example.com/x"
        )
