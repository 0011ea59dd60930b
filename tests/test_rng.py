"""Philox4x32-10 against the Random123 known-answer vectors, and the derived draws' basic laws."""
import numpy as np

from badminima.engine.core.rng import normal_at, philox4x32, uniform_at


def _u(*xs):
    return tuple(np.uint64(x) for x in xs)


def test_philox_known_answers():
    assert philox4x32(*_u(0, 0, 0, 0, 0, 0)) == _u(0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    f = 0xFFFFFFFF
    assert philox4x32(*_u(f, f, f, f, f, f)) == _u(0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    assert philox4x32(*_u(0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0)) == \
        _u(0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


def test_draws_are_pure_functions_and_well_distributed():
    z = np.array([normal_at(7, i, 0, k) for i in range(2000) for k in range(5)])
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    assert normal_at(7, 3, 0, 4) == normal_at(7, 3, 0, 4)
    assert normal_at(7, 3, 0, 4) != normal_at(8, 3, 0, 4)
    u = np.array([uniform_at(1, i, 1, k) for i in range(3000) for k in range(3)])
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02


def test_shuffle_epoch_is_fisher_yates_on_the_sgd_stream():
    """shuffle_epoch is Fisher-Yates on uniform_at(seed, index, STREAM_SGD, epoch * N + k), position by
    position."""
    from badminima.engine.core.rng import STREAM_SGD, shuffle_epoch
    for N in (1, 2, 3, 4, 7, 10):
        for index, epoch in ((0, 0), (5, 1), (123, 7), (2 ** 40, 3)):
            want = list(range(N))
            for k in range(N - 1, 0, -1):
                j = int(uniform_at(9, index, STREAM_SGD, epoch * N + k) * (k + 1))
                want[k], want[j] = want[j], want[k]
            got = np.zeros(N, np.int64)
            shuffle_epoch(9, index, epoch, got)
            assert got.tolist() == want, (N, index, epoch)


def test_shuffle_epochs_equals_shuffle_epoch_row_by_row():
    """The lane-vectorized shuffle (SGD kernels) gives each network the permutation shuffle_epoch gives it."""
    from badminima.engine.core.rng import shuffle_epoch, shuffle_epochs
    rng = np.random.default_rng(0)
    for N in (1, 3, 4, 9):
        index = rng.integers(0, 2 ** 40, 37)
        index[5] = -1                                  # an empty lane: left in identity order
        epoch = rng.integers(0, 10 ** 6, 37)
        perm = np.zeros((37, N), np.int64)
        shuffle_epochs(np.uint64(3), index, epoch, perm, np.zeros(37))
        for l in range(37):
            want = np.zeros(N, np.int64)
            if index[l] >= 0:
                shuffle_epoch(np.uint64(3), index[l], epoch[l], want)
            else:
                want = np.arange(N)
            assert perm[l].tolist() == want.tolist(), (N, l)
