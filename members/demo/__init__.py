"""The demo platform: a static catalogue plus a behaviour model that simulates a year of a knowledge-paid community.

`catalogue` holds the hand-written products (courses, tiers, coupons, offers), `texts` the community copy in English
and Chinese, `behaviour` the probabilities (pure functions, documented in docs/DEMO_MODEL.md) and `generator` the
month-by-month simulation that bulk-inserts the rows.
"""
