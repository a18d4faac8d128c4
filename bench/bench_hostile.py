"""Issue 13's hostile inputs (items 5, 6, 7, 8, 9, 10, 11, 12) fired at a real gunicorn on loopback; prints status codes and
times per request, so the same command gives the before and after figures in docs/SECURITY.md.

    .venv/bin/python bench/bench_hostile.py                                # this tree, SQLite, port 8401
    .venv/bin/python bench/bench_hostile.py --tree /tmp/abuse-before       # another checkout (e.g. `git archive`)
    .venv/bin/python bench/bench_hostile.py --database-url postgres://postgres@127.0.0.1:5432/bench_hostile

It builds a fresh database in the served tree's code (migrate + a few users, a course, a tier, a post), starts
gunicorn (2 sync workers, throttles raised) on 127.0.0.1, sends each hostile request once (the DoS ones with a
client timeout of 120 s), and for the items that are not HTTP runs that tree's management commands: run_campaigns
after an admin-created campaign (5), import_platform_data with a surrogate in a properties cell (9), and a Celery
worker killed with SIGKILL mid-send followed by the recovery sweep when the tree has one (11). Logins (7) run last
against the same two workers, with the tree's own login limits (only the DRF rates are raised); production settings
(12) are read by that tree's `manage.py check --deploy` with the README's production environment. Nothing asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
CELERY = str(ROOT / ".venv" / "bin" / "celery")

SETUP = r"""
import json
from datetime import timedelta
from django.utils import timezone
from rest_framework.authtoken.models import Token
from tests.members.factories import CourseFactory, StaffFactory, SubscriptionFactory, TierFactory, UserFactory
from tests.community.factories import PostFactory
alice = UserFactory(email="alice@example.com", display_name="Alice")
alice.set_password("pw-alice-123"); alice.save()
bob = UserFactory(email="bob@example.com", display_name="Bob")
staff = StaffFactory(email="staff@example.com", is_superuser=False)
staff.set_password("pw-staff-123"); staff.save()
admin = StaffFactory(email="admin@example.com")
admin.set_password("pw-admin-123"); admin.save()
course = CourseFactory(slug="sql", price=99)
tier = TierFactory(slug="plus")
post = PostFactory(author=bob)
sub = SubscriptionFactory(member=bob, tier=tier, current_period_end=timezone.now() + timedelta(days=3))
from analytics.models import ModelVersion, PropensityScore
version = ModelVersion.objects.create(as_of=timezone.now(), horizon_days=30, algorithm="bench")
for scored in [UserFactory(marketing_opt_in=True) for _ in range(20)]:
    PropensityScore.objects.create(member=scored, model_version=version, probability=0.1,
                                   as_of=timezone.now() - timedelta(hours=1))
print(json.dumps({"alice": Token.objects.create(user=alice).key, "bob": Token.objects.create(user=bob).key,
                  "staff": Token.objects.create(user=staff).key, "admin": Token.objects.create(user=admin).key,
                  "post": post.pk, "member": bob.pk, "subscription": sub.pk}))
"""


def last_line(text: str) -> str:
    """manage.py shell prints its auto-import notice first; the answer is the last line."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


class Server:
    def __init__(self, tree: Path, env: dict[str, str], port: int) -> None:
        self.tree, self.env, self.port = tree, env, port
        self.base = f"http://{HOST}:{port}"

    def manage(self, *args: str, input_text: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "manage.py", *args], cwd=self.tree, env=self.env, input=input_text,
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [GUNICORN, "config.wsgi", "-b", f"{HOST}:{self.port}", "-w", "2", "--timeout", "180",
             "--chdir", str(self.tree)], cwd=self.tree, env=self.env,
            stdout=subprocess.DEVNULL, stderr=open(Path(self.env["VAR_DIR"]) / "gunicorn.log", "w"))  # noqa: SIM115
        for _ in range(100):
            try:
                requests.get(self.base + "/api/v1/health/", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def session(server: Server, email: str, password: str) -> requests.Session:
    s = requests.Session()
    page = s.get(server.base + "/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    s.post(server.base + "/accounts/login/", data={"username": email, "password": password,
                                                   "csrfmiddlewaretoken": token},
           headers={"Referer": server.base + "/accounts/login/"})
    return s


