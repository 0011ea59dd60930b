"""Turning result files into statistics, tables and figures."""
import os as _os
import sys as _sys

# The figures of `badminima plot KIND` and `bm.plot` (analysis/plots.py draws them); here so that the
# command line can list them without importing matplotlib.
FIGURE_KINDS = ("regions", "fit", "convergence", "losses", "basins", "minimality")


_checked = False


def writable_matplotlib_dirs() -> None:
    """Called before matplotlib is imported: where its config or cache folder cannot be written (HOME
    read-only, MPLCONFIGDIR a file), matplotlib warns on stderr at import, even under -q; give it a
    folder of this process instead (removed at exit), holding the user's matplotlibrc if there is one."""
    import atexit
    import shutil
    import tempfile
    global _checked
    if _checked:
        return
    _checked = True
    home = _os.path.expanduser("~")
    if _os.environ.get("MPLCONFIGDIR"):
        config = cache = _os.environ["MPLCONFIGDIR"]
    elif _sys.platform.startswith(("linux", "freebsd")):    # matplotlib's own choice of folders
        config = _os.path.join(_os.environ.get("XDG_CONFIG_HOME") or _os.path.join(home, ".config"), "matplotlib")
        cache = _os.path.join(_os.environ.get("XDG_CACHE_HOME") or _os.path.join(home, ".cache"), "matplotlib")
    else:
        config = cache = _os.path.join(home, ".matplotlib")

    def usable(folder):
        try:
            _os.makedirs(folder, exist_ok=True)
            return _os.access(folder, _os.W_OK | _os.X_OK)
        except OSError:
            return False
    if usable(config) and usable(cache):
        return
    own = tempfile.mkdtemp(prefix="badminima-matplotlib-")
    atexit.register(shutil.rmtree, own, True)
    rc = _os.path.join(config, "matplotlibrc")
    if _os.path.isfile(rc):
        shutil.copy(rc, own)
    _os.environ["MPLCONFIGDIR"] = own
