"""A fixed-seed synthetic platform for the analytics tests, written with bulk_create.

Each member has a favourite topic and alternates between engaged and disengaged spells (a two-state Markov chain,
week by week). Engaged weeks bring lesson views/completions and community posts; purchases happen mostly in engaged
weeks and mostly within the favourite topic. So recent learning predicts the next purchase beyond recency and
frequency (a planted signal the propensity model should find), and co-purchases cluster by topic (which the
recommender should find). `orders_only=True` writes only members, courses and orders.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from analytics.models import Event, RecommendationSet
from community.models import Post
from members.models import (
    Benefit,
    Course,
    Enrollment,
    Lesson,
    LessonProgress,
    MembershipTier,
    Order,
    Review,
    Subscription,
    User,
)

TOPICS = {
    "python": ("Python", "Python 编程", ["python", "programming"]),
    "design": ("Design", "设计", ["design", "ux"]),
    "finance": ("Finance", "金融", ["finance", "investing"]),
}
START = datetime(2025, 1, 6, tzinfo=UTC)


@dataclass(frozen=True)
class Platform:
    start: datetime
    end: datetime
    member_ids: list[int]
    course_ids: list[int]
    all_access_tier: MembershipTier | None


def make_courses(per_topic: int = 4) -> list[Course]:
    courses = []
    for topic, (name, zh, tags) in TOPICS.items():
        for i in range(per_topic):
            courses.append(Course(
                title=f"{name} course {i + 1}", title_zh=f"{zh} 课程 {i + 1}", slug=f"{topic}-{i + 1}",
                summary=f"Learn {name.lower()} step {i + 1}", description=f"A {name.lower()} course about {tags[1]}.",
                topic=topic, tags=tags, price=Decimal("100.00"), is_published=True,
                published_at=START - timedelta(days=30), created_at=START - timedelta(days=30),
            ))
    Course.objects.bulk_create(courses)
    created = list(Course.objects.filter(slug__in=[c.slug for c in courses]).order_by("id"))
    Lesson.objects.bulk_create([Lesson(course=c, position=p, title=f"{c.title} lesson {p}")
                                for c in created for p in range(1, 6)])
    return created


def make_platform(*, seed: int = 7, members: int = 200, days: int = 300, orders_only: bool = False,
                  start: datetime = START, email_prefix: str = "syn") -> Platform:
    rng = np.random.default_rng(seed)
    courses = make_courses()
    by_topic: dict[str, list[Course]] = {}
    for c in courses:
        by_topic.setdefault(c.topic, []).append(c)
    lessons = {c.pk: list(c.lessons.order_by("position")) for c in courses}
    tier = None
    if not orders_only:
        tier = MembershipTier.objects.create(name="All access", slug=f"{email_prefix}-all", monthly_price=Decimal(50),
                                             yearly_price=Decimal(500))
        Benefit.objects.create(tier=tier, kind=Benefit.Kind.ALL_COURSES)

    users = [User(email=f"{email_prefix}{i}@example.com", display_name=f"Syn {i}",
                  date_joined=start + timedelta(days=int(rng.integers(0, days // 2))))
             for i in range(members)]
    User.objects.bulk_create(users)
    users = list(User.objects.filter(email__startswith=email_prefix).order_by("id"))

    orders, events, enrollments, progress, posts, subs, reviews = [], [], [], [], [], [], []
    end = start + timedelta(days=days)
    topics = list(TOPICS)
    for user in users:
        topic = topics[int(rng.integers(0, len(topics)))]
        engaged = rng.random() < 0.5
        owned: set[int] = set()
        done_lessons: set[int] = set()
        week_start = user.date_joined
        subscribed = (not orders_only) and rng.random() < 0.15
        while week_start < end:
            # Markov spells: engaged members mostly stay engaged; disengaged ones rarely come back.
            engaged = rng.random() < (0.85 if engaged else 0.08)
            if engaged and not orders_only:
                for _ in range(int(rng.poisson(3))):
                    when = week_start + timedelta(hours=float(rng.uniform(0, 167)))
                    if when >= end:
                        continue
                    events.append(Event(member=user, kind="lesson_viewed", occurred_at=when, source="demo"))
                    pool = [les for cid in owned for les in lessons[cid] if les.pk not in done_lessons]
                    if pool:
                        lesson = pool[int(rng.integers(0, len(pool)))]
                        done_lessons.add(lesson.pk)
                        progress.append(LessonProgress(member=user, lesson=lesson, started_at=when, completed_at=when))
                if rng.random() < 0.2:
                    when = week_start + timedelta(hours=float(rng.uniform(0, 167)))
                    if when < end:
                        posts.append(Post(author=user, title="Hi", body="Hello", body_html="<p>Hello</p>", created_at=when))
            buy_p = 0.22 if engaged else 0.01
            if rng.random() < buy_p:
                when = week_start + timedelta(hours=float(rng.uniform(0, 167)))
                same_topic = rng.random() < 0.85
                pool = [c for c in (by_topic[topic] if same_topic else courses) if c.pk not in owned]
                if pool and when < end:
                    course = pool[0] if rng.random() < 0.6 else pool[int(rng.integers(0, len(pool)))]
                    owned.add(course.pk)
                    orders.append(Order(member=user, kind=Order.Kind.COURSE, course=course, list_price=course.price,
                                        amount_paid=course.price, status=Order.Status.PAID, paid_at=when,
                                        created_at=when))
                    if not orders_only:
                        enrollments.append(Enrollment(member=user, course=course, source=Enrollment.Source.PURCHASE,
                                                      enrolled_at=when))
                        if rng.random() < 0.3 and when + timedelta(days=5) < end:
                            at = when + timedelta(days=5)
                            reviews.append(Review(member=user, course=course, rating=int(rng.integers(1, 6)),
                                                  created_at=at, updated_at=at))
            week_start += timedelta(days=7)
        if subscribed and tier is not None:
            started = user.date_joined + timedelta(days=1)
            period_start = started
            n_periods = 0
            while True:
                period_end = period_start + timedelta(days=30)
                orders.append(Order(member=user, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period="month",
                                    list_price=tier.monthly_price, amount_paid=tier.monthly_price,
                                    status=Order.Status.PAID, paid_at=period_start, created_at=period_start,
                                    is_renewal=n_periods > 0))
                n_periods += 1
                if period_end >= end or rng.random() < 0.15:
                    break
                period_start = period_end
            ended = period_end < end
            subs.append(Subscription(
                member=user, tier=tier, billing_period="month",
                status=Subscription.Status.EXPIRED if ended else Subscription.Status.ACTIVE, started_at=started,
                current_period_start=period_start, current_period_end=period_end, ended_at=period_end if ended else None,
                canceled_at=period_start + timedelta(days=3) if ended else None, renewal_count=n_periods - 1,
            ))
    Order.objects.bulk_create(orders, batch_size=1000)
    Event.objects.bulk_create(events, batch_size=2000)
    Enrollment.objects.bulk_create(enrollments, batch_size=1000, ignore_conflicts=True)
    LessonProgress.objects.bulk_create(progress, batch_size=1000, ignore_conflicts=True)
    Post.objects.bulk_create(posts, batch_size=1000)
    Subscription.objects.bulk_create(subs, batch_size=1000)
    Review.objects.bulk_create(reviews, batch_size=1000, ignore_conflicts=True)
    return Platform(start, end, [u.pk for u in users], [c.pk for c in courses], tier)


def append_future_history(after: datetime, member_ids: list[int], course_ids: list[int], *, seed: int = 99) -> None:
    """Write a burst of history at or after `after` — orders, events, lessons, posts, a new course, new members —
    to prove computations at as_of=after do not move."""
    rng = np.random.default_rng(seed)
    when = after + timedelta(hours=1)
    course = Course.objects.create(title="Future course", slug=f"future-{seed}", is_published=True,
                                   published_at=when, created_at=when, price=Decimal(100))
    lesson = Lesson.objects.create(course=course, position=1, title="Future lesson")
    newcomer = User.objects.create(email=f"future{seed}@example.com", date_joined=when)
    picks = [int(m) for m in rng.choice(member_ids, size=min(40, len(member_ids)), replace=False)]
    first_course = Course.objects.get(pk=course_ids[0])
    # One live order per member and course (the database refuses a second): buyers are picks who don't own it yet.
    owners = set(Order.objects.filter(course=first_course, status__in=["pending", "paid"]).values_list("member_id",
                                                                                                     flat=True))
    Order.objects.bulk_create(
        [Order(member_id=m, kind=Order.Kind.COURSE, course=first_course, list_price=Decimal(100),
               amount_paid=Decimal(100), status=Order.Status.PAID, paid_at=when, created_at=when)
         for m in picks if m not in owners]
        + [Order(member=newcomer, kind=Order.Kind.COURSE, course=course, list_price=Decimal(100),
                 amount_paid=Decimal(100), status=Order.Status.PAID, paid_at=when, created_at=when)]
    )
    Event.objects.bulk_create([Event(member_id=m, kind="lesson_viewed", occurred_at=when) for m in picks]
                              + [Event(member_id=m, kind="email_opened", occurred_at=after) for m in picks])
    Enrollment.objects.bulk_create([Enrollment(member_id=m, course=course, source="purchase", enrolled_at=when)
                                    for m in picks], ignore_conflicts=True)
    LessonProgress.objects.bulk_create([LessonProgress(member_id=m, lesson=lesson, started_at=when, completed_at=when)
                                        for m in picks], ignore_conflicts=True)
    Post.objects.bulk_create([Post(author_id=m, title="later", body="x", body_html="x", created_at=when) for m in picks])
    Review.objects.bulk_create([Review(member_id=m, course=course, rating=1, created_at=when, updated_at=when)
                                for m in picks])
    # Reviews after `after` of courses bought before it: neither the writer's ratings nor the course averages
    # (avg_rating_of_purchased) nor the recommender's high-rating signal may move.
    Review.objects.bulk_create([Review(member_id=m, course_id=c, rating=5, created_at=when, updated_at=when)
                                for m in picks for c in course_ids[:3]], ignore_conflicts=True)
    # Completing an enrollment that existed before as_of, after as_of, must not count at as_of either.
    Enrollment.objects.filter(member_id__in=picks, enrolled_at__lt=after, completed_at__isnull=True).update(
        completed_at=when)


def recommendation_set(*, run: object, member: object, items: list[tuple]) -> RecommendationSet:
    """A member's stored recommendations of `run`: `items` holds (course, score, reason[, reason course]) per rank,
    best first, as analytics.scoring.services writes them."""
    return RecommendationSet.objects.create(run=run, member=member, items=[
        [item[0].pk, float(item[1]), item[2], item[3].pk if len(item) > 3 and item[3] is not None else None]
        for item in items])


def run_rows(run: object, *fields: str) -> list[tuple]:
    """The run's recommendations one per member and rank, in member then rank order: `fields` of member_id, rank,
    course_id, score, reason, reason_course_id (all of them by default)."""
    fields = fields or ("member_id", "rank", "course_id", "score", "reason", "reason_course_id")
    rows = []
    for stored in RecommendationSet.objects.filter(run=run).order_by("member_id"):
        for entry in stored.entries():
            values = {"member_id": stored.member_id, **vars(entry)}
            rows.append(tuple(values[name] for name in fields))
    return rows
