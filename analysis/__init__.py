"""Turning result files into statistics, tables and figures."""
import os as _os

# The figures of `badminima plot KIND` and `bm.plot` (analysis/plots.py draws them); here so that the
# command line can list them without importing matplotlib.
FIGURE_KINDS = ("regions", "fit", "convergence", "losses", "basins", "minimality")


def _writable_matplotlib_dirs() -> None:
    """Where matplotlib's config or cache folder cannot be written (HOME read-only, MPLCONFIGDIR a file),
    it warns on stderr at import, even under -q; give it a folder of this process instead, as it would
    make itself, before any module here imports it."""
    import atexit
    import shutil
    import tempfile
    home = _os.path.expanduser("~")
    wanted = [_os.environ["MPLCONFIGDIR"]] if _os.environ.get("MPLCONFIGDIR") else [
        _os.path.join(_os.environ.get("XDG_CONFIG_HOME") or _os.path.join(home, ".config"), "matplotlib"),
        _os.path.join(_os.environ.get("XDG_CACHE_HOME") or _os.path.join(home, ".cache"), "matplotlib")]
    for folder in wanted:
        try:
            _os.makedirs(folder, exist_ok=True)
            if _os.access(folder, _os.W_OK | _os.X_OK):
                continue
        except OSError:
            pass
        own = tempfile.mkdtemp(prefix="badminima-matplotlib-")
        atexit.register(shutil.rmtree, own, True)
        _os.environ["MPLCONFIGDIR"] = own
        return


_writable_matplotlib_dirs()
