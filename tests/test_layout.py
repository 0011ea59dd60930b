"""The package layout: the engine's names and kernel codes come from one table."""
from badminima.engine.core import names


def test_kernel_codes_never_change():
    """Generated kernels and stored results use these codes: renumbering would silently change them."""
    assert names.ACTIVATIONS == {"sigmoid": 0, "relu": 1, "tanh": 2}
    assert names.LOSSES == {"xent": 0, "mse": 1}
    assert names.OPTIMIZERS == {"gd": 0, "adam": 1, "sgd": 2}
    assert names.INIT_LAWS == {"normal": 0, "uniform": 1, "glorot": 2, "he": 3}
    assert {d: names.lanes_for(d) for d in names.DTYPE_LANES} == {"float64": 32, "float32": 64}
