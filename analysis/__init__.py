"""Turning result files into statistics, tables and figures."""

# The figures of `badminima plot KIND` and `bm.plot` (analysis/plots.py draws them); here so that the
# command line can list them without importing matplotlib.
FIGURE_KINDS = ("regions", "fit", "convergence", "losses", "basins", "minimality")
