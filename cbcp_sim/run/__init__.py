"""Running a scenario: chunks of replicates with their own streams, jobs and backends, the arm comparisons, the
interim monitoring, the chunk store and the result. The only layer that knows about chunks and workers."""
