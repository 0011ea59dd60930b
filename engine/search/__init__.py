"""The deadlock search: optimizers over data and weights (run on blocks of candidates across threads),
canonical forms, the search run loop."""
