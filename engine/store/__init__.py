"""Result files: the HDF5 schema and shard arithmetic (schema), the reader that joins shards (read), the
crash-safe streaming writer (write), merging shards and comparing files (merge).  docs/store.md has the
format.  The names callers use are re-exported here; each is defined in one of those modules."""
from badminima.engine.store.merge import check_merge_output, diff_files, merge
from badminima.engine.store.read import (Results, expand_paths, open_h5, open_results, read_meta, read_rows, show,
                                         without_leftover_parts)
from badminima.engine.store.schema import (BASE_FIELDS, FIELDS, FORMAT, OPTIONAL_FIELDS, PROVENANCE_ATTRS,
                                           SCHEMA_VERSION, TRAINING_FIELDS, NoResultFile, NotMergeable, StoreError, canonical_json, config_tag, diff_keys,
                                           count_outcomes, normalize, outcome_codes, parse_shard, shard_range)
from badminima.engine.store.write import RunComplete, RunWriter

__all__ = ["StoreError", "NoResultFile", "NotMergeable", "Results", "open_results", "show", "RunWriter", "RunComplete", "merge", "diff_files",
           "check_merge_output", "parse_shard", "shard_range", "FORMAT", "SCHEMA_VERSION", "FIELDS",
           "OPTIONAL_FIELDS", "TRAINING_FIELDS", "BASE_FIELDS", "PROVENANCE_ATTRS", "canonical_json", "config_tag", "normalize",
           "diff_keys", "expand_paths", "open_h5", "read_meta", "read_rows", "outcome_codes", "count_outcomes",
           "without_leftover_parts"]
