"""Money under concurrent requests: a real gunicorn on loopback, PostgreSQL, N identical requests at once.

    .venv/bin/python bench/bench_money.py --database-url postgres://postgres@127.0.0.1:5432/bench_money
    .venv/bin/python bench/bench_money.py --database-url postgres://postgres@127.0.0.1:5432/bench_money_before \
        --source /tmp/money-before          # the same scenarios against another checkout (git archive <rev>)

Scenarios (issue 13, findings 1-3), each fired by threads released together through one barrier:
  api_purchase   20 x POST /api/v1/courses/<slug>/purchase/ with one Idempotency-Key and a coupon
  form_purchase  10 x POST of one rendered checkout form (its hidden inputs, csrf and, if any, its token)
  renew_now      10 x POST of one rendered "Renew now" form
  offer_accept   13 x POST /api/v1/me/membership/offer/ {"reason": "too_expensive"}
  included       (finding 4) a Pro member (all-course access) buys one course through the checkout form, another through the API
Each scenario runs `--runs` times with fresh members. Charges are counted by a payment provider that wraps the local
one, sleeps like a real provider call (`--provider-ms`, 200 by default) and appends one line per charge to a file.

The database named in --database-url is dropped and re-created (it must not be a database anyone else uses);
gunicorn listens on --port (8800-8899 is this bench's range on the shared machine) and is stopped at the end.
Nothing here asserts; it prints what happened.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

PROVIDER_MODULE = '''
import os, time
try:
    from members.commerce.payments import LocalPaymentProvider
except ImportError:  # a checkout from before the restructure (issue 15)
    from members.payments import LocalPaymentProvider


class SlowCountingProvider(LocalPaymentProvider):
    def charge(self, *, token, amount, currency, description, idempotency_key):
        time.sleep(int(os.environ.get("BENCH_PROVIDER_MS", "200")) / 1000)
        result = super().charge(token=token, amount=amount, currency=currency, description=description,
                                idempotency_key=idempotency_key)
        with open(os.environ["BENCH_CHARGES_FILE"], "a") as out:
            out.write(f"{description}|{amount}|{result.ok}\\n")
        return result
'''

SEED = '''
import json, sys
from datetime import timedelta
from decimal import Decimal
import django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from members.models import Benefit, Coupon, Course, MembershipTier, RetentionOffer, Subscription, User

runs = int(sys.argv[1])
call_command("migrate", verbosity=0, interactive=False)
now = timezone.now()
tier = MembershipTier.objects.create(name="Plus", slug="plus", monthly_price=Decimal("49.00"),
                                     yearly_price=Decimal("490.00"))
pro = MembershipTier.objects.create(name="Pro", slug="pro", monthly_price=Decimal("99.00"),
                                    yearly_price=Decimal("990.00"))
Benefit.objects.create(tier=pro, kind="all_courses")
RetentionOffer.objects.create(name="Stay", kind="discount", percent_off=Decimal("30"), headline="Stay for less")
Coupon.objects.create(code="MANY", percent_off=Decimal("20"), max_redemptions=None, max_per_member=100,
                      valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30))

def member(label):
    user = User.objects.create_user(email=f"{label}@bench.example", password=None, display_name=label)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return user, Token.objects.create(user=user).key, session.session_key

out = []
for run in range(runs):
    row = {}
    for scenario in ("api_purchase", "form_purchase", "renew_now", "offer_accept", "included"):
        user, token, session = member(f"{scenario}-{run}")
        row[scenario] = {"member_id": user.pk, "token": token, "session": session}
        if scenario == "included":  # a Pro member (all courses included) and a course on sale
            start = now - timedelta(days=10)
            Subscription.objects.create(member=user, tier=pro, status="active", started_at=start,
                                        current_period_start=start, current_period_end=start + timedelta(days=30))
            course = Course.objects.create(title=f"{scenario} {run}", slug=f"{scenario}-{run}",
                                           price=Decimal("200.00"), is_published=True, published_at=now)
            row[scenario]["slug"] = course.slug
            course = Course.objects.create(title=f"{scenario} {run}", slug=f"{scenario}-api-{run}",
                                           price=Decimal("200.00"), is_published=True, published_at=now)
            row[scenario]["api_slug"] = course.slug
        elif scenario.endswith("purchase"):
            course = Course.objects.create(title=f"{scenario} {run}", slug=f"{scenario}-{run}".replace("_", "-"),
                                           price=Decimal("200.00"), is_published=True, published_at=now)
            row[scenario]["slug"] = course.slug
        else:
            start = now - timedelta(days=10)
            sub = Subscription.objects.create(member=user, tier=tier, status="active", started_at=start,
                                              current_period_start=start, current_period_end=start + timedelta(days=30))
            row[scenario]["subscription_id"] = sub.pk
            row[scenario]["period_end"] = sub.current_period_end.isoformat()
    out.append(row)
print(json.dumps(out))
'''


def call(port: int, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
         ) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode(errors="replace")
    finally:
        conn.close()


def fire(n: int, call: Callable[[int], int]) -> list[int | str]:
    barrier = threading.Barrier(n)
    results: list[int | str] = [0] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - the figure is what each request got
            results[i] = type(exc).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _hidden(html: str, action: str | None = None) -> dict[str, str]:
    if action is not None:
        match = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
        html = match.group(1) if match else ""
    fields = {}
    for tag in re.findall(r'<input[^>]*type="hidden"[^>]*>', html):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


def _form_post(port: int, path: str, session: str, page_path: str, extra: dict[str, str], n: int,
               action: str | None = None) -> list[int | str]:
    from urllib.parse import urlencode

    status, headers, html = call(port, "GET", page_path, headers={"Cookie": f"sessionid={session}"})
    csrf_cookie = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
    fields = {**_hidden(html, action), **extra}
    cookie = f"sessionid={session}" + (f"; csrftoken={csrf_cookie.group(1)}" if csrf_cookie else "")
    body = urlencode(fields).encode()
    head = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    return fire(n, lambda i: call(port, "POST", path, body=body, headers=head)[0])


def scenarios(port: int, row: dict[str, dict], key: str) -> dict[str, list[int | str]]:
    api = row["api_purchase"]
    body = json.dumps({"coupon_code": "MANY"}).encode()
    head = {"Authorization": f"Token {api['token']}", "Content-Type": "application/json", "Idempotency-Key": key}
    out = {"api_purchase": fire(20, lambda i: call(port, "POST", f"/api/v1/courses/{api['slug']}/purchase/",
                                                   body=body, headers=head)[0])}
    form = row["form_purchase"]
    checkout = f"/checkout/course/{form['slug']}/"
    out["form_purchase"] = _form_post(port, checkout, form["session"], checkout,
                                      {"coupon": "MANY", "payment_token": "local:ok", "action": "pay"}, 10)
    renew = row["renew_now"]
    out["renew_now"] = _form_post(port, "/membership/renew/", renew["session"], "/membership/",
                                  {"payment_token": "local:ok"}, 10, action="/membership/renew/")
    offer = row["offer_accept"]
    head = {"Authorization": f"Token {offer['token']}", "Content-Type": "application/json"}
    body = json.dumps({"reason": "too_expensive"}).encode()
    out["offer_accept"] = fire(13, lambda i: call(port, "POST", "/api/v1/me/membership/offer/", body=body,
                                                  headers=head)[0])
    included = row["included"]  # finding 4: once through the checkout form, once through the API
    checkout = f"/checkout/course/{included['slug']}/"
    # The checkout page of an included course has no pay form now (and had one before): the CSRF token comes from the
    # membership page, the fields are what the pay form sends.
    status, headers, html = call(port, "GET", "/membership/", headers={"Cookie": f"sessionid={included['session']}"})
    csrf_cookie = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    cookie = f"sessionid={included['session']}" + (f"; csrftoken={csrf_cookie.group(1)}" if csrf_cookie else "")
    fields = {"csrfmiddlewaretoken": csrf.group(1) if csrf else "", "payment_token": "local:ok", "action": "pay"}
    form = [call(port, "POST", checkout, body=urlencode(fields).encode(),
                 headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})[0]]
    head = {"Authorization": f"Token {included['token']}", "Content-Type": "application/json"}
    out["included"] = form + [call(port, "POST", f"/api/v1/courses/{included['api_slug']}/purchase/", body=b"{}",
                                   headers=head)[0]]
    return out


def measure(database_url: str, row: dict[str, dict]) -> dict[str, str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        def one(sql: str, *args: object) -> object:
            return conn.execute(sql, args).fetchone()[0]

        figures = {}
        for scenario in ("api_purchase", "form_purchase"):
            member = row[scenario]["member_id"]
            paid = one("select count(*) from members_order where member_id=%s and status='paid'", member)
            uses = one("select count(*) from members_couponredemption where member_id=%s", member)
            figures[scenario] = f"{paid} paid orders, {uses} coupon uses"
        member = row["renew_now"]["member_id"]
        paid = one("select count(*) from members_order where member_id=%s and status='paid'", member)
        moved = one("select extract(epoch from current_period_end - %s::timestamptz) / 86400 from members_subscription "
                    "where id=%s", row["renew_now"]["period_end"], row["renew_now"]["subscription_id"])
        figures["renew_now"] = f"{paid} paid renewals, period end moved {round(float(moved))} days"
        coupons = one("select count(*) from members_coupon where assigned_member_id=%s and source='retention'",
                      row["offer_accept"]["member_id"])
        figures["offer_accept"] = f"{coupons} save-offer coupons"
        member = row["included"]["member_id"]
        paid = one("select count(*) from members_order where member_id=%s and status='paid' and amount_paid > 0", member)
        figures["included"] = f"{paid} paid orders above zero for an included course"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="postgres://… of a scratch database (re-created)")
    parser.add_argument("--source", default=str(ROOT), help="the checkout whose code gunicorn serves")
    parser.add_argument("--port", type=int, default=8801, help="loopback port for gunicorn (8800-8899)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=6, help="threads per worker (gthread)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each scenario, fresh members each")
    parser.add_argument("--provider-ms", type=int, default=200, help="simulated provider latency per charge")
    args = parser.parse_args()
    source = Path(args.source).resolve()

    import psycopg

    parts = urlsplit(args.database_url)
    name = parts.path.lstrip("/")
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    work = Path(tempfile.mkdtemp(prefix="bench-money-"))
    (work / "bench_money_provider.py").write_text(PROVIDER_MODULE)
    charges_file = work / "charges.log"
    charges_file.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "0", "DATABASE_URL": args.database_url,
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789", "VAR_DIR": str(work / "var"),
        "ALLOWED_HOSTS": f"{HOST},localhost", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
        "SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "WARNING", "PAYMENT_PROVIDER": "bench_money_provider.SlowCountingProvider",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "BENCH_PROVIDER_MS": str(args.provider_ms), "BENCH_CHARGES_FILE": str(charges_file),
        "PYTHONPATH": os.pathsep.join([str(work), str(source)]),
        "API_THROTTLE_ANON": "100000000/minute", "API_THROTTLE_USER": "100000000/minute",
        "API_THROTTLE_IP": "100000000/minute",
    })
    seeded = subprocess.run([sys.executable, "-c", SEED, str(args.runs)], env=env, cwd=source, check=True,
                            capture_output=True, text=True)
    rows = json.loads(seeded.stdout.strip().splitlines()[-1])
    # DEBUG is off, so pages need the hashed static manifest (without it every page is a 500 and forms never load).
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, cwd=source,
                   check=True)
    command = [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi:application", "--bind", f"{HOST}:{args.port}",
               "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", "gthread",
               "--log-level", "warning", "--chdir", str(source), "--timeout", "120"]
    server_log = (work / "gunicorn.log").open("w")
    server = subprocess.Popen(command, env=env, cwd=source, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240  # a loaded shared machine starts 4 workers slowly
        while True:
            try:
                if call(args.port, "GET", "/api/v1/tiers/")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.3)
        print(f"source {source}  gunicorn {args.workers}x{args.threads} on :{args.port}  provider {args.provider_ms} ms")
        for run, row in enumerate(rows):
            before = len(charges_file.read_text().splitlines())
            statuses = scenarios(args.port, row, key=f"bench-run-{run}")
            lines = charges_file.read_text().splitlines()[before:]
            figures = measure(args.database_url, row)
            for scenario, got in statuses.items():
                charged = sum(1 for line in lines if line.endswith("|True") and _belongs(line, scenario, run))
                counts = {s: got.count(s) for s in sorted(set(got), key=str)}
                print(f"run {run}  {scenario:<14} {len(got):>2} requests -> {charged:>2} charges; "
                      f"{figures[scenario]}; responses {counts}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server_log.close()
        print(f"server log: {work / 'gunicorn.log'}")


def _belongs(line: str, scenario: str, run: int) -> bool:
    """Which scenario a charge line came from (courses are titled '<scenario> <run>'; renewals are the tier)."""
    description = line.split("|", 1)[0]
    if scenario.endswith("purchase") or scenario == "included":
        return description == f"{scenario} {run}"
    return scenario == "renew_now" and description.startswith("Plus")


if __name__ == "__main__":
    main()