def csrf_post(s: requests.Session, server: Server, path: str, data: dict, **kw: object) -> requests.Response:
    data = {**data, "csrfmiddlewaretoken": s.cookies.get("csrftoken", "")}
    return s.post(server.base + path, data=data, headers={"Referer": server.base + path}, timeout=120, **kw)


ROWS: list[tuple[str, str, str, str]] = []


def record(item: str, what: str, call) -> requests.Response | None:
    started = time.perf_counter()
    try:
        response = call()
        outcome = str(response.status_code)
    except requests.RequestException as exc:
        response, outcome = None, f"no answer ({type(exc).__name__})"
    ROWS.append((item, what, outcome, f"{time.perf_counter() - started:.2f} s"))
    return response


def api(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}", "Content-Type": "application/json"}


def run_http(server: Server, ids: dict) -> None:
    base = server.base
    alice_web = session(server, "alice@example.com", "pw-alice-123")
    admin_web = session(server, "admin@example.com", "pw-admin-123")
    staff_web = session(server, "staff@example.com", "pw-staff-123")

    # 5. Admin: a campaign saved with the add form's defaults and no discount value.
    page = admin_web.get(base + "/admin/analytics/campaign/add/")
    now = time.strftime("%Y-%m-%d")
    form = {"name": "Only a name", "status": "active", "audience": "at_risk", "discount_type": "percent",
            "applies_to": "all", "validity_days": "14", "holdout_share": "0.200", "starts_at_0": now,
            "starts_at_1": "00:00:00", "cooldown_days": "30", "conversion_window_days": "30", "created_at_0": now,
            "created_at_1": "00:00:00"}
    r = record("5", "admin add campaign, only a name (302 = saved)", lambda: csrf_post(
        admin_web, server, "/admin/analytics/campaign/add/", form, allow_redirects=False))
    if r is not None and r.status_code == 200:
        shown = re.findall(r'class="errorlist[^"]*"[^>]*>\s*<li>([^<]+)', r.text)
        ROWS.append(("5", "admin's message", "; ".join(dict.fromkeys(shown))[:120] or "-", ""))
    inverted = {**form, "name": "Inverted", "percent_off": "20", "min_churn_risk": "0.9", "max_churn_risk": "0.1",
                "ends_at_0": "2020-01-01", "ends_at_1": "00:00:00"}
    record("5", "admin add campaign, inverted dates and risks (302 = saved)", lambda: csrf_post(
        admin_web, server, "/admin/analytics/campaign/add/", inverted, allow_redirects=False))
    del page

    # 6. Posts.
    post_url = "/api/v1/posts/"
    record("6", 'API post "[" * 20000', lambda: requests.post(
        base + post_url, json={"title": "b", "body": "[" * 20000}, headers=api(ids["alice"]), timeout=120))
    record("6", 'API post "- " * 1000', lambda: requests.post(
        base + post_url, json={"title": "l", "body": "- " * 1000}, headers=api(ids["alice"]), timeout=120))
    record("6", "form post '- ' * 1000", lambda: csrf_post(
        alice_web, server, "/community/posts/new/", {"title": "l", "body": "- " * 1000}, allow_redirects=False))
    record("6", "API post, 1 MB body", lambda: requests.post(
        base + post_url, json={"title": "m", "body": "a" * 1_000_000}, headers=api(ids["alice"]), timeout=120))
    record("6", "form post, 1 MB body", lambda: csrf_post(
        alice_web, server, "/community/posts/new/", {"title": "m", "body": "a" * 1_000_000}, allow_redirects=False))
    # Others comment while a hostile post renders (two gunicorn workers: one renders, one takes the comments).
    statuses: list[int | str] = []

    def comments() -> None:
        time.sleep(0.5)
        for n in range(10):
            try:
                statuses.append(requests.post(base + f"/api/v1/posts/{ids['post']}/comments/", json={"body": f"c{n}"},
                                              headers=api(ids["bob"]), timeout=120).status_code)
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)

    thread = threading.Thread(target=comments)
    thread.start()
    record("6", 'form post "[" * 20000 while bob comments', lambda: csrf_post(
        alice_web, server, "/community/posts/new/", {"title": "b2", "body": "[" * 20000}, allow_redirects=False))
    thread.join()
    failed = sum(1 for st in statuses if st != 201)
    ROWS.append(("6", "bob's 10 comments meanwhile: failed", str(failed), str(sorted(set(map(str, statuses))))))

    # 8. Permissions: staff without any permission.
    staff_api = ["/api/v1/staff/members/", "/api/v1/staff/reports/overview/", "/api/v1/staff/reports/risk/",
                 "/api/v1/staff/reports/cohorts/", "/api/v1/staff/campaigns/", "/api/v1/staff/model-versions/",
                 "/api/v1/staff/job-runs/"]
    opened = [p for p in staff_api
              if requests.get(base + p, headers=api(ids["staff"]), timeout=60).status_code == 200]
    ROWS.append(("8", "staff without permissions: staff API endpoints read (of 7)", str(len(opened)), ""))
    record("8", "staff without permissions: job trigger with a bad job (400 = passed the check)",
           lambda: requests.post(base + "/api/v1/staff/jobs/trigger/", json={"job": "x"}, headers=api(ids["staff"]),
                                 timeout=60))
    record("8", "staff without permissions: member profile page", lambda: staff_web.get(
        base + f"/staff/members/{ids['member']}/", allow_redirects=False, timeout=60))
    record("8", "staff without permissions: referrals report", lambda: staff_web.get(
        base + "/staff/members/referrals/", allow_redirects=False, timeout=60))

    # 9. Bad data through the event API: one event with a lone surrogate among three.
    def event(n: int, props: str) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        return (f'{{"event_id": "ev-{n}-{time.time_ns()}", "kind": "lesson_viewed", "occurred_at": "{stamp}", '
                f'"properties": {props}}}')
    body = '{"events": [' + ", ".join([event(1, "{}"), event(2, '{"note": "\\ud800"}'), event(3, "{}")]) + "]}"
    r = record("9", "event batch, 1 of 3 with \\ud800 in properties", lambda: requests.post(
        base + "/api/v1/events/batch/", data=body.encode(), headers=api(ids["alice"]), timeout=60))
    if r is not None and r.headers.get("Content-Type", "").startswith("application/json"):
        data = r.json()
        ROWS.append(("9", "  accepted / rejected", f"{data.get('accepted')} / {data.get('rejected')}", ""))

    # 10. Fuzz findings.
    depth = 100_000
    nested = '{"title": "x", "body": ' + "[" * depth + "]" * depth + "}"
    record("10", "POST /api/v1/posts/ JSON nested 100,000 deep", lambda: requests.post(
        base + post_url, data=nested, headers=api(ids["alice"]), timeout=60))
    record("10", "PATCH /api/v1/me/profile/ JSON nested 100,000 deep", lambda: requests.patch(
        base + "/api/v1/me/profile/", data=nested, headers=api(ids["alice"]), timeout=60))
    record("10", "/staff/?end=9999-12-31", lambda: admin_web.get(base + "/staff/?end=9999-12-31", timeout=60))
    record("10", "/staff/cohorts/?start=0001-01-01", lambda: admin_web.get(base + "/staff/cohorts/?start=0001-01-01",
                                                                           timeout=60))
    record("10", 'PATCH preferred_language "\\ud800"', lambda: requests.patch(
        base + "/api/v1/me/profile/", data=b'{"preferred_language": "\\ud800"}', headers=api(ids["alice"]),
        timeout=60))
    record("10", "follow with next=9999-12-31", lambda: csrf_post(
        alice_web, server, f"/community/members/{ids['member']}/follow/", {"next": "9999-12-31"},
        allow_redirects=False))
    record("10", "checkout coupon, 1 MB (form)", lambda: csrf_post(
        alice_web, server, "/checkout/course/sql/", {"coupon": "A" * 1_000_000, "action": "apply"}))
    record("10", "quote coupon_code, 1 MB (API)", lambda: requests.post(
        base + "/api/v1/me/quote/", json={"course": "sql", "coupon_code": "A" * 1_000_000},
        headers=api(ids["alice"]), timeout=60))
    record("10", "/staff/?segment=%00", lambda: admin_web.get(base + "/staff/?segment=%00", timeout=60))
    record("10", "/r/%00/ (referral code)", lambda: alice_web.get(base + "/r/%00/", timeout=60))
    record("10", "form post title with NUL", lambda: csrf_post(
        alice_web, server, "/community/posts/new/", {"title": "a\x00b", "body": "x"}, allow_redirects=False))


