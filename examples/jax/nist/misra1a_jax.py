"""Misra1a (NIST StRD, lower difficulty), the implementation under test:

    y = b1*(1-exp[-b2*x])

with b1 and b2 declared as parameters, starting from the NIST start that NIST_START names
(1 by default), or from misra1a_jax.params.json once a fit has written it.
"""

import jax.numpy as jnp
from nist_data import strd

from pytest_soft import Parameters

PROBLEM = strd.load("Misra1a")
theta = Parameters(**PROBLEM.start_values())


def model(x, b1, b2):
    """The NIST model (jax.numpy), as a plain function of x and the parameters."""
    return b1 * (1 - jnp.exp(-b2 * x))


def f(x):
    # x as a JAX array: the score is then one wherever the model is plain arithmetic, so
    # --fit-backend auto differentiates it with JAX.
    return model(jnp.asarray(x), theta.b1, theta.b2)
