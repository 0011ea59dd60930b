"""Cluster runs of a sharded run command: shard files and their status, and what both backends share
(shards); SLURM job arrays, their batch script rendered from slurm_template.sh (slurm); the Dask
backend (dask)."""
