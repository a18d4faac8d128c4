from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics import selectors
from analytics.ml import segmentation
from analytics.models import SegmentAssignment, SegmentRun
from analytics.scoring import services
from tests.analytics.factories import append_future_history, make_platform


def test_names_follow_centroid_ranks():
    centroids = pd.DataFrame({
        "recency_days": [5, 200, 20, 60, 10],
        "frequency": [8, 1, 2, 4, 0.2],
        "monetary": [900, 50, 150, 400, 10],
        "engagement": [90, 5, 60, 40, 30],
        "tenure_days": [300, 250, 150, 280, 20],
    })
    names = segmentation.name_clusters(centroids)
    assert names[0] == "Champions" and names[4] == "New" and names[1] == "Lost"
    # Clusters 2 and 3 tie on value; the stable sort keeps the lower number first.
    assert names[2] == "Loyal" and names[3] == "At risk"
    assert segmentation.name_clusters(centroids) == names  # deterministic


def blobs(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = [
        {"recency_days": 5, "frequency": 12, "monetary": 2000, "engagement": 90, "tenure_days": 400},
        {"recency_days": 300, "frequency": 1, "monetary": 50, "engagement": 2, "tenure_days": 380},
        {"recency_days": 40, "frequency": 3, "monetary": 300, "engagement": 50, "tenure_days": 200},
    ]
    rows = [{k: v * rng.uniform(0.9, 1.1) for k, v in g.items()} for g in groups for _ in range(60)]
    return pd.DataFrame(rows, index=pd.Index(range(1, 181), name="member_id"))[segmentation.SEGMENT_FEATURES]


def test_k_is_chosen_by_silhouette_among_three_to_seven():
    result = segmentation.fit(blobs())
    assert set(result.criterion_scores) == {"3", "4", "5", "6", "7"}
    assert result.k == 3 == int(max(result.criterion_scores, key=lambda k: result.criterion_scores[k]))
    assert result.assignments.loc[1, "label"] == "Champions"
    assert result.assignments.loc[61, "label"] == "Lost"
    assert result.assignments["cluster"].nunique() == 3
    again = segmentation.fit(blobs())
    assert again.assignments.equals(result.assignments)


def test_every_k_is_scored_on_the_sample_silhouette_score_draws(monkeypatch):
    """The distances of the silhouette sample are computed once for every k; the figures are silhouette_score's own
    on that sample, below and above SILHOUETTE_SAMPLE members."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    monkeypatch.setattr(segmentation, "SILHOUETTE_SAMPLE", 100)
    for frame in (blobs().head(90), blobs()):
        X = segmentation._transform(frame)
        expected = {}
        for k in range(3, 8):
            labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).predict(X)
            expected[str(k)] = round(float(silhouette_score(X, labels, sample_size=min(len(X), 100),
                                                            random_state=0)), 4)
        assert segmentation.fit(frame).criterion_scores == expected


@pytest.mark.parametrize("working_mb", [64, 0.03, 0.01])
def test_every_k_s_silhouette_in_one_pass_is_silhouette_score_s(monkeypatch, working_mb):
    """segmentation.silhouettes reads the sample's distances once for every k, a chunk of rows at a time. In one
    chunk (64 MB) its figures are silhouette_score's, float for float; in chunks of 30 and 10 rows of 131 (the last
    one short), silhouette_score's own in chunks of that size (its working_memory), and within 1e-12 of its default.
    The labels cover a cluster of one member (whose silhouette is 0), numbers that skip (7, 9) and a k whose
    clusters all have two members or more."""
    from sklearn import config_context
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    monkeypatch.setattr(segmentation, "SILHOUETTE_WORKING_MB", working_mb)
    X = segmentation._transform(blobs(seed=3).head(131))
    labels = {k: KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).predict(X) for k in range(3, 8)}
    lonely = labels[3].copy()
    lonely[17] = 9  # a cluster of one member
    lonely[lonely == 1] = 7
    labels[9] = lonely
    got = segmentation.silhouettes(X, labels)
    assert list(got) == list(labels)
    for k, values in labels.items():
        with config_context(working_memory=working_mb):
            assert got[k] == silhouette_score(X, values)
        assert got[k] == pytest.approx(silhouette_score(X, values), abs=1e-12)
    if working_mb >= 1:
        assert all(got[k] == silhouette_score(X, values) for k, values in labels.items())


def test_a_silhouette_needs_two_clusters_and_fewer_than_one_per_member():
    X = segmentation._transform(blobs().head(10))
    with pytest.raises(ValueError, match="Number of labels is 1"):
        segmentation.silhouettes(X, {3: np.zeros(10, dtype=int)})
    with pytest.raises(ValueError, match="Number of labels is 10"):
        segmentation.silhouettes(X, {3: np.arange(10)})


def test_too_few_members_get_one_segment():
    result = segmentation.fit(blobs().head(5))
    assert result.k == 1 and set(result.assignments["label"]) == {"All members"}


@pytest.mark.django_db
def test_segment_run_is_stored_per_member_and_ignores_the_future():
    platform = make_platform(members=80, days=240, seed=6)
    as_of = platform.start + timedelta(days=200)
    run = services.segments_compute(as_of=as_of)
    assert 3 <= run.k <= 7 and run.criterion == "silhouette" and run.criterion_scores
    labels = dict(SegmentAssignment.objects.filter(run=run).values_list("member_id", "label"))
    assert len(labels) == 80 and "Champions" in labels.values()
    member_id = platform.member_ids[0]
    assert selectors.latest_segment(member_id).label == labels[member_id]

    append_future_history(as_of, platform.member_ids, platform.course_ids)
    rerun = services.segments_compute(as_of=as_of)
    assert SegmentRun.objects.filter(as_of=as_of).count() == 1
    assert dict(SegmentAssignment.objects.filter(run=rerun).values_list("member_id", "label")) == labels
    sizes = selectors.segment_sizes()
    assert sum(s["members"] for s in sizes) == 80


def test_a_kept_k_clusters_as_when_it_is_chosen_without_measuring_a_silhouette(monkeypatch):
    """A night that keeps an earlier night's k gets the clustering that k gets when it is chosen (the same KMeans on
    the same rows), and skips the silhouette sample's distances: there is nothing to choose between."""
    frame = blobs()
    chosen = segmentation.fit(frame)
    monkeypatch.setattr(segmentation, "pairwise_distances_chunked", lambda *a, **kw: pytest.fail("distances computed"))
    monkeypatch.setattr(segmentation, "silhouettes", lambda *a, **kw: pytest.fail("silhouette computed"))
    kept = segmentation.fit(frame, k=chosen.k)
    assert kept.k == chosen.k and not kept.selected and kept.criterion_scores == {}
    assert kept.assignments.equals(chosen.assignments)
    assert kept.centroids == chosen.centroids and kept.labels == chosen.labels
    assert "kept from the last choice" in kept.notes
