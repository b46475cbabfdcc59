"""People in the portal: argon2id passwords, sessions in strict cookies, CSRF, login rate limit, audit log,
invitations, roles, the admin's user API, both languages."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.portal.models import AuditEntry, PortalInvite, PortalSession, PortalUser
from app.portal.security import MAX_FAILED_LOGINS
from tests.conftest import ROOT
from tests.portal.conftest import CSV, PASSWORD, World, csrf_of


def _audit(world: World, action: str) -> list[AuditEntry]:
    with world.session() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
        s.expunge_all()
        return rows


def test_password_is_stored_as_argon2id_and_login_sets_a_strict_httponly_cookie(world: World) -> None:
    with world.session() as s:
        stored = s.scalars(select(PortalUser.password_hash).where(PortalUser.email == "supplier@example.com")).one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    c = world.browser()
    r = c.post("/portal/login", data={"email": "Supplier@Example.com", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal/"
    cookie = r.headers["set-cookie"]
    assert "qcn_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # not in dev/test: production only (plain-http dev servers)
    token = cookie.split("qcn_session=")[1].split(";")[0]
    with world.session() as s:
        hashes = list(s.scalars(select(PortalSession.token_hash)))
    assert token not in hashes and len(hashes) == 1  # only the SHA-256 of the session token is stored
    assert _audit(world, "login")[-1].outcome == "ok"


def test_pages_need_a_login_and_remember_where_you_wanted_to_go(world: World) -> None:
    c = world.browser()
    r = c.get("/portal/cases", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal/login?next=/portal/cases"
    r = c.post("/portal/login", data={"email": "lab@example.com", "password": PASSWORD, "next": "//evil.example"})
    assert r.url.path == "/portal/"  # an open redirect is refused: back to my work
    assert world.browser().post("/portal/api/batches", files=[("files", ("a.csv", CSV))]).status_code == 401


def test_wrong_password_is_refused_and_audited_without_saying_which_part_was_wrong(world: World) -> None:
    c = world.browser()
    r1 = c.post("/portal/login", data={"email": "supplier@example.com", "password": "wrong password"})
    r2 = c.post("/portal/login", data={"email": "nobody@example.com", "password": "wrong password"})
    assert r1.status_code == r2.status_code == 401
    assert "Wrong email or password." in r1.text and "Wrong email or password." in r2.text
    failed = [(a.actor, a.outcome) for a in _audit(world, "login")]
    assert ("supplier@example.com", "failed") in failed and ("nobody@example.com", "failed") in failed


def test_login_is_rate_limited_after_repeated_failures_even_with_the_right_password(world: World) -> None:
    c = world.browser()
    for _ in range(MAX_FAILED_LOGINS):
        assert c.post("/portal/login", data={"email": "oem@example.com", "password": "guess guess"}).status_code == 401
    r = c.post("/portal/login", data={"email": "oem@example.com", "password": PASSWORD})
    assert r.status_code == 429 and "Too many failed logins" in r.text
    assert _audit(world, "login")[-1].outcome == "denied"
    # a colleague behind the same address is not locked out by it (the per-address limit is higher)
    assert world.browser("lab").get("/portal/", follow_redirects=False).status_code == 200


def test_state_changing_requests_need_the_sessions_csrf_token(world: World) -> None:
    c = world.browser("supplier")
    page = c.get("/portal/upload")
    token = csrf_of(page.text)
    files = [("files", ("lot.csv", CSV.encode(), "text/csv"))]
    r = c.post("/portal/api/batches", files=files)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    refused = _audit(world, "batches")[-1]  # the refusal is audited, with who tried
    assert refused.actor == "supplier@example.com" and refused.outcome == "denied"
    assert json.loads(refused.detail or "{}") == {"status": 403, "code": "csrf_failed"}
    r = c.post("/portal/api/batches", files=files, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    # another person's token does not work in this session either
    other = csrf_of(world.browser("supplier2").get("/portal/").text)
    assert c.post("/portal/api/batches", files=files, headers={"X-CSRF-Token": other}).status_code == 403
    r = c.post("/portal/api/batches", files=files, headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["batch"]["record_count"] == 2 and body["batch"]["status"] == "pending"
    assert body["href"] == f"/portal/batches/{body['batch']['id']}"
    entry = _audit(world, "batch.upload")[-1]
    assert entry.actor == "supplier@example.com" and json.loads(entry.detail or "{}")["files"] == ["lot.csv"]
    # an upload that fails leaves no "uploaded" entry behind (its audit commits only with the batch)
    bad = [("files", ("bad.csv", b"sample_id,characteristic,value,unit\nS1,d,not-a-number,mm\n", "text/csv"))]
    r = c.post("/portal/api/batches", files=bad, headers={"X-CSRF-Token": token})
    assert r.status_code == 422, r.text
    assert [e.id for e in _audit(world, "batch.upload")] == [entry.id]
    # logout is a form with the token too: without it, the session stays
    assert c.post("/portal/logout", data={}).status_code == 403
    assert c.get("/portal/", follow_redirects=False).status_code == 200
    assert c.post("/portal/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert c.get("/portal/", follow_redirects=False).status_code == 303


def test_party_admin_invites_a_viewer_who_can_read_but_not_act(world: World) -> None:
    admin = world.browser("supplier")
    token = csrf_of(admin.get("/portal/users").text)
    r = admin.post(
        "/portal/users/invite", data={"email": "colleague@example.com", "role": "viewer", "csrf_token": token}
    )
    assert r.status_code == 200
    link = r.text.split('id="invite-link">')[1].split("<")[0]
    path = link.replace("http://testserver", "")
    fresh = world.browser()
    assert "colleague@example.com" in fresh.get(path).text
    short = fresh.post(path, data={"display_name": "Col", "password": "short"})
    assert short.status_code == 422 and "at least 10" in short.text
    assert (
        fresh.post(path, data={"display_name": "Col", "password": PASSWORD}, follow_redirects=False).status_code == 303
    )
    assert fresh.get(path).status_code == 404  # used once
    c = world.browser("colleague")
    assert "Cathodic" not in c.get("/portal/").text and c.get("/portal/batches").status_code == 200
    t = csrf_of(c.get("/portal/upload").text)
    r = c.post("/portal/api/batches", files=[("files", ("a.csv", CSV.encode()))], headers={"X-CSRF-Token": t})
    assert r.status_code == 403 and "operator" in r.json()["error"]["message"]
    with world.session() as s:
        user = s.scalars(select(PortalUser).where(PortalUser.email == "colleague@example.com")).one()
        assert user.party_id == world.ids["supplier"] and user.role == "viewer" and not user.party_admin
    assert [a.target for a in _audit(world, "invite")] == ["colleague@example.com"]


def test_only_a_party_admin_invites(world: World) -> None:
    with world.session() as s:
        s.scalars(select(PortalUser).where(PortalUser.email == "lab@example.com")).one().party_admin = False
    c = world.browser("lab")
    token = csrf_of(c.get("/portal/users").text)
    r = c.post("/portal/users/invite", data={"email": "x@example.com", "role": "signer", "csrf_token": token})
    assert r.status_code == 403 and "party admin" in r.text


def test_a_party_admin_grants_at_most_their_own_role(world: World) -> None:
    with world.session() as s:
        s.scalars(select(PortalUser).where(PortalUser.email == "lab@example.com")).one().role = "viewer"
    c = world.browser("lab")
    token = csrf_of(c.get("/portal/users").text)
    r = c.post("/portal/users/invite", data={"email": "x@example.com", "role": "signer", "csrf_token": token})
    assert r.status_code == 403 and "at most their own role" in r.text
    ok = c.post("/portal/users/invite", data={"email": "y@example.com", "role": "viewer", "csrf_token": token})
    assert ok.status_code == 200 and 'id="invite-link"' in ok.text
    with world.session() as s:
        assert [i.email for i in s.scalars(select(PortalInvite))] == ["y@example.com"]


def test_admin_creates_users_through_the_api_and_nobody_else_can(world: World) -> None:
    body = {"party_id": world.ids["oem2"], "email": "new@example.com", "display_name": "New", "role": "operator"}
    r = world.client.post("/v1/users", json=body, headers=world.admin())
    assert r.status_code == 201
    out = r.json()
    assert out["role"] == "operator" and out["party_id"] == world.ids["oem2"] and len(out["password"]) >= 12
    c = world.browser()
    assert c.post("/portal/login", data={"email": "new@example.com", "password": out["password"]}).status_code == 200
    assert world.client.post("/v1/users", json=body, headers=world.admin()).status_code == 409
    bad = world.client.post("/v1/users", json={**body, "email": "b@example.com", "role": "god"}, headers=world.admin())
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "role"
    # a party's API key is not the admin's
    from app.auth import issue_key
    from app.db import Party

    with world.session() as s:
        key = issue_key(session=s, party=s.get(Party, world.ids["oem"]))
    r = world.client.post(
        "/v1/users", json={**body, "email": "c@example.com"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 403
    assert _audit(world, "user.create")[0].target == "new@example.com"


def test_chinese_pages_and_translated_api_errors(world: World) -> None:
    c = world.browser("supplier", lang="zh")
    page = c.get("/portal/cases")
    assert '<html lang="zh-Hans">' in page.text and "追溯案例" in page.text and "已立案" in page.text
    r = c.post("/portal/api/batches", files=[("files", ("a.csv", CSV.encode()))])
    assert r.json()["error"]["localized"].startswith("会话令牌缺失或已过期")
    nf = c.get("/portal/batches/nope")
    assert nf.status_code == 404 and "未找到，或您的组织无权查看。" in nf.text
    switched = c.get("/portal/lang/en?next=/portal/cases")
    assert "Tracing cases" in switched.text and "qcn_lang=en" in switched.history[0].headers["set-cookie"]
    # the browser's language decides when there is no cookie
    fresh = world.browser("lab")
    fresh.cookies.clear()
    assert "登录 qcn" in fresh.get("/portal/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text


def test_pages_carry_a_strict_content_security_policy(world: World) -> None:
    r = world.browser("oem").get("/portal/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert "cdn" not in r.text.lower() and "https://" not in r.text  # everything served by the gateway itself
    browser = world.browser("oem")
    for path in ("/verify", "/portal/no-such-page"):
        page = browser.get(path)
        assert page.headers["content-security-policy"] == csp and page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin" and page.headers["cache-control"] == "no-store"
    static = next(p for p in (ROOT / "app" / "portal" / "static").rglob("*.css"))
    asset = browser.get("/portal/static/" + static.relative_to(ROOT / "app" / "portal" / "static").as_posix())
    assert asset.status_code == 200 and asset.headers["content-security-policy"] == csp
    assert asset.headers.get("cache-control") != "no-store"  # static files may be cached
    api = browser.get("/health")
    assert "content-security-policy" not in api.headers  # the API's JSON is not a page
