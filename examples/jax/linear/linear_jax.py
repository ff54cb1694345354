"""The linear example written with jax.numpy: y = x . w + b, with w and b left to the fit."""

import jax.numpy as jnp
import numpy as np

from pytest_soft import Parameters

theta = Parameters(w=np.zeros(3), b=0.0)


def predict(x):
    """x: one point (3 features)."""
    return jnp.dot(x, theta.w) + theta.b
