"""examples/mlp written with jax.numpy. The implementation under test: a classifier for points
in the plane, a neural network with two hidden layers of 16 tanh units (2-16-16-1, 337
parameters) whose weights the fit learns.

The initial weights are random but reproducible: a seeded generator draws them when the module
is imported, so every run starts from the same network (until the fit writes
mlp_jax.params.json): the same initial weights as examples/mlp.
"""

import jax.numpy as jnp
import numpy

from pytest_soft import Parameters

SIZES = (2, 16, 16, 1)
_rng = numpy.random.default_rng(7)


def _weights(n_in, n_out):
    return _rng.normal(scale=1.0 / numpy.sqrt(n_in), size=(n_in, n_out))


theta = Parameters(
    W1=_weights(2, 16),
    b1=numpy.zeros(16),
    W2=_weights(16, 16),
    b2=numpy.zeros(16),
    W3=_weights(16, 1),
    b3=numpy.zeros(1),
)


def logit(x):
    """The network's output before the sigmoid, for one point x (2,) or a stack of points (n, 2):
    positive means class 1."""
    h = jnp.tanh(jnp.dot(x, theta.W1) + theta.b1)
    h = jnp.tanh(jnp.dot(h, theta.W2) + theta.b2)
    return (jnp.dot(h, theta.W3) + theta.b3)[..., 0]


def predict(x):
    """The class (0 or 1) of one point or of each point of a stack."""
    return (logit(x) > 0).astype(int)
