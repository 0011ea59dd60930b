"""Generated SIMD training kernels: one module per (d, h, activation, loss, optimizer, dtype)."""
