"""Cluster runs: shard status, SLURM array scripts, the Dask backend."""
