-- Tollgate store, version 3: rate limits (requests and tokens per minute, concurrent requests) on
-- keys and use cases, as JSON objects; '{}' means no limit.
ALTER TABLE api_keys ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE use_cases ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
