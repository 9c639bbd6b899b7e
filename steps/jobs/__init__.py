"""Background job patterns: upload + process, fire and forget, a job with progress and its
status API, batches, scheduled cleanup, metrics, and a priority queue."""
