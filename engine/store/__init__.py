"""Result files: the HDF5 schema and shard arithmetic, the reader (shards joined), the crash-safe
writer, merge."""
