"""The sine example written with jax.numpy: f(x) = sin(omega * x), omega left for the fit."""

import jax.numpy as jnp

from pytest_soft import Param, Parameters

theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)))


def f(x):
    return jnp.sin(theta.omega * x)
