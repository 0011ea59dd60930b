"""badminima: a Numba-accelerated Monte Carlo engine for bad local minima in tiny neural networks.

    import badminima as bm
    res = bm.train(dataset="xor", hidden=2, networks=10_000, seed=0)
    print(res.counts())

The API (docs/api.md): train, open, table1, verify, certify, search, plot, report, load_dataset, and
the Results they return.  Errors are one-line exceptions: ConfigError (an option), DataError (a
dataset), StoreError (a result file, an output path, a full disk; NoResultFile, a name that names none;
NotMergeable, files that are not one run's shards),
ResourceError (a run that would not fit in memory), AnalysisError (a figure or report).  The command
line `badminima` (cli.py) is built on the same functions.
"""
__version__ = "0.2.0"

_API = ("train", "open", "table1", "verify", "certify", "search", "plot", "report", "load_dataset", "Results")
_ERRORS = {"ConfigError": "badminima.engine.train.config", "DataError": "badminima.engine.data.datasets",
           "StoreError": "badminima.engine.store", "NoResultFile": "badminima.engine.store",
           "NotMergeable": "badminima.engine.store",
           "ResourceError": "badminima.engine.train.limits",
           "AnalysisError": "badminima.analysis.load"}
__all__ = [*_API, *_ERRORS, "__version__"]


def __getattr__(name):
    """Import the API on first use, so `import badminima` (and `badminima --help`) stay fast."""
    import importlib
    if name in _API:
        return getattr(importlib.import_module("badminima.api"), name)
    if name in _ERRORS:
        return getattr(importlib.import_module(_ERRORS[name]), name)
    raise AttributeError(f"module 'badminima' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
