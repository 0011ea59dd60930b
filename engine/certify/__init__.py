"""Proofs: strict local minima of smooth networks (ball arithmetic, Krawczyk), ReLU regression
minima (exact), certificate files, and the quality of a certified minimum (delta*, AUC, gaps)."""
