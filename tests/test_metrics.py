"""Physics metrics on inputs whose answers are known."""

import numpy as np
import pytest

from trigger.report.metrics import anomaly_metrics, anomaly_threshold, classifier_metrics, is_constant, softmax


def test_perfect_and_random_classifier():
    y = np.repeat(np.arange(3), 100)
    perfect = np.eye(3)[y]
    m = classifier_metrics(y, perfect, ["a", "b", "c"])
    assert m["accuracy"] == 1.0 and all(v == 1.0 for v in m["auc"].values())
    rng = np.random.default_rng(0)
    rand = softmax(rng.normal(size=(300, 3)))
    r = classifier_metrics(y, rand, ["a", "b", "c"])
    assert 0.2 < r["accuracy"] < 0.5 and all(0.4 < v < 0.6 for v in r["auc"].values())


def test_softmax_rows_sum_to_one():
    p = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[1], [0.5, 0.5])


def test_threshold_keeps_requested_fraction():
    bg = np.random.default_rng(3).permutation(200000).astype(float)
    thr, fpr = anomaly_threshold(bg, 2.5e-5)
    assert fpr == pytest.approx(2.5e-5)
    assert np.sum(bg > thr) == 5


def test_small_sample_reports_resolvable_rate():
    bg = np.arange(1000, dtype=float)
    thr, fpr = anomaly_threshold(bg, 2.5e-5)
    assert fpr == pytest.approx(1e-3) and np.sum(bg > thr) == 1


def test_anomaly_metrics_separable_signal():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0, 1, 4000), rng.normal(10, 1, 200), rng.normal(0, 1, 200)])
    labels = np.concatenate([np.zeros(4000), np.ones(200), 2 * np.ones(200)])
    m = anomaly_metrics(labels, scores, ["far", "same"])
    assert m["auc"]["far"] > 0.99 and abs(m["auc"]["same"] - 0.5) < 0.08
    assert m["efficiency"]["far"] > 0.95 and m["efficiency"]["same"] < 0.02
    assert not m["resolved"] and m["rate_resolved_khz"] == pytest.approx(10.0)


def test_a_constant_output_is_told_from_a_nearly_constant_one():
    probabilities = np.tile([0.1, 0.2, 0.7], (50, 1))
    assert is_constant(probabilities) and is_constant(np.full(40, 3.5))
    probabilities[17, 0] += 1e-12  # one event differs in one class: the model tells events apart
    assert not is_constant(probabilities)
    assert not is_constant(np.array([[1.0, 2.0]]))  # a single event says nothing
