"""The paper: Table 1 (protocol, grid, runs, counts) and every checkable claim (verify)."""
