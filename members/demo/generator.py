"""Simulate a knowledge-paid platform month by month and bulk-insert the result.

Why this bypasses members.services: the services are the right path for one request at a time (locks, on-commit
events, provider calls), but replaying a year of 5,000 members through them would take hours. The simulation keeps
the same invariants the services keep (one live subscription per member, paid orders have paid_at, coupon counters
equal their redemptions, enrollments before lessons) and writes everything with bulk_create inside one transaction.

It is also the one place outside analytics that writes community and analytics rows (posts, events, reminder rules):
it stands in for months of traffic that would have arrived through those apps' own entry points. Models of other
apps are looked up through the app registry so members never imports their modules.

Determinism: all randomness comes from numpy's default_rng(seed) and random.Random(seed), and all time from the one
`today` anchor; primary keys are assigned here, in generation order, so two runs on empty databases are identical.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

import numpy as np
from dateutil.relativedelta import relativedelta
from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils.text import slugify

from members.commerce.pricing import ZERO, money, percent_of
from members.demo import behaviour as bm
from members.demo import catalogue as cat
from members.demo import media as demo_media
from members.demo import texts
from members.models import (
    Benefit,
    BillingPeriod,
    Coupon,
    CouponRedemption,
    Course,
    Enrollment,
    Lesson,
    LessonProgress,
    MembershipTier,
    Order,
    Referral,
    ReferralCode,
    ReferralProgram,
    RetentionOffer,
    Review,
    ReviewHelpful,
    Subscription,
    SubscriptionChange,
    Topic,
    User,
)

STAFF_EMAIL = "staff@demo.test"
STAFF_PASSWORD = "demo-staff-pass"
LEARNER_EMAIL = "learner@demo.test"
LEARNER_PASSWORD = "demo-learner-pass"
BATCH = 2000
CAMPAIGN_SHARE = 0.08  # share of members who receive a random personal coupon each month (a natural experiment)
CAMPAIGN_PERCENT = Decimal(20)
CAMPAIGN_VALID_DAYS = 14
RENEWAL_FAIL = 0.05
RECOVERY = 0.6
SAVE_OFFER_ACCEPT = 0.2
GRACE_DAYS = 7
REFUND_RATE = 0.03
FAIL_RATE = 0.04
REVIEW_RATE = 0.45  # share of course completions followed by a rating
REFERRAL_WINDOW_DAYS = 14
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass
class SeedResult:
    members: int
    counts: dict[str, int]
    today: datetime


@dataclass
class SubState:
    id: int
    member_idx: int
    tier: int  # index into tiers
    period: str
    started_at: datetime
    period_start: datetime
    period_end: datetime
    trial_end: datetime | None
    status: str
    renewal_count: int = 0
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    reason: str = ""
    ended_at: datetime | None = None
    grace_until: datetime | None = None
    attempts: int = 0
    last_attempt: datetime | None = None
    save_offer_used: bool = False


@dataclass
class CouponState:
    id: int
    code: str
    percent_off: Decimal | None
    amount_off: Decimal | None
    applies_to: str
    valid_from: datetime
    valid_until: datetime | None
    max_redemptions: int | None
    source: str
    description: str
    assigned_idx: int | None = None
    created_at: datetime | None = None
    redeemed: int = 0
    redeemers: set[int] = field(default_factory=set)

    def usable(self, when: datetime, idx: int) -> bool:
        return (
            self.valid_from <= when
            and (self.valid_until is None or when < self.valid_until)
            and (self.max_redemptions is None or self.redeemed < self.max_redemptions)
            and idx not in self.redeemers
            and (self.assigned_idx is None or self.assigned_idx == idx)
        )

    def off(self, amount: Decimal) -> Decimal:
        off = percent_of(amount, self.percent_off) if self.percent_off is not None else money(self.amount_off or ZERO)
        return min(off, money(amount))


@dataclass
class EnrollState:
    enrolled_at: datetime
    source: str
    next_pos: int = 0
    completed_at: datetime | None = None
    last_activity: datetime | None = None


class _Sim:
    """Holds the state of one run. Methods follow the order of one simulated month."""

    def __init__(self, *, members: int, months: int, seed: int, today: datetime,
                 progress: Callable[[str], None] | None = None) -> None:
        self.n = members
        self.months = months
        self.today = today
        self.start = today - relativedelta(months=months)
        self.month_starts = [self.start + relativedelta(months=m) for m in range(months)] + [today]
        self.rng = np.random.default_rng(seed)
        self.rnd = random.Random(seed)
        self.progress = progress or (lambda _label: None)
        self.events: list[tuple] = []
        self.Event = apps.get_model("analytics", "Event")
        self.Post = apps.get_model("community", "Post")
        self.Comment = apps.get_model("community", "Comment")
        self.Reaction = apps.get_model("community", "Reaction")
        self.Notification = apps.get_model("community", "Notification")
        self.counts: dict[str, int] = {}

    # ----------------------------------------------------------------------------------------------------------
    # helpers

    def next_id(self, model: type[models.Model]) -> int:
        top = model.objects.aggregate(top=models.Max("pk"))["top"]
        return (top or 0) + 1

    def at(self, lo: datetime, hi: datetime) -> datetime:
        """A whole-second time uniformly between lo and hi."""
        span = max(0, int((hi - lo).total_seconds()) - 1)
        return lo + timedelta(seconds=self.rnd.randint(0, span) if span else 0)

    def event(self, idx: int | None, kind: str, when: datetime, object_type: str = "", object_id: Any = "",
              props: dict | None = None) -> None:
        member_id = self.user_ids[idx] if idx is not None else None
        self.events.append((member_id, kind, object_type, str(object_id), when, props or {}))

    def flush_events(self) -> None:
        """Insert the buffered events with one executemany.

        Events are ~70% of all rows; bulk_create spends most of its time preparing each value through the field
        machinery (profiled: ~60% of the whole seed), which is pure overhead for values we built ourselves. The
        raw statement below takes the same columns and leaves constraints and indexes to the database as usual.
        """
        if not self.events:
            return
        Event = self.Event
        meta = Event._meta
        qn = connection.ops.quote_name
        fields = ["member", "kind", "object_type", "object_id", "occurred_at", "received_at", "properties", "source",
                  "idempotency_key"]
        columns = ", ".join(qn(meta.get_field(name).column) for name in fields)
        sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        when = self._db_datetime
        rows = [(m, k, ot, oid, when(t), when(t), json.dumps(p, separators=(",", ":")), "demo", None)
                for (m, k, ot, oid, t, p) in self.events]
        with connection.cursor() as cursor:
            for start in range(0, len(rows), 10 * BATCH):
                cursor.executemany(sql, rows[start: start + 10 * BATCH])
        self.counts[meta.label] = self.counts.get(meta.label, 0) + len(rows)
        self.events = []

    def _db_datetime(self, value: datetime) -> Any:
        """What the backend stores for an aware UTC datetime (SQLite: naive UTC text, as Django writes it)."""
        if connection.vendor == "sqlite":
            return str(value.replace(tzinfo=None))
        if connection.vendor == "postgresql":
            return value
        return connection.ops.adapt_datetimefield_value(value)

    def _bulk(self, model: type[models.Model], rows: Iterable[models.Model]) -> None:
        iterator: Iterator[models.Model] = iter(rows)
        while chunk := list(islice(iterator, 10 * BATCH)):
            model.objects.bulk_create(chunk, batch_size=BATCH)
            self.counts[model._meta.label] = self.counts.get(model._meta.label, 0) + len(chunk)

    # ----------------------------------------------------------------------------------------------------------
    # static platform: catalogue, tiers, coupons, offers, rules

    def build_catalogue(self) -> None:
        course_id = self.next_id(Course)
        lesson_id = self.next_id(Lesson)
        courses, lessons = [], []
        self.course_ids: list[int] = []
        self.course_topic: list[int] = []
        self.course_price: list[Decimal] = []
        self.course_lessons: list[list[int]] = []
        self.course_title: list[tuple[str, str]] = []
        topics = list(cat.TOPICS)
        self.topics = topics
        for i, spec in enumerate(cat.COURSES):
            cid = course_id + i
            published = self.start - timedelta(days=30 + 7 * i)
            courses.append(Course(
                id=cid, title=spec.title, title_zh=spec.title_zh, slug=slugify(spec.title), summary=cat.course_summary(spec),
                description=cat.course_description(spec), audience=cat.course_audience(spec), instructor=spec.instructor,
                # Both languages on the row (members/translation.py); the plain columns hold the English text.
                title_en=spec.title, title_zh_hans=spec.title_zh, summary_en=cat.course_summary(spec),
                summary_zh_hans=cat.course_summary_zh(spec), description_en=cat.course_description(spec),
                description_zh_hans=cat.course_description_zh(spec), audience_en=cat.course_audience(spec),
                audience_zh_hans=cat.course_audience_zh(spec),
                topic=spec.topic, tags=list(spec.tags), level=spec.level, price=Decimal(spec.price), currency="CNY",
                is_published=True, published_at=published, created_at=published,
            ))
            ids = []
            for pos, stem in enumerate(cat.LESSON_STEMS[spec.topic][: spec.lessons - 1] + ("Wrap-up and next steps",)):
                title = stem if pos < spec.lessons - 1 else "Wrap-up and next steps"
                lessons.append(Lesson(
                    id=lesson_id, course_id=cid, position=pos + 1, title=title,
                    body=cat.lesson_body(spec, pos + 1, title), duration_minutes=6 + (pos * 7 + i) % 15,
                    title_en=title, title_zh_hans=cat.LESSON_TITLES_ZH[title],
                    body_en=cat.lesson_body(spec, pos + 1, title), body_zh_hans=cat.lesson_body_zh(spec, pos + 1, title),
                    is_preview=pos == 0,
                ))
                ids.append(lesson_id)
                lesson_id += 1
            self.course_ids.append(cid)
            self.course_topic.append(topics.index(spec.topic))
            self.course_price.append(money(spec.price))
            self.course_lessons.append(ids)
            self.course_title.append((spec.title, spec.title_zh))
        demo_media.enrich_lessons(lessons, cat.COURSES, self.course_ids)  # video/audio, drip days (issue 18.3)
        self._bulk(Topic, [Topic(slug=slug, name=en, name_en=en, name_zh_hans=zh)
                           for slug, (en, zh) in cat.TOPICS.items() if not Topic.objects.filter(slug=slug).exists()])
        self._bulk(Course, courses)
        self._bulk(Lesson, lessons)
        self.counts.update(demo_media.add_extras(lessons, cat.COURSES, self.course_ids))  # worksheets, quizzes
        # Each course has a quality the ratings scatter around (it is what makes 'sort by rating' meaningful).
        self.course_quality = self.rng.uniform(3.4, 4.8, len(courses))
        self.priced = [c for c in range(len(courses)) if self.course_price[c] > 0]
        self.free = [c for c in range(len(courses)) if self.course_price[c] == 0]
        self.by_topic = [[c for c in range(len(courses)) if self.course_topic[c] == t] for t in range(len(topics))]

        tier_id = self.next_id(MembershipTier)
        tiers, benefits = [], []
        self.tiers: list[MembershipTier] = []
        for i, spec in enumerate(cat.TIERS):
            tier = MembershipTier(
                id=tier_id + i, name=spec.name, slug=spec.slug, description=spec.description,
                name_en=spec.name, name_zh_hans=cat.TIERS_ZH[spec.slug][0], description_en=spec.description,
                description_zh_hans=cat.TIERS_ZH[spec.slug][1],
                monthly_price=spec.monthly_price, yearly_price=spec.yearly_price, currency="CNY",
                trial_days=spec.trial_days, is_public=True, is_active=True, order=spec.order,
            )
            tiers.append(tier)
            for order, (kind, value) in enumerate(spec.benefits):
                benefits.append(Benefit(tier_id=tier.id, kind=kind, value=value, order=order,
                                        description=cat.BENEFIT_DESCRIPTIONS[kind],
                                        description_en=cat.BENEFIT_DESCRIPTIONS[kind],
                                        description_zh_hans=cat.BENEFIT_DESCRIPTIONS_ZH[kind]))
        self._bulk(MembershipTier, tiers)
        self._bulk(Benefit, benefits)
        self.tiers = tiers
        kinds = {spec.slug: {k for k, _ in spec.benefits} for spec in cat.TIERS}
        self.tier_all_courses = [Benefit.Kind.ALL_COURSES in kinds[t.slug] for t in tiers]
        self.tier_discount = [dict(spec.benefits).get(Benefit.Kind.COURSE_DISCOUNT) for spec in cat.TIERS]

        self._bulk(RetentionOffer, [RetentionOffer(created_at=self.start, **spec) for spec in cat.RETENTION_OFFERS])
        ReminderRule = apps.get_model("analytics", "ReminderRule")
        self._bulk(ReminderRule, [
            ReminderRule(name=f"{d} days before renewal", days_before=d, billing_period="any", created_at=self.start)
            for d in cat.REMINDER_DAYS
        ])

        self.coupon_next = self.next_id(Coupon)
        self.coupons: list[CouponState] = []
        self.general: dict[str, CouponState] = {}
        for spec in cat.GENERAL_COUPONS:
            c = self.new_coupon(
                code=spec.code, percent_off=spec.percent_off, amount_off=spec.amount_off, applies_to=spec.applies_to,
                valid_from=self.start + timedelta(days=spec.from_day),
                valid_until=self.start + timedelta(days=spec.until_day) if spec.until_day is not None else None,
                max_redemptions=spec.max_redemptions, source=Coupon.Source.MANUAL, description=spec.description,
                created_at=self.start,
            )
            self.general[spec.code] = c

    def new_coupon(self, **kwargs: Any) -> CouponState:
        c = CouponState(id=self.coupon_next, **kwargs)
        self.coupon_next += 1
        self.coupons.append(c)
        return c

    # ----------------------------------------------------------------------------------------------------------
    # members

    def build_members(self) -> None:
        n, rng = self.n, self.rng
        days = (self.today - self.start).days
        self.eng = rng.beta(2.0, 3.5, n)
        self.price = rng.beta(2.0, 2.0, n)
        self.social = np.clip(0.6 * self.eng + 0.4 * rng.beta(1.2, 3.0, n), 0.0, 1.0)
        self.interest = rng.dirichlet(np.full(len(self.topics), 0.4), n)
        self.zh = rng.random(n) < 0.55
        early = rng.random(n) < 0.35
        join_day = np.where(early, rng.uniform(0, max(1.0, days * 0.08), n), rng.uniform(0, max(1.0, days - 2), n))
        join_seconds = (join_day * 86400).astype(np.int64)
        source_draw = rng.random(n)
        # The learner (member 0) is a committed member so the demo login shows a full, live account.
        self.eng[0], self.price[0], self.social[0], self.zh[0] = 0.85, 0.2, 0.7, False
        self.interest[0] = np.array([0.35 if t in ("data", "ai") else 0.05 for t in self.topics])
        self.interest[0] /= self.interest[0].sum()
        join_seconds[0] = 3600
        self.join_at = [self.start + timedelta(seconds=int(s)) for s in join_seconds]
        self.join_month = np.array([self.month_of(t) for t in self.join_at])

        user_id = self.next_id(User)
        self.user_ids = [user_id + i for i in range(n)]
        users = []
        sources = ["organic", "social", "referral", "campaign"]
        # Invited members come from sociable members who joined before them; friends of friends engage a bit more.
        order = np.argsort(join_seconds, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        self.referrer: list[int | None] = [None] * n
        for i in range(n):
            if sources[min(3, int(source_draw[i] * 5)) if source_draw[i] < 0.8 else 0] != "referral" or rank[i] < 5:
                continue
            for _ in range(10):
                j = int(order[self.rnd.randrange(int(rank[i]))])
                if j != i and self.rnd.random() < self.social[j] and self.join_at[j] + timedelta(days=1) < self.join_at[i]:
                    self.referrer[i] = j
                    self.eng[i] = min(1.0, self.eng[i] + 0.05)
                    break
        for i in range(n):
            zh = bool(self.zh[i])
            if zh:
                name = self.rnd.choice(cat.SURNAMES_ZH) + self.rnd.choice(cat.GIVEN_NAMES_ZH)
                country = self.rnd.choice(cat.COUNTRIES_ZH)
            else:
                name = f"{self.rnd.choice(cat.FIRST_NAMES_EN)} {self.rnd.choice(cat.LAST_NAMES_EN)}"
                country = self.rnd.choice(cat.COUNTRIES_EN)
            src = sources[min(3, int(source_draw[i] * 5)) if source_draw[i] < 0.8 else 0]
            if src == "referral" and self.referrer[i] is None:
                src = "organic"
            users.append(User(
                id=self.user_ids[i], email=LEARNER_EMAIL if i == 0 else f"member{i:05d}@demo.test",
                display_name="Demo Learner" if i == 0 else name,
                # Real hashes cost ~0.3 s each; members other than the learner get an unusable password.
                password=make_password(LEARNER_PASSWORD) if i == 0 else f"!demo{self.rnd.getrandbits(64):016x}",
                preferred_language="zh-hans" if zh else "en", time_zone=cat.TIME_ZONES[country], country=country,
                marketing_opt_in=(opted_in := self.rnd.random() < 0.8),
                marketing_consent_at=self.join_at[i] if opted_in else None, acquisition_source=src,
                date_joined=self.join_at[i],
            ))
        self._bulk(User, users)
        self.staff_id = self.user_ids[-1] + 1
        User.objects.bulk_create([User(
            id=self.staff_id, email=STAFF_EMAIL, display_name="Demo Staff", password=make_password(STAFF_PASSWORD),
            is_staff=True, is_superuser=True, date_joined=self.start, preferred_language="en",
        )])
        self.counts[User._meta.label] += 1

        m = self.months
        self.lessons_hist = np.zeros((n, m), dtype=np.int32)
        self.community_hist = np.zeros((n, m), dtype=np.int32)
        self.dormant = np.zeros(n, dtype=bool)
        self.paid_orders = np.zeros(n, dtype=np.int32)
        self.paid_courses = np.zeros(n, dtype=np.int32)
        self.enrollments: list[dict[int, EnrollState]] = [{} for _ in range(n)]
        self.lesson_rows: dict[tuple[int, int], list] = {}
        self.names = [u.display_name for u in users]
        self.member_subs: dict[int, list[SubState]] = {}
        self.sub: list[SubState | None] = [None] * n
        self.subs: list[SubState] = []
        self.sub_changes: list[tuple] = []
        self.sub_next = self.next_id(Subscription)
        self.last_sub_end: list[datetime | None] = [None] * n
        self.had_trial = np.zeros(n, dtype=bool)
        self.personal: list[CouponState | None] = [None] * n
        self.orders: list[Order] = []
        self.order_next = self.next_id(Order)
        self.redemptions: list[CouponRedemption] = []
        self.rating_sum = np.zeros(n)
        self.rating_n = np.zeros(n)
        self.reviews: list[Review] = []
        self.review_next = self.next_id(Review)
        self.program = ReferralProgram(name="Invite a friend", friend_percent_off=Decimal(20), friend_coupon_valid_days=30,
                                       reward_kind="percent", reward_percent_off=Decimal(25), reward_valid_days=90,
                                       refund_window_days=REFERRAL_WINDOW_DAYS, created_at=self.start)
        self._bulk(ReferralProgram, [self.program])
        self.welcome: list[CouponState | None] = [None] * n
        self.referral_id: dict[int, int] = {}
        referral_next = self.next_id(Referral)
        for i in range(n):
            self.event(i, "signed_up", self.join_at[i], "user", self.user_ids[i],
                       {"source": users[i].acquisition_source})
            if self.referrer[i] is not None:
                when = self.join_at[i]
                c = self.new_coupon(
                    code=f"FRIEND-{self.coupon_next:06d}", percent_off=Decimal(20), amount_off=None,
                    applies_to=Coupon.AppliesTo.ALL, valid_from=when, valid_until=when + timedelta(days=30),
                    max_redemptions=1, source=Coupon.Source.REFERRAL,
                    description="Welcome discount from a friend's invitation", assigned_idx=i, created_at=when,
                )
                self.personal[i] = self.welcome[i] = c
                self.event(i, "coupon_issued", when, "coupon", c.id, {"source": "referral"})
                self.referral_id[i] = referral_next
                referral_next += 1
                self.event(i, "referral_signed_up", when, "referral", self.referral_id[i],
                           {"referrer_id": self.user_ids[self.referrer[i]], "status": "signed_up"})

    def month_of(self, when: datetime) -> int:
        for m in range(self.months - 1, -1, -1):
            if when >= self.month_starts[m]:
                return m
        return 0

    # ----------------------------------------------------------------------------------------------------------
    # orders and coupons

    def add_order(self, *, idx: int, kind: str, when: datetime, list_price: Decimal, member_discount: Decimal = ZERO,
                  coupon: CouponState | None = None, course: int | None = None, sub: SubState | None = None,
                  status: str = Order.Status.PAID, renewal: bool = False, reason: str = "") -> Order:
        coupon_off = coupon.off(list_price - member_discount) if coupon is not None else ZERO
        discount = money(member_discount + coupon_off)
        amount = max(ZERO, money(list_price - discount))
        order = Order(
            id=self.order_next, member_id=self.user_ids[idx], kind=kind,
            course_id=self.course_ids[course] if course is not None else None,
            tier_id=self.tiers[sub.tier].id if sub is not None else None,
            billing_period=sub.period if sub is not None else "", subscription_id=sub.id if sub is not None else None,
            is_renewal=renewal, list_price=list_price, discount=discount, amount_paid=amount, currency="CNY",
            coupon_id=coupon.id if coupon is not None else None, status=status, created_at=when,
            paid_at=when if status in (Order.Status.PAID, Order.Status.REFUNDED) else None,
            failure_reason=reason, provider="local",
            provider_reference=f"demo-{self.order_next}" if status != Order.Status.FAILED else "",
        )
        self.order_next += 1
        self.orders.append(order)
        if status == Order.Status.FAILED:
            self.event(idx, "payment_failed", when, "order", order.id, {"amount": str(amount), "reason": reason})
            return order
        self.paid_orders[idx] += 1
        if coupon is not None:
            coupon.redeemed += 1
            coupon.redeemers.add(idx)
            self.redemptions.append(CouponRedemption(coupon_id=coupon.id, member_id=self.user_ids[idx],
                                                     order_id=order.id, redeemed_at=when))
            self.event(idx, "coupon_redeemed", when, "coupon", coupon.id, {"order_id": order.id, "code": coupon.code})
        return order

    def coupon_for(self, idx: int, when: datetime, *, course: bool) -> CouponState | None:
        """The coupon a member would use at checkout: their personal one first, else a public code now and then."""
        target = Coupon.AppliesTo.COURSES if course else Coupon.AppliesTo.TIERS
        c = self.personal[idx]
        if c is not None and c.applies_to in (Coupon.AppliesTo.ALL, target) and c.usable(when, idx):
            return c
        for code, chance in (("DOUBLE11", 0.5), ("SAVE50", 0.3), ("WELCOME10", 0.25), ("MEMBER15", 0.15)):
            g = self.general[code]
            if g.applies_to in (Coupon.AppliesTo.ALL, target) and g.usable(when, idx) and self.rnd.random() < chance:
                if code == "WELCOME10" and self.paid_courses[idx] > 0:
                    continue
                return g
        return None

    def issue_campaign_coupons(self, m: int) -> None:
        lo, hi = self.month_starts[m], self.month_starts[m + 1]
        draw = self.rng.random(self.n)
        for idx in np.flatnonzero((draw < CAMPAIGN_SHARE) & (self.join_month <= m)):
            idx = int(idx)
            if idx == 0:
                continue
            when = self.at(max(lo, self.join_at[idx] + timedelta(hours=1)), hi)
            if when >= hi:
                continue
            c = self.new_coupon(
                code=f"DEMO-{self.coupon_next:06d}", percent_off=CAMPAIGN_PERCENT, amount_off=None,
                applies_to=Coupon.AppliesTo.ALL, valid_from=when, valid_until=when + timedelta(days=CAMPAIGN_VALID_DAYS),
                max_redemptions=1, source=Coupon.Source.CAMPAIGN, description="Monthly member offer: 20% off",
                assigned_idx=idx, created_at=when,
            )
            self.personal[idx] = c
            self.event(idx, "coupon_issued", when, "coupon", c.id, {"source": "campaign"})
            opened = when + timedelta(hours=self.rnd.randint(1, 48))
            if self.rnd.random() < 0.3 + 0.4 * self.eng[idx] and opened < self.today:
                self.event(idx, "email_opened", opened, "coupon", c.id, {"message": "campaign"})

    def holds_coupon(self, m: int) -> np.ndarray:
        lo, hi = self.month_starts[m], self.month_starts[m + 1]
        out = np.zeros(self.n, dtype=bool)
        for idx, c in enumerate(self.personal):
            if c is not None and c.valid_until > lo and c.valid_from < hi and idx not in c.redeemers:
                out[idx] = True
        return out

    # ----------------------------------------------------------------------------------------------------------
    # subscriptions

    def start_sub(self, idx: int, when: datetime, m: int) -> None:
        eng, price = self.eng[idx], self.price[idx]
        if idx == 0:
            tier, period = 2, BillingPeriod.MONTH
        else:
            weights = [1 + 2 * price, 2.0, 0.3 + 2 * eng * (1 - price)]
            tier = self.rnd.choices(range(len(self.tiers)), weights=weights)[0]
            period = BillingPeriod.YEAR if self.rnd.random() < 0.1 + 0.3 * (1 - price) * eng else BillingPeriod.MONTH
        t = self.tiers[tier]
        coupon = None if idx == 0 else self.coupon_for(idx, when, course=False)
        trial = t.trial_days > 0 and not self.had_trial[idx] and coupon is None and self.rnd.random() < 0.9
        end = when + timedelta(days=t.trial_days) if trial else self.next_period_end(when, period)
        sub = SubState(id=self.sub_next, member_idx=idx, tier=tier, period=period, started_at=when, period_start=when,
                       period_end=end, trial_end=end if trial else None,
                       status=Subscription.Status.TRIALING if trial else Subscription.Status.ACTIVE)
        self.sub_next += 1
        self.subs.append(sub)
        self.member_subs.setdefault(idx, []).append(sub)
        self.sub[idx] = sub
        self.sub_change(sub, SubscriptionChange.Kind.STARTED, when)
        if trial:
            self.had_trial[idx] = True
            self.event(idx, "trial_started", when, "subscription", sub.id, {"tier": t.slug, "period": period})
            return
        order = self.add_order(idx=idx, kind=Order.Kind.SUBSCRIPTION, when=when, list_price=money(t.price_for(period)),
                               coupon=coupon, sub=sub)
        self.event(idx, "subscription_started", when, "subscription", sub.id,
                   {"tier": t.slug, "period": period, "order_id": order.id, "amount": str(order.amount_paid)})

    def cancel_reason(self, idx: int, m: int) -> str:
        R = Subscription.CancellationReason
        lessons = float(bm.recent(self.lessons_hist[idx: idx + 1], m)[0]) if m else 0.0
        if self.dormant[idx] or lessons < 1:
            options = [(R.NOT_USING, 5), (R.TOO_EXPENSIVE, 2), (R.CONTENT, 1), (R.OTHER, 1)]
        elif self.price[idx] > 0.6:
            options = [(R.TOO_EXPENSIVE, 5), (R.NOT_USING, 1), (R.FINISHED, 1), (R.OTHER, 1)]
        else:
            options = [(R.FINISHED, 3), (R.CONTENT, 2), (R.TECHNICAL, 1), (R.OTHER, 1), (R.NOT_USING, 1)]
        return self.rnd.choices([o for o, _ in options], weights=[w for _, w in options])[0]

    def next_period_end(self, start: datetime, period: str) -> datetime:
        return start + (relativedelta(years=1) if period == BillingPeriod.YEAR else relativedelta(months=1))

    def sub_change(self, sub: SubState, kind: str, when: datetime) -> None:
        """The ledger row the services would append (members.services.subscription_record): the state after."""
        self.sub_changes.append((sub.id, sub.member_idx, when, kind, sub.status, sub.tier, sub.period, sub.period_start,
                                 sub.period_end, sub.cancel_at_period_end, sub.canceled_at))

    def end_sub(self, sub: SubState, when: datetime, status: str) -> None:
        sub.status = status
        sub.ended_at = when
        self.sub_change(sub, status, when)  # the Kind values "canceled"/"expired" equal the statuses
        self.sub[sub.member_idx] = None
        self.last_sub_end[sub.member_idx] = when
        self.event(sub.member_idx, f"subscription_{status}", when, "subscription", sub.id, {"reason": sub.reason})

    def renew_probability(self, sub: SubState) -> float:
        idx = sub.member_idx
        if idx == 0:
            return 1.0
        m = min(self.month_of(sub.period_end), self.months - 1)
        lessons = float(bm.recent(self.lessons_hist[idx: idx + 1], m)[0]) if m else float(self.lessons_hist[idx, 0])
        community = float(bm.recent(self.community_hist[idx: idx + 1], m)[0]) if m else float(self.community_hist[idx, 0])
        return float(bm.sigmoid(bm.renew_logit(
            lessons=lessons, community=community, paid_courses=int(self.paid_courses[idx]),
            price_sensitivity=float(self.price[idx]), yearly=sub.period == BillingPeriod.YEAR,
            dormant=bool(self.dormant[idx]), trial=sub.status == Subscription.Status.TRIALING,
        )))

    def process_period_ends(self, limit: datetime) -> None:
        """Every live subscription whose period ends before `limit` renews, converts, lapses or is cancelled."""
        for idx in range(self.n):
            sub = self.sub[idx]
            while sub is not None and sub.period_end < limit and sub.status != Subscription.Status.PAST_DUE:
                self.period_end(sub)
                sub = self.sub[idx]

    def period_end(self, sub: SubState) -> None:
        idx, end = sub.member_idx, sub.period_end
        tier = self.tiers[sub.tier]
        renews = self.rnd.random() < self.renew_probability(sub)
        m = min(self.month_of(end), self.months - 1)
        if sub.status == Subscription.Status.TRIALING:
            if renews:
                start = end
                sub.period_start, sub.period_end = start, self.next_period_end(start, sub.period)
                sub.status = Subscription.Status.ACTIVE
                sub.attempts, sub.last_attempt = 0, end
                self.sub_change(sub, SubscriptionChange.Kind.TRIAL_CONVERTED, end)
                order = self.add_order(idx=idx, kind=Order.Kind.SUBSCRIPTION, when=end,
                                       list_price=money(tier.price_for(sub.period)), sub=sub)
                self.event(idx, "trial_converted", end, "subscription", sub.id,
                           {"order_id": order.id, "amount": str(order.amount_paid), "tier": tier.slug})
            else:
                sub.cancel_at_period_end = True
                sub.canceled_at = self.at(sub.period_start + timedelta(hours=1), end)
                sub.reason = self.cancel_reason(idx, m)
                self.sub_change(sub, SubscriptionChange.Kind.CANCEL_SCHEDULED, sub.canceled_at)
                self.event(idx, "subscription_cancel_requested", sub.canceled_at, "subscription", sub.id,
                           {"reason": sub.reason})
                self.end_sub(sub, end, Subscription.Status.CANCELED)
            return
        coupon = None
        if not renews and idx != 0 and not sub.save_offer_used and self.rnd.random() < SAVE_OFFER_ACCEPT:
            # The member started to cancel, saw the save offer and took it: a personal 30% coupon on this renewal.
            offered = self.at(max(sub.period_start, end - timedelta(days=10)), end)
            coupon = self.new_coupon(
                code=f"SAVE-{self.coupon_next:06d}", percent_off=Decimal(30), amount_off=None,
                applies_to=Coupon.AppliesTo.TIERS, valid_from=offered, valid_until=offered + timedelta(days=14),
                max_redemptions=1, source=Coupon.Source.RETENTION, description="Save offer: 30% off your next period",
                assigned_idx=idx, created_at=offered,
            )
            sub.save_offer_used = True
            self.event(idx, "coupon_issued", offered, "coupon", coupon.id, {"source": "retention"})
            self.event(idx, "retention_offer_accepted", offered, "subscription", sub.id, {"percent_off": "30"})
            renews = True
        if not renews:
            sub.cancel_at_period_end = True
            sub.canceled_at = self.at(max(sub.period_start + timedelta(hours=1), end - timedelta(days=20)), end)
            sub.reason = self.cancel_reason(idx, m)
            self.sub_change(sub, SubscriptionChange.Kind.CANCEL_SCHEDULED, sub.canceled_at)
            self.event(idx, "subscription_cancel_requested", sub.canceled_at, "subscription", sub.id,
                       {"reason": sub.reason})
            self.end_sub(sub, end, Subscription.Status.CANCELED)
            return
        price = money(tier.price_for(sub.period))
        sub.attempts += 1
        sub.last_attempt = end
        if idx != 0 and self.rnd.random() < RENEWAL_FAIL:
            self.add_order(idx=idx, kind=Order.Kind.SUBSCRIPTION, when=end, list_price=price, sub=sub,
                           status=Order.Status.FAILED, renewal=True, reason="Card declined")
            sub.status = Subscription.Status.PAST_DUE
            sub.grace_until = end + timedelta(days=GRACE_DAYS)
            self.sub_change(sub, SubscriptionChange.Kind.PAST_DUE, end)
            self.event(idx, "subscription_past_due", end, "subscription", sub.id,
                       {"from": "active", "grace_until": sub.grace_until.isoformat()})
            if self.rnd.random() < RECOVERY:
                paid = end + timedelta(days=self.rnd.randint(1, GRACE_DAYS - 1), hours=self.rnd.randint(0, 23))
                if paid < self.today:
                    self.renew_paid(sub, paid, price, coupon)
                    sub.period_start, sub.period_end = paid, self.next_period_end(paid, sub.period)
                    sub.last_attempt = paid
                    self.sub_change(sub, SubscriptionChange.Kind.RECOVERED, paid)
                return
            if sub.grace_until < self.today:
                sub.reason = Subscription.CancellationReason.PAYMENT
                self.end_sub(sub, sub.grace_until, Subscription.Status.EXPIRED)
            return
        self.renew_paid(sub, end, price, coupon)
        sub.period_start, sub.period_end = end, self.next_period_end(end, sub.period)
        self.sub_change(sub, SubscriptionChange.Kind.RENEWED, end)

    def renew_paid(self, sub: SubState, when: datetime, price: Decimal, coupon: CouponState | None) -> None:
        idx = sub.member_idx
        order = self.add_order(idx=idx, kind=Order.Kind.SUBSCRIPTION, when=when, list_price=price, sub=sub,
                               coupon=coupon, renewal=True)
        sub.status = Subscription.Status.ACTIVE
        sub.grace_until = None
        sub.attempts = 0
        sub.renewal_count += 1
        self.event(idx, "subscription_renewed", when, "subscription", sub.id,
                   {"order_id": order.id, "amount": str(order.amount_paid), "tier": self.tiers[sub.tier].slug,
                    "period": sub.period})

    def finish_live_subs(self) -> None:
        """Live subscriptions at `today`: some members have already asked to cancel at the period end."""
        for sub in self.subs:
            if sub.status != Subscription.Status.ACTIVE or sub.member_idx == 0:
                continue
            if self.rnd.random() < self.renew_probability(sub):
                continue
            asked = self.at(max(sub.period_start + timedelta(hours=1), sub.period_end - timedelta(days=20)),
                            sub.period_end)
            if asked < self.today:
                sub.cancel_at_period_end = True
                sub.canceled_at = asked
                sub.reason = self.cancel_reason(sub.member_idx, self.months - 1)
                self.sub_change(sub, SubscriptionChange.Kind.CANCEL_SCHEDULED, asked)
                self.event(sub.member_idx, "subscription_cancel_requested", asked, "subscription", sub.id,
                           {"reason": sub.reason})

    def membership_access_until(self, idx: int, lo: datetime, hi: datetime) -> datetime | None:
        """Until when in [lo, hi) the member has all-course access from a paid membership that was live at `lo`."""
        for s in reversed(self.member_subs.get(idx, [])):
            if s.started_at > lo:
                continue
            if not self.tier_all_courses[s.tier] or s.status == Subscription.Status.TRIALING:
                return None
            if s.ended_at is not None:
                return min(s.ended_at, hi) if s.ended_at > lo else None
            if s.status == Subscription.Status.PAST_DUE:
                until = min(s.grace_until or hi, hi)
                return until if until > lo else None
            return hi
        return None

    # ----------------------------------------------------------------------------------------------------------
    # learning

    def pick_course(self, idx: int, pool: list[int]) -> int | None:
        owned = self.enrollments[idx]
        for _ in range(6):
            topic = self.rnd.choices(range(len(self.topics)), weights=self.interest[idx])[0]
            options = [c for c in self.by_topic[topic] if c in pool and self.course_ids[c] not in owned]
            if options:
                return self.rnd.choice(options)
        options = [c for c in pool if self.course_ids[c] not in owned]
        return self.rnd.choice(options) if options else None

    def learn(self, m: int, intensity: np.ndarray) -> None:
        lo_m, hi_m = self.month_starts[m], self.month_starts[m + 1]
        counts = self.rng.poisson(9.0 * intensity)
        extra_view = self.rng.random(self.n) < 0.3
        all_courses = list(range(len(self.course_ids)))
        for idx in np.flatnonzero(counts):
            idx = int(idx)
            lo = max(lo_m, self.join_at[idx])
            if lo >= hi_m:
                continue
            access_until = self.membership_access_until(idx, lo, hi_m)
            times = sorted(self.at(lo + timedelta(hours=1), hi_m) for _ in range(int(counts[idx])))
            enrolled = self.enrollments[idx]
            done = 0
            last: datetime | None = None
            for t in times:
                current = next((cid for cid, e in enrolled.items() if e.completed_at is None and e.enrolled_at < t), None)
                if current is None:
                    choice = None
                    source = ""
                    if access_until is not None and t < access_until:
                        choice, source = self.pick_course(idx, all_courses), Enrollment.Source.MEMBERSHIP
                    elif self.free and self.rnd.random() < 0.5:
                        choice, source = self.pick_course(idx, self.free), Enrollment.Source.FREE
                    if choice is None:
                        break
                    current = self.course_ids[choice]
                    enrolled[current] = EnrollState(enrolled_at=t - timedelta(minutes=45), source=source)
                e = enrolled[current]
                course = self.course_index[current]
                lesson = self.course_lessons[course][e.next_pos]
                self.complete_lesson(idx, current, lesson, t)
                e.next_pos += 1
                e.last_activity = t
                done += 1
                last = t
                if e.next_pos >= len(self.course_lessons[course]):
                    e.completed_at = t
                    self.event(idx, "course_completed", t, "course", current)
                    if self.rnd.random() < REVIEW_RATE:
                        self.review(idx, course, t + timedelta(hours=self.rnd.randint(1, 96)))
            if last is not None and extra_view[idx]:
                current = next((cid for cid, e in enrolled.items() if e.completed_at is None), None)
                if current is not None:
                    e = enrolled[current]
                    lesson = self.course_lessons[self.course_index[current]][e.next_pos]
                    t = last + timedelta(hours=self.rnd.randint(1, 30))
                    if t < hi_m and (lesson_key := (idx, lesson)) not in self.lesson_rows:
                        self.lesson_rows[lesson_key] = [t, None]
                        self.event(idx, "lesson_viewed", t, "lesson", lesson, {"course_id": current})
                        e.last_activity = t
            self.lessons_hist[idx, m] = done

    def review(self, idx: int, course: int, when: datetime) -> None:
        if when >= self.today:
            return
        score = self.course_quality[course] + 0.8 * (self.eng[idx] - 0.4) + self.rnd.gauss(0.0, 0.7)
        rating = int(min(5, max(1, round(score))))
        band = "low" if rating <= 2 else "mid" if rating == 3 else "high"
        zh = bool(self.zh[idx])
        body = self.rnd.choice((texts.REVIEWS_ZH if zh else texts.REVIEWS_EN)[band]) if self.rnd.random() < 0.6 else ""
        review = Review(id=self.review_next, member_id=self.user_ids[idx], course_id=self.course_ids[course],
                        rating=rating, body=body, created_at=when, updated_at=when)
        self.review_next += 1
        self.reviews.append(review)
        self.rating_sum[idx] += rating
        self.rating_n[idx] += 1
        self.event(idx, "course_reviewed", when, "course", self.course_ids[course],
                   {"rating": rating, "review_id": review.id, "has_text": bool(body)})

    def complete_lesson(self, idx: int, course_id: int, lesson: int, t: datetime) -> None:
        key = (idx, lesson)
        row = self.lesson_rows.get(key)
        started = t - timedelta(minutes=self.rnd.randint(6, 40))
        if row is None:
            self.lesson_rows[key] = [started, t]
        else:
            row[1] = t
        self.event(idx, "lesson_viewed", started, "lesson", lesson, {"course_id": course_id})
        self.event(idx, "lesson_completed", t, "lesson", lesson, {"course_id": course_id})

    def logins(self, m: int, intensity: np.ndarray) -> None:
        lo_m, hi_m = self.month_starts[m], self.month_starts[m + 1]
        days = self.rng.poisson(0.5 + 12.0 * intensity)
        for idx in np.flatnonzero(days):
            idx = int(idx)
            lo = max(lo_m, self.join_at[idx])
            if lo >= hi_m:
                continue
            for t in sorted(self.at(lo, hi_m) for _ in range(min(int(days[idx]), 28))):
                self.event(idx, "login", t)

    # ----------------------------------------------------------------------------------------------------------
    # community

    def build_community_seed(self) -> None:
        self.post_next = self.next_id(self.Post)
        self.comment_next = self.next_id(self.Comment)
        self.posts_by_month: list[list[tuple[int, int, datetime, bool]]] = []  # (post id, author idx, time, zh)
        self.comments_of: dict[int, list[tuple[int, int]]] = {}  # post id -> [(comment id, author idx)]
        self.reacted: set[tuple[int, str, int, str]] = set()
        self.markdown_cache: dict[str, str] = {}
        from community.markdown import render_markdown

        self.render = render_markdown
        title, body = texts.WELCOME_POST
        self.welcome_id = self.post_next
        self.post_next += 1
        self.staff_post = self.Post(id=self.welcome_id, author_id=self.staff_id, title=title, body=body,
                                    body_html=self.md(body), is_pinned=True, created_at=self.start)
        self._bulk(self.Post, [self.staff_post])

    def md(self, body: str) -> str:
        html = self.markdown_cache.get(body)
        if html is None:
            html = self.markdown_cache[body] = self.render(body)
        return html

    def community(self, m: int, intensity: np.ndarray) -> None:
        lo_m, hi_m = self.month_starts[m], self.month_starts[m + 1]
        act = self.social * intensity
        n_posts = self.rng.poisson(1.2 * act)
        n_comments = self.rng.poisson(3.5 * act)
        n_reactions = self.rng.poisson(6.0 * act)
        n_posts[0] = max(n_posts[0], 1)
        posts, comments, reactions, notes = [], [], [], []
        month_posts: list[tuple[int, int, datetime, bool]] = []
        for idx in np.flatnonzero(n_posts):
            idx = int(idx)
            lo = max(lo_m, self.join_at[idx])
            if lo >= hi_m:
                continue
            zh = bool(self.zh[idx])
            for _ in range(int(n_posts[idx])):
                t = self.at(lo, hi_m)
                enrolled = list(self.enrollments[idx])
                cid = self.rnd.choice(enrolled) if enrolled else self.course_ids[self.pick_course(idx, self.priced) or 0]
                title_en, title_zh = self.course_title[self.course_index[cid]]
                title, body = self.rnd.choice(texts.POSTS_ZH if zh else texts.POSTS_EN)
                name = title_zh if zh else title_en
                body = body.format(course=name)
                pid = self.post_next
                self.post_next += 1
                posts.append(self.Post(id=pid, author_id=self.user_ids[idx], course_id=cid,
                                       title=title.format(course=name)[:200], body=body, body_html=self.md(body),
                                       created_at=t))
                month_posts.append((pid, idx, t, zh))
                self.event(idx, "post_created", t, "post", pid, {"course_id": cid})
                self.community_hist[idx, m] += 1
        month_posts.sort(key=lambda p: p[2])
        pool = [p for ps in self.posts_by_month[-2:] for p in ps] + month_posts
        welcome = (self.welcome_id, -1, self.start, False)
        pool = [welcome] + pool
        for idx in np.flatnonzero(n_comments + n_reactions):
            idx = int(idx)
            lo = max(lo_m, self.join_at[idx])
            if lo >= hi_m:
                continue
            zh = bool(self.zh[idx])
            for kind_count, is_comment in ((int(n_comments[idx]), True), (int(n_reactions[idx]), False)):
                for _ in range(kind_count):
                    t = self.at(lo, hi_m)
                    post = self.pick_post(pool, t, zh, idx)
                    if post is None:
                        continue
                    pid, author, _created, _zh = post
                    if is_comment:
                        self.add_comment(idx, pid, author, t, zh, comments, notes)
                    else:
                        self.add_reaction(idx, pid, author, t, reactions, notes)
                    self.community_hist[idx, m] += 1
        self.posts_by_month.append(month_posts)
        self._bulk(self.Post, posts)
        self._bulk(self.Comment, comments)
        self._bulk(self.Reaction, reactions)
        self._bulk(self.Notification, notes)

    def pick_post(self, pool: list, t: datetime, zh: bool, idx: int) -> tuple | None:
        for _ in range(4):
            post = self.rnd.choice(pool)
            if post[2] < t and post[1] != idx and (post[3] == zh or self.rnd.random() < 0.25):
                return post
        return None

    def add_comment(self, idx: int, pid: int, author: int, t: datetime, zh: bool, comments: list, notes: list) -> None:
        body = self.rnd.choice(texts.COMMENTS_ZH if zh else texts.COMMENTS_EN)
        siblings = self.comments_of.setdefault(pid, [])
        parent = None
        if siblings and self.rnd.random() < 0.3:
            candidate = self.rnd.choice(siblings)
            if candidate[1] != idx and candidate[2] < t:
                parent = candidate
        cid = self.comment_next
        self.comment_next += 1
        comments.append(self.Comment(id=cid, post_id=pid, author_id=self.user_ids[idx],
                                     parent_id=parent[0] if parent else None, body=body, body_html=self.md(body),
                                     created_at=t))
        if parent is None:
            siblings.append((cid, idx, t))
        self.event(idx, "comment_created", t, "comment", cid, {"post_id": pid, "reply": parent is not None})
        recipient = parent[1] if parent else author
        if recipient >= 0 and recipient != idx:
            verb = "replied" if parent else "commented"
            notes.append(self.note(recipient, idx, verb, "comment", cid, f"/community/posts/{pid}/", t))

    def add_reaction(self, idx: int, pid: int, author: int, t: datetime, reactions: list, notes: list) -> None:
        kind = self.rnd.choices(("like", "insightful", "thanks"), weights=(6, 2, 2))[0]
        siblings = self.comments_of.get(pid) or []
        on_comment = siblings and self.rnd.random() < 0.2
        if on_comment:
            comment_id, comment_author, created = self.rnd.choice(siblings)
            key = (idx, "comment", comment_id, kind)
            if key in self.reacted or created >= t or comment_author == idx:
                return
            self.reacted.add(key)
            reactions.append(self.Reaction(member_id=self.user_ids[idx], comment_id=comment_id, kind=kind, created_at=t))
            self.event(idx, "reaction_added", t, "comment", comment_id, {"kind": kind})
            return
        key = (idx, "post", pid, kind)
        if key in self.reacted:
            return
        self.reacted.add(key)
        reactions.append(self.Reaction(member_id=self.user_ids[idx], post_id=pid, kind=kind, created_at=t))
        self.event(idx, "reaction_added", t, "post", pid, {"kind": kind})
        if author >= 0 and author != idx and self.rnd.random() < 0.3:
            notes.append(self.note(author, idx, "reacted", "post", pid, f"/community/posts/{pid}/", t))

    def note(self, recipient: int, actor: int, verb: str, target_type: str, target_id: int, url: str,
             t: datetime) -> models.Model:
        # Stored as a code with no sentence: the page writes "X commented on your post" in the reader's language.
        read = t + timedelta(hours=self.rnd.randint(1, 96))
        return self.Notification(recipient_id=self.user_ids[recipient], actor_id=self.user_ids[actor], verb=verb,
                                 target_type=target_type, target_id=target_id, target_url=url, params={},
                                 created_at=t, read_at=read if read < self.today and self.rnd.random() < 0.7 else None)

    # ----------------------------------------------------------------------------------------------------------
    # buying

    def buy_courses(self, m: int, buyers: np.ndarray) -> None:
        lo_m, hi_m = self.month_starts[m], self.month_starts[m + 1]
        for idx in np.flatnonzero(buyers):
            idx = int(idx)
            lo = max(lo_m, self.join_at[idx] + timedelta(minutes=30))
            if lo >= hi_m:
                continue
            coupon = self.personal[idx]
            if coupon is not None and coupon.usable(max(lo, coupon.valid_from), idx) and coupon.valid_from < hi_m:
                window_lo, window_hi = max(lo, coupon.valid_from), min(hi_m, coupon.valid_until)
                when = self.at(window_lo, window_hi) if window_lo < window_hi else self.at(lo, hi_m)
            else:
                when = self.at(lo, hi_m)
            how_many = 2 if self.rnd.random() < 0.15 or (idx == 0 and m == 0) else 1
            for k in range(how_many):
                course = self.pick_course(idx, self.priced)
                if course is None:
                    return
                self.buy_course(idx, course, when + timedelta(minutes=3 * k))

    def buy_course(self, idx: int, course: int, when: datetime) -> None:
        sub = self.sub[idx]
        member_of = sub is not None and sub.status == Subscription.Status.ACTIVE and sub.started_at < when
        pct = self.tier_discount[sub.tier] if member_of else None
        price = self.course_price[course]
        member_discount = percent_of(price, pct) if pct else ZERO
        if idx != 0 and self.rnd.random() < FAIL_RATE:
            self.add_order(idx=idx, kind=Order.Kind.COURSE, when=when, list_price=price,
                           member_discount=member_discount, course=course, status=Order.Status.FAILED,
                           reason="Card declined")
            when = when + timedelta(minutes=self.rnd.randint(2, 20))
            if self.rnd.random() < 0.4:
                return
        coupon = self.coupon_for(idx, when, course=True)
        order = self.add_order(idx=idx, kind=Order.Kind.COURSE, when=when, list_price=price,
                               member_discount=member_discount, coupon=coupon, course=course)
        cid = self.course_ids[course]
        self.paid_courses[idx] += 1
        self.event(idx, "course_purchased", when, "course", cid,
                   {"order_id": order.id, "amount": str(order.amount_paid), "coupon": coupon.code if coupon else ""})
        refund_at = when + timedelta(days=self.rnd.randint(1, 7))
        if idx != 0 and self.rnd.random() < REFUND_RATE and refund_at < self.today:
            order.status = Order.Status.REFUNDED
            order.refunded_at = refund_at
            self.paid_orders[idx] -= 1
            self.paid_courses[idx] -= 1
            self.event(idx, "order_refunded", refund_at, "order", order.id, {"amount": str(order.amount_paid)})
            return
        self.enrollments[idx][cid] = EnrollState(enrolled_at=when, source=Enrollment.Source.PURCHASE)

    # ----------------------------------------------------------------------------------------------------------
    # the month loop

    def run_month(self, m: int) -> None:
        lo_m, hi_m = self.month_starts[m], self.month_starts[m + 1]
        joined = self.join_month <= m
        self.issue_campaign_coupons(m)
        coupon = self.holds_coupon(m)

        # Members drift away and (less often) come back; a coupon in hand brings some back.
        live = np.array([s is not None for s in self.sub])
        drift = self.rng.random(self.n) < bm.dormancy_probability(self.eng, live)
        back = self.rng.random(self.n) < bm.reactivation_probability(coupon)
        was_new = self.join_month == m
        self.dormant = np.where(self.dormant, ~back, drift & ~was_new & joined)
        self.dormant[0] = False

        # Period ends first, so this month's learning knows whose membership access ends when.
        self.process_period_ends(hi_m)

        live = np.array([s is not None and s.status != Subscription.Status.TRIALING for s in self.sub])
        all_access = np.array([s is not None and self.tier_all_courses[s.tier] for s in self.sub])
        noise = self.rng.lognormal(0.0, 0.35, self.n)
        novelty = np.where(was_new, 1.3, 1.0)
        intensity = (self.eng * noise * novelty * np.where(self.dormant, 0.08, 1.0) * np.where(all_access, 1.3, 1.0)
                     * joined)
        self.learn(m, intensity)
        self.logins(m, intensity)
        self.community(m, intensity)

        # Decisions use the two previous months (strictly the past) plus a bonus in the month of joining.
        lessons = bm.recent(self.lessons_hist, m)
        community = bm.recent(self.community_hist, m)
        new_member = was_new.astype(float)
        common = {"lessons": lessons, "community": community, "paid_orders": self.paid_orders.astype(float),
                  "engagement": self.eng, "price_sensitivity": self.price, "has_coupon": coupon.astype(float),
                  "new_member": new_member}
        satisfaction = np.where(self.rating_n > 0, self.rating_sum / np.maximum(self.rating_n, 1) - 3.5, 0.0)
        awake = np.where(self.dormant, 0.15, 1.0)
        not_live = np.array([s is None for s in self.sub])
        last_end_ok = np.array([e is None or e < hi_m - timedelta(days=1) for e in self.last_sub_end])
        p_sub = bm.sigmoid(bm.subscribe_logit(**common)) * awake
        subscribe = (self.rng.random(self.n) < p_sub) & joined & not_live & last_end_ok
        if m == min(1, self.months - 1):
            subscribe[0] = self.sub[0] is None
        elif self.sub[0] is None and m > 1:
            subscribe[0] = True
        else:
            subscribe[0] = False
        for idx in np.flatnonzero(subscribe):
            idx = int(idx)
            lo = max(lo_m, self.join_at[idx] + timedelta(hours=2))
            if self.last_sub_end[idx] is not None:
                lo = max(lo, self.last_sub_end[idx] + timedelta(hours=1))
            if lo < hi_m - timedelta(hours=1):
                self.start_sub(idx, self.at(lo, hi_m - timedelta(hours=1)), m)

        p_buy = bm.sigmoid(bm.purchase_logit(**common) + bm.SATISFACTION_WEIGHT * satisfaction) * awake
        all_access = np.array([s is not None and self.tier_all_courses[s.tier] for s in self.sub])
        buyers = (self.rng.random(self.n) < p_buy) & joined & ~all_access
        buyers[0] = m == 0
        self.buy_courses(m, buyers)
        self.flush_events()

    # ----------------------------------------------------------------------------------------------------------
    # the learner's extras and the final writes

    def learner_extras(self) -> None:
        when = self.today - timedelta(days=1)
        c = self.new_coupon(
            code="LEARNER-WELCOME-BACK", percent_off=Decimal(25), amount_off=None, applies_to=Coupon.AppliesTo.ALL,
            valid_from=when, valid_until=self.today + timedelta(days=30), max_redemptions=1,
            source=Coupon.Source.CAMPAIGN, description="25% off anything, just for you", assigned_idx=0,
            created_at=when,
        )
        self.event(0, "coupon_issued", when, "coupon", c.id, {"source": "campaign"})

    def write_state(self) -> None:
        self.write_referrals()  # may issue reward coupons, so it runs before coupons are written
        self.progress_label("memberships")
        self._bulk(Subscription, (
            Subscription(
                id=s.id, member_id=self.user_ids[s.member_idx], tier_id=self.tiers[s.tier].id, billing_period=s.period,
                status=s.status, started_at=s.started_at, current_period_start=s.period_start,
                current_period_end=s.period_end, trial_end=s.trial_end, cancel_at_period_end=s.cancel_at_period_end,
                canceled_at=s.canceled_at, cancellation_reason=s.reason, ended_at=s.ended_at, grace_until=s.grace_until,
                renewal_attempts=s.attempts, last_renewal_attempt_at=s.last_attempt, renewal_count=s.renewal_count,
                created_at=s.started_at,
            ) for s in self.subs
        ))
        self._bulk(SubscriptionChange, (
            SubscriptionChange(
                subscription_id=sub_id, member_id=self.user_ids[idx], at=at, kind=kind, status=status,
                tier_id=self.tiers[tier].id, billing_period=period, current_period_start=start, current_period_end=end,
                cancel_at_period_end=cancel, canceled_at=canceled_at,
            ) for (sub_id, idx, at, kind, status, tier, period, start, end, cancel, canceled_at) in self.sub_changes
        ))
        self.progress_label("coupons")
        self._bulk(Coupon, (
            Coupon(
                id=c.id, code=c.code, description=c.description,
                discount_type=Coupon.DiscountType.PERCENT if c.percent_off is not None else Coupon.DiscountType.FIXED,
                percent_off=c.percent_off, amount_off=c.amount_off, currency="CNY", applies_to=c.applies_to,
                valid_from=c.valid_from, valid_until=c.valid_until, max_redemptions=c.max_redemptions,
                max_per_member=1, times_redeemed=c.redeemed,
                assigned_member_id=self.user_ids[c.assigned_idx] if c.assigned_idx is not None else None,
                source=c.source, created_at=c.created_at or self.start,
            ) for c in self.coupons
        ))
        self.progress_label("orders")
        self._bulk(Order, self.orders)
        self._bulk(CouponRedemption, self.redemptions)
        self.write_reviews()
        self._bulk(Referral, self.referrals)
        self.progress_label("learning")
        enrollments = []
        for idx, enrolled in enumerate(self.enrollments):
            for cid, e in enrolled.items():
                enrollments.append(Enrollment(member_id=self.user_ids[idx], course_id=cid, source=e.source,
                                              enrolled_at=e.enrolled_at, completed_at=e.completed_at,
                                              last_activity_at=e.last_activity))
        self._bulk(Enrollment, enrollments)
        self._bulk(LessonProgress, (
            LessonProgress(member_id=self.user_ids[idx], lesson_id=lesson, started_at=row[0], completed_at=row[1])
            for (idx, lesson), row in self.lesson_rows.items()
        ))
        self.flush_events()

    def write_reviews(self) -> None:
        """Reviews with text collect 'helpful' marks from other members who took the same course."""
        takers: dict[int, list[int]] = {}
        for idx, enrolled in enumerate(self.enrollments):
            for cid in enrolled:
                takers.setdefault(cid, []).append(idx)
        marks = []
        for review in self.reviews:
            if not review.body:
                continue
            pool = takers.get(review.course_id, [])
            wanted = min(len(pool) - 1, int(self.rng.poisson(1.5 if review.rating >= 4 else 0.8)))
            chosen: set[int] = set()
            for _ in range(max(0, wanted) * 3):
                if len(chosen) >= wanted:
                    break
                idx = self.rnd.choice(pool)
                when = review.created_at + timedelta(days=self.rnd.randint(1, 30))
                if self.user_ids[idx] == review.member_id or idx in chosen or when >= self.today:
                    continue
                chosen.add(idx)
                marks.append(ReviewHelpful(review_id=review.id, member_id=self.user_ids[idx], created_at=when))
                self.event(idx, "review_marked_helpful", when, "review", review.id, {"course_id": review.course_id})
            review.helpful_count = len(chosen)
        self._bulk(Review, self.reviews)
        self._bulk(ReviewHelpful, marks)

    def write_referrals(self) -> None:
        """Referral rows as the levers' services would have left them at `today` (see referral_grant_rewards)."""
        first_paid: dict[int, Order] = {}
        for order in self.orders:
            if order.paid_at is not None and order.amount_paid > 0:
                current = first_paid.get(order.member_id)
                if current is None or (order.paid_at, order.id) < (current.paid_at, current.id):
                    first_paid[order.member_id] = order
        window = timedelta(days=REFERRAL_WINDOW_DAYS)
        inviters = sorted({r for r in self.referrer if r is not None} | {0})
        self._bulk(ReferralCode, [
            ReferralCode(member_id=self.user_ids[i], code=self.referral_code(i), created_at=self.join_at[i])
            for i in inviters
        ])
        referrals = []
        for idx, referrer in enumerate(self.referrer):
            if referrer is None:
                continue
            ref = Referral(id=self.referral_id[idx], referrer_id=self.user_ids[referrer], referred_id=self.user_ids[idx],
                           code=self.referral_code(referrer), status=Referral.Status.SIGNED_UP,
                           welcome_coupon_id=self.welcome[idx].id, created_at=self.join_at[idx])
            order = first_paid.get(self.user_ids[idx])
            if order is not None:
                ref.first_order_id = order.id
                if order.status == Order.Status.REFUNDED:
                    ref.status = Referral.Status.REJECTED
                    ref.rejection_reason = "The friend's first order was refunded."
                elif order.paid_at + window > self.today:
                    ref.status, ref.qualified_at = Referral.Status.QUALIFIED, order.paid_at
                else:
                    when = order.paid_at + window
                    reward = self.new_coupon(
                        code=f"THANKS-{self.coupon_next:06d}", percent_off=Decimal(25), amount_off=None,
                        applies_to=Coupon.AppliesTo.ALL, valid_from=when, valid_until=when + timedelta(days=90),
                        max_redemptions=1, source=Coupon.Source.REFERRAL, description="Thank you for inviting a friend",
                        assigned_idx=referrer, created_at=when,
                    )
                    ref.status, ref.qualified_at, ref.rewarded_at = Referral.Status.REWARDED, when, when
                    ref.reward_coupon_id = reward.id
                    self.event(referrer, "coupon_issued", when, "coupon", reward.id, {"source": "referral"})
                    self.event(referrer, "referral_rewarded", when, "referral", ref.id, {"coupon_id": reward.id})
            referrals.append(ref)
        self.referrals = referrals

    def referral_code(self, idx: int) -> str:
        n, chars = self.user_ids[idx], []
        for _ in range(6):
            n, r = divmod(n, len(CODE_ALPHABET))
            chars.append(CODE_ALPHABET[r])
        return "D" + "".join(chars)

    def progress_label(self, label: str) -> None:
        self.progress(label)

    def run(self) -> SeedResult:
        self.build_catalogue()
        self.course_index = {cid: i for i, cid in enumerate(self.course_ids)}
        self.build_members()
        self.build_community_seed()
        self.progress("catalogue and members")
        for m in range(self.months):
            self.run_month(m)
            self.progress(f"month {m + 1}/{self.months}")
        self.process_period_ends(self.today)
        self.finish_live_subs()
        self.learner_extras()
        self.write_state()
        return SeedResult(members=self.n, counts=dict(self.counts), today=self.today)


def reset_sequences() -> None:
    """PostgreSQL sequences do not move when rows are inserted with explicit ids; bring them past the max."""
    if connection.vendor != "postgresql":
        return
    models_ = [m for m in apps.get_models() if m._meta.app_label in {"members", "community", "analytics"}]
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), models_):
            cursor.execute(sql)


def seed(*, members: int, months: int, seed: int, today: datetime,
         progress: Callable[[str], None] | None = None) -> SeedResult:
    """Generate and insert the demo platform in one transaction."""
    if members < 1 or months < 1:
        raise ValueError("members and months must be at least 1")
    with transaction.atomic():
        result = _Sim(members=members, months=months, seed=seed, today=today, progress=progress).run()
        reset_sequences()
    return result