def _counts(codes: list) -> str:
    return ", ".join(f"{code}x{codes.count(code)}" for code in dict.fromkeys(codes))


def _login_form(server: Server, path: str, username: str, password: str, xff: str | None = None) -> int | str:
    """One login attempt from a fresh client (new connection, new cookies: it may land on either worker)."""
    s = requests.Session()
    try:
        page = s.get(server.base + path, timeout=60)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        headers = {"Referer": server.base + path, **({"X-Forwarded-For": xff} if xff else {})}
        data = {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1) if token else ""}
        return s.post(server.base + path, data=data, headers=headers, allow_redirects=False, timeout=60).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


def _axes_reset(server: Server) -> None:
    server.manage("axes_reset")  # absent before django-axes: nothing to reset


def run_logins(server: Server, ids: dict) -> None:
    """7. Repeated wrong passwords, from fresh clients spread over both gunicorn workers."""
    _axes_reset(server)
    codes = [_login_form(server, "/accounts/login/", "alice@example.com", "wrong") for _ in range(8)]
    right = _login_form(server, "/accounts/login/", "alice@example.com", "pw-alice-123")
    ROWS.append(("7", "HTML login: 8 wrong passwords for one account", _counts(codes), f"then the right one: {right}"))
    _axes_reset(server)
    codes = [_login_form(server, "/admin/login/", "admin@example.com", "wrong") for _ in range(8)]
    right = _login_form(server, "/admin/login/", "admin@example.com", "pw-admin-123")
    ROWS.append(("7", "admin login: 8 wrong passwords", _counts(codes), f"then the right one: {right} (302 = in)"))
    _axes_reset(server)
    codes = [_login_form(server, "/accounts/login/", f"guess{i}@example.com", "wrong", xff=f"198.51.100.{i}")
             for i in range(8)]
    ROWS.append(("7", "HTML login: 8 accounts guessed, X-Forwarded-For rotated each time", _counts(codes), ""))
    _axes_reset(server)
    codes = []
    for i in range(8):
        try:
            codes.append(requests.post(server.base + "/api/v1/me/tokens/", json={"email": f"guess{i}@example.com",
                                       "password": "wrong"}, headers={"X-Forwarded-For": f"203.0.113.{i}"},
                                       timeout=60).status_code)
        except requests.RequestException as exc:
            codes.append(type(exc).__name__)
    ROWS.append(("7", "API token: 8 accounts guessed, X-Forwarded-For rotated each time", _counts(codes), ""))
    _axes_reset(server)


