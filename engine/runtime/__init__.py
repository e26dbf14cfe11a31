"""The runtime stage: a site served by many processes on many machines.

- `context`: one process's current configuration and record service, following the version
  the fleet applied (`crm migrate` records it in `crm_config`);
- `queue`: the job queue, on Dramatiq (Redis in production, in-process when there is none);
- `jobs` and `runner`: what each background job does, and how it runs (configuration version,
  failures kept for the admin, metrics);
- `scheduler`: enqueues due schedule ticks and sweeps for work whose job was lost;
- `worker` and `embedded`: the processes that consume the queue (`crm worker`, or threads of
  `crm serve`);
- `metrics` and `logs`: Prometheus metrics and one log format for every process.

Exactly-once effects come from the database, not the queue: every job claims its work with a
lease there (engine/storage/leases.py) and records its result with the claim checked, so a
job delivered twice, or run by a worker that dies halfway, never does its work twice.
"""
