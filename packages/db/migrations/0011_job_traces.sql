-- The W3C traceparent of the request that enqueued a job, so the worker's span continues its
-- trace (API → job → provider → gateway). NULL when tracing is off.
ALTER TABLE jobs ADD COLUMN trace_parent text;