PRODUCTION_ENV = {  # README "Production" (settings only), as tests/config/test_production_settings.py uses it
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECRET_KEY": "x7#k2!prod-like-secret-with-enough-entropy-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "learning.example", "CSRF_TRUSTED_ORIGINS": "https://learning.example",
    "SITE_URL": "https://learning.example", "TRUSTED_PROXY_COUNT": "1", "SECURE_HSTS_PRELOAD": "1",
}


def run_settings(server: Server) -> None:
    """12. The tree's production settings: check --deploy, DEBUG when unset, the CSP header on a page."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "SECRET", "SECURE", "SESSION_COOKIE",
                                                                       "CSRF", "REDIS_URL", "DATABASE_URL", "API_"))}
    env = {**base, "VAR_DIR": server.env["VAR_DIR"], "PYTHONPATH": str(server.tree), **PRODUCTION_ENV}
    done = subprocess.run([PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=server.tree,
                          env=env, capture_output=True, text=True, timeout=300)
    found = re.findall(r"\((security\.W\d+|[a-z_.]+\.[EW]\d+)\)", done.stdout + done.stderr)
    ROWS.append(("12", "check --deploy --fail-level WARNING, production env: exit status", str(done.returncode),
                 (f"{len(found)} warnings: " + " ".join(sorted(set(found)))) if found else "no issues"))
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    done = subprocess.run([PYTHON, "-c", code], cwd=server.tree, env=env, capture_output=True, text=True, timeout=120)
    ROWS.append(("12", "DEBUG with DJANGO_DEBUG unset", last_line(done.stdout) or "-", ""))


def run_csp(server: Server) -> None:
    r = requests.get(server.base + "/", timeout=60)
    csp = r.headers.get("Content-Security-Policy", "")
    ROWS.append(("12", "Content-Security-Policy header on the home page", "present" if csp else "absent", csp[:60]))


def run_commands(server: Server, ids: dict) -> None:
    # 5. The campaign saved above (if the admin took it), then a healthy one and one stored fine whose tier was
    # deleted since, run by the job: before, the first one's IntegrityError stopped every campaign after it.
    server.manage("shell", input_text=(
        "from decimal import Decimal\nfrom datetime import timedelta\nfrom django.utils import timezone\n"
        "from analytics.models import Campaign\nfrom members.models import MembershipTier\n"
        "start = timezone.now() - timedelta(days=1)\n"
        "Campaign.objects.create(name='Healthy', status='active', percent_off=Decimal(20), starts_at=start)\n"
        "gone = MembershipTier.objects.create(name='Gone', slug='gone', monthly_price=1, yearly_price=10)\n"
        "Campaign.objects.create(name='Tier deleted', status='active', audience='tier', tier=gone, "
        "percent_off=Decimal(10), starts_at=start)\ngone.delete()\n"))
    done = server.manage("run_campaigns")
    last = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or ["-"])[-1]
    ROWS.append(("5", "manage.py run_campaigns: exit status", str(done.returncode), last[:110]))
    assigned = last_line(server.manage("shell", input_text=(
        "from analytics.models import CampaignAssignment\n"
        "print(CampaignAssignment.objects.filter(campaign__name='Healthy').count())\n")).stdout)
    ROWS.append(("5", "  members assigned by the healthy campaign (of 20 scored)", assigned, ""))
    # 9. The importer with a lone surrogate (JSON escape) in a properties cell on line 3.
    path = Path(server.env["VAR_DIR"]) / "events.csv"
    path.write_text("event_id,member_id,kind,occurred_at,properties\n"
                    'e1,m1,login,2024-02-02T09:00:00Z,"{""a"": 1}"\n'
                    'e2,m1,login,2024-02-02T10:00:00Z,"{""note"": ""\\ud800""}"\n', encoding="utf-8")
    done = server.manage("import_platform_data", "--events", str(path), "--no-progress")
    text = (done.stderr.strip() or done.stdout.strip()).splitlines()
    first = next((line for line in text if "events.csv" in line or "Error" in line), text[-1] if text else "-")
    ROWS.append(("9", "import_platform_data, surrogate on line 3: exit status", str(done.returncode), first[:110]))


def run_worker_kill(server: Server, ids: dict) -> None:
    """11. A worker killed with SIGKILL while its SMTP server hangs: the MessageLog row is left 'sending'."""
    blackhole = socket.socket()
    blackhole.bind((HOST, server.port + 1))
    blackhole.listen(5)  # accepts, never greets: the SMTP client waits until the worker is killed
    env = {**server.env, "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": HOST,
           "EMAIL_PORT": str(server.port + 1)}
    worker = subprocess.Popen([CELERY, "-A", "config", "worker", "-Q", "email", "-c", "1", "--pool", "solo",
                               "-l", "warning"], cwd=server.tree, env=env, stdout=subprocess.DEVNULL,
                              stderr=open(Path(server.env["VAR_DIR"]) / "worker.log", "w"))  # noqa: SIM115
    create = (
        "from analytics.outreach.messaging import message_create\nfrom members.models import User\n"
        f"m = message_create(member=User.objects.get(pk={ids['member']}), kind='renewal_reminder', "
        f"dedupe_key='bench:kill', context={{'subscription_id': {ids['subscription']}}})\nprint(m.pk)\n")
    server.manage("shell", input_text=create)
    status_of = "from analytics.models import MessageLog\nprint(MessageLog.objects.get(dedupe_key='bench:kill').status)\n"
    status = "queued"
    for _ in range(120):
        status = last_line(server.manage("shell", input_text=status_of).stdout)
        if status != "queued":
            break
        time.sleep(1)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    blackhole.close()
    ROWS.append(("11", "message row after SIGKILL of its worker mid-send", status, ""))
    sweep = (
        "from datetime import timedelta\nfrom django.utils import timezone\nfrom analytics.models import MessageLog\n"
        "try:\n    from analytics.recovery import stuck_work_recover\nexcept ImportError:\n"
        "    from analytics.outreach.messaging import messages_requeue_stale\n"
        "    messages_requeue_stale(kinds=['renewal_reminder'], when=timezone.now() + timedelta(minutes=16))\n"
        "    print('no recovery sweep;', MessageLog.objects.get(dedupe_key='bench:kill').status)\n"
        "else:\n    stuck_work_recover(when=timezone.now() + timedelta(minutes=16))\n"
        "    m = MessageLog.objects.get(dedupe_key='bench:kill'); print('swept;', m.status, '-', m.error[:60])\n")
    done = server.manage("shell", input_text=sweep)
    ROWS.append(("11", "16 minutes later, after the beat sweep", last_line(done.stdout) or done.stderr[-200:], ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--port", type=int, default=8401)
    parser.add_argument("--database-url")
    parser.add_argument("--skip-worker", action="store_true")
    args = parser.parse_args()
    if not (8400 <= args.port <= 8498) or not _free(args.port):
        raise SystemExit(f"port {args.port} is busy or outside 8400-8498")
    var_dir = Path(tempfile.mkdtemp(prefix="bench_hostile_"))
    env = {**os.environ, "VAR_DIR": str(var_dir), "DJANGO_DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
           "API_THROTTLE_ANON": "100000/minute", "API_THROTTLE_USER": "100000/minute",
           "API_THROTTLE_EVENTS": "100000/minute", "API_THROTTLE_IP": "100000/minute",
           "API_THROTTLE_LOGIN": "100000/minute",
           "PYTHONPATH": str(args.tree)}
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
        name = args.database_url.rsplit("/", 1)[1]
        admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    server = Server(args.tree.resolve(), env, args.port)
    migrated = server.manage("migrate", "--noinput", "-v", "0")
    if migrated.returncode:
        raise SystemExit(migrated.stderr[-2000:])
    setup = server.manage("shell", input_text=SETUP)
    ids = json.loads(last_line(setup.stdout))
    server.start()
    try:
        run_http(server, ids)
        run_csp(server)
        run_logins(server, ids)
    finally:
        server.stop()
    # The kill first: run_campaigns queues campaign emails the worker would take (and hang on) before ours.
    if not args.skip_worker:
        run_worker_kill(server, ids)
    run_commands(server, ids)
    run_settings(server)
    shutil.rmtree(var_dir, ignore_errors=True)
    code = subprocess.run(["git", "-C", str(args.tree), "log", "-1", "--format=%h"], capture_output=True,
                          text=True).stdout.strip() or "(no git)"
    print(f"tree {args.tree} ({code}), database {args.database_url or 'SQLite'}, gunicorn 2 sync workers, DEBUG on")
    print(f"{'item':<4} {'request':<72} {'answer':<10} time/detail")
    for item, what, outcome, detail in ROWS:
        print(f"{item:<4} {what:<72} {outcome:<10} {detail}")


if __name__ == "__main__":
    sys.exit(main())
