"""The GPU backend: one CUDA thread per network through numba-cuda, the same runs as the CPU kernels.

codegen renders one kernel per variant from the CPU kernels' own line generators; launch moves a chunk
of networks to the device and back; exact runs the end-state classification and the finisher (the
CPU's own per-network functions) in one thread per network.  Nothing here imports numba.cuda until a kernel is needed, so the
package works without numba-cuda; `unavailable()` says why --device cuda cannot run.  Tests and
development run the kernels under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1); docs/gpu.md.
"""
