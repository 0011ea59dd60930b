"""Shared fixtures: small configs and datasets for the engine tests."""
import numpy as np
import pytest

from badminima.engine.config import InitSpec, TrainConfig
from badminima.engine.datasets import load_dataset


def make_cfg(ds, **kw):
    """A validated TrainConfig for dataset ds with overrides."""
    base = dict(dataset=ds.name, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=2,
                networks=64, steps=100)
    base.update(kw)
    if isinstance(base.get("init"), str):
        base["init"] = InitSpec.parse(base["init"])
    return TrainConfig(**base).validate()


@pytest.fixture(scope="session")
def xor():
    return load_dataset("xor")


@pytest.fixture(scope="session")
def paper10():
    return load_dataset("paper10")


@pytest.fixture(scope="session")
def relu_d1():
    return load_dataset("relu_d1")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
