"""badminima: Monte Carlo engine for bad local minima in tiny neural networks."""
__version__ = "0.1.0"
