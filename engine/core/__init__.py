"""What a kernel may import: the exact model, counter-based random starts, the fast exp, the
atomic work counter, stack alignment, a task's work arrays, the parameter layout, outcome codes, the end-state
classification, the finisher of one network (flow), the in-place symmetric eigensolver (eigen) and the
table of names (activations, losses, optimizers, dtypes); and beside them the compile cache (jit) and
say(), the package's one best-effort line to stderr."""
