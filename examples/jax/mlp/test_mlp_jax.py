"""Tests for mlp_jax, the same as examples/mlp/test_mlp.py: a soft test per training point (two
moons, 200 points) scoring the cross-entropy of the network's output (a JAX array, so --fit
differentiates it with JAX), and an ordinary test of the accuracy on 200 other points.
"""

import jax.numpy as jnp
import mlp_jax
import numpy
import pytest

from pytest_soft import soft_test


def moons(n, noise, rng):
    """Two interleaving half circles ("two moons"), class 0 on top and class 1 below, with
    Gaussian noise: points (n, 2) and labels (n,)."""
    top = rng.uniform(0, numpy.pi, n // 2)
    bottom = rng.uniform(0, numpy.pi, n - n // 2)
    points = numpy.concatenate(
        [
            numpy.column_stack([numpy.cos(top), numpy.sin(top)]),
            numpy.column_stack([1 - numpy.cos(bottom), 0.5 - numpy.sin(bottom)]),
        ]
    )
    labels = numpy.concatenate([numpy.zeros(n // 2), numpy.ones(n - n // 2)])
    return points + rng.normal(scale=noise, size=points.shape), labels


rng = numpy.random.default_rng(2026)
TRAIN_X, TRAIN_Y = moons(200, 0.15, rng)
TEST_X, TEST_Y = moons(200, 0.15, rng)
TRAIN = list(zip(TRAIN_X, TRAIN_Y.tolist()))


@soft_test
@pytest.mark.parametrize("x, label", TRAIN, ids=[f"point{i}" for i in range(len(TRAIN))])
def test_point(x, label):
    # Binary cross-entropy of sigmoid(z) against the label: log(1 + e^z) - label * z.
    z = mlp_jax.logit(x)
    return jnp.logaddexp(0.0, z) - label * z


def test_accuracy():
    accuracy = numpy.mean(mlp_jax.predict(TEST_X) == TEST_Y)
    assert accuracy >= 0.95, f"accuracy {accuracy:.3f} on the 200 test points"
