"""ENSO (NIST StRD, average difficulty), the implementation under test:

    y = b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12)
           + b5*cos(2*pi*x/b4) + b6*sin(2*pi*x/b4)
           + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)

with b1..b9 declared as parameters, starting from the NIST start that NIST_START names
(1 by default), or from enso_jax.params.json once a fit has written it.
"""

import jax.numpy as jnp
from nist_data import strd

from pytest_soft import Parameters

PROBLEM = strd.load("ENSO")
theta = Parameters(**PROBLEM.start_values())


def model(x, b1, b2, b3, b4, b5, b6, b7, b8, b9):
    """The NIST model (jax.numpy), as a plain function of x and the parameters."""
    return (
        b1
        + b2 * jnp.cos(2 * jnp.pi * x / 12)
        + b3 * jnp.sin(2 * jnp.pi * x / 12)
        + b5 * jnp.cos(2 * jnp.pi * x / b4)
        + b6 * jnp.sin(2 * jnp.pi * x / b4)
        + b8 * jnp.cos(2 * jnp.pi * x / b7)
        + b9 * jnp.sin(2 * jnp.pi * x / b7)
    )


def f(x):
    # x as a JAX array: the score is then one wherever the model is plain arithmetic, so
    # --fit-backend auto differentiates it with JAX.
    return model(
        jnp.asarray(x),
        theta.b1,
        theta.b2,
        theta.b3,
        theta.b4,
        theta.b5,
        theta.b6,
        theta.b7,
        theta.b8,
        theta.b9,
    )
