-- Tollgate store, version 23: stored event ids in Unicode's composed form (NFC).
--
-- Since 2026-12-04 the gateway keeps a feedback event's `event_id` in NFC, so `é` written as
-- one character or as `e` and a combining accent is one id. Events stored before kept the id
-- as the client wrote it: a repeat of a decomposed one, now composed, would not meet it and
-- would count twice. SQLite has no NFC, so the store rewrites those ids in Rust just before
-- this version is recorded (`nfc_event_ids`, in the same transaction); an id whose composed
-- form another event of the use case already holds is left as it is (both were counted).
SELECT 1;
