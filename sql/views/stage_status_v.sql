-- Recorded item states per stage (what has happened; `etl status` also counts what is pending).
CREATE OR REPLACE VIEW stage_status_v AS
SELECT stage,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'done') AS done,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'skipped') AS skipped,
       max(finished_at) AS last_finished_at
FROM stage_items
GROUP BY stage
