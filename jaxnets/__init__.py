"""jaxnets: Zozoulenko (2018) in JAX — hand-derived backprop as custom VJPs, and the paper's experiments."""

__version__ = "0.1.0"
