from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from members.models import Benefit, Coupon, Course, Enrollment, Lesson, MembershipTier, Order, Subscription, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"member{n}@example.com")
    display_name = factory.Sequence(lambda n: f"Member {n}")
    # Test members have opted in (the model's default is opt-out since consent became explicit).
    marketing_opt_in = True
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MembershipTier

    name = factory.Sequence(lambda n: f"Tier {n}")
    slug = factory.Sequence(lambda n: f"tier-{n}")
    monthly_price = Decimal("49.00")
    yearly_price = Decimal("490.00")
    trial_days = 0


class BenefitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Benefit

    tier = factory.SubFactory(TierFactory)
    kind = Benefit.Kind.ALL_COURSES


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    title = factory.Sequence(lambda n: f"Course {n}")
    slug = factory.Sequence(lambda n: f"course-{n}")
    summary = "A practical course."
    topic = "data"
    tags = factory.LazyFunction(lambda: ["data", "python"])
    price = Decimal("199.00")
    is_published = True
    published_at = factory.LazyFunction(timezone.now)


class LessonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesson

    course = factory.SubFactory(CourseFactory)
    position = factory.Sequence(lambda n: n + 1)
    title = factory.Sequence(lambda n: f"Lesson {n}")
    body = "Lesson body."


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    member = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseFactory)
    source = Enrollment.Source.PURCHASE


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    code = factory.Sequence(lambda n: f"SAVE{n}")
    discount_type = Coupon.DiscountType.PERCENT
    percent_off = Decimal("20")
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    member = factory.SubFactory(UserFactory)
    tier = factory.SubFactory(TierFactory)
    status = Subscription.Status.ACTIVE
    current_period_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))
    current_period_end = factory.LazyFunction(lambda: timezone.now() + timedelta(days=20))


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    member = factory.SubFactory(UserFactory)
    kind = Order.Kind.COURSE
    course = factory.SubFactory(CourseFactory)
    list_price = Decimal("199.00")
    amount_paid = Decimal("199.00")
    status = Order.Status.PAID
    paid_at = factory.LazyFunction(timezone.now)
