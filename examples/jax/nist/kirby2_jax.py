"""Kirby2 (NIST StRD, average difficulty), the implementation under test:

    y = (b1 + b2*x + b3*x**2) / (1 + b4*x + b5*x**2)

with b1..b5 declared as parameters, starting from the NIST start that NIST_START names
(1 by default), or from kirby2_jax.params.json once a fit has written it.
"""

import jax.numpy as jnp
from nist_data import strd

from pytest_soft import Parameters

PROBLEM = strd.load("Kirby2")
theta = Parameters(**PROBLEM.start_values())


def model(x, b1, b2, b3, b4, b5):
    """The NIST model (jax.numpy), as a plain function of x and the parameters."""
    return (b1 + b2 * x + b3 * x**2) / (1 + b4 * x + b5 * x**2)


def f(x):
    # x as a JAX array: the score is then one wherever the model is plain arithmetic, so
    # --fit-backend auto differentiates it with JAX.
    return model(jnp.asarray(x), theta.b1, theta.b2, theta.b3, theta.b4, theta.b5)
