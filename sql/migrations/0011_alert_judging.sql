-- 0011: what the alert judging of issue 14 needs.
--  * benchmark_metadata.critical_drop_points: per-dataset size (in points) of a drop that can be
--    `critical` (null = EVAL360_ALERT_CRITICAL_POINTS, default 5).
--  * webhook_deliveries.status 'withdrawn': a regression event whose alert was resolved before its
--    quiet period ended is never sent (the row stays, with the reason, for the record).
--  * alert_recheck_queued: the worker takes the oldest queued checks first and /api/health reports
--    the age of the oldest.
alter table benchmark_metadata add column if not exists critical_drop_points double precision
  check (critical_drop_points is null or critical_drop_points > 0);

alter table webhook_deliveries drop constraint if exists webhook_deliveries_status_check;
alter table webhook_deliveries add constraint webhook_deliveries_status_check
  check (status in ('pending', 'delivered', 'failed', 'withdrawn'));

create index if not exists alert_recheck_queued on alert_recheck (queued_at);
