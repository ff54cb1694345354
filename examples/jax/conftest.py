"""The JAX examples compute in float64, as their fits do (a fit turns jax_enable_x64 on for its
own length only): the run after the fit then measures exactly what the fit reported."""

import jax

jax.config.update("jax_enable_x64", True)
