"""The deadlock search: optimizers over data and weights, canonical forms, the search run loop."""
