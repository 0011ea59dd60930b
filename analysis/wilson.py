"""Wilson score interval for a binomial proportion (95%)."""
from __future__ import annotations

import math

Z95 = 1.959963984540054     # two-sided 95% normal quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (lo, hi) for k successes in n trials; (0, 1) if n == 0.

    centre = (k + z^2/2) / (n + z^2),  half = z sqrt(k (n - k) / n + z^2 / 4) / (n + z^2).
    The ends are exact 0 and 1 when k = 0 and k = n.
    """
    k, n = int(k), int(n)
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z2 = z * z
    centre = (k + z2 / 2.0) / (n + z2)
    half = z * math.sqrt(k * (n - k) / n + z2 / 4.0) / (n + z2)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


__all__ = ["wilson", "Z95"]
