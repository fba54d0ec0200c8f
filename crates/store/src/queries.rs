//! One `*Queries` trait per domain. Every backend implements all of them; the gateway and the
//! admin API only ever call these traits, so a second backend (Postgres) slots in behind them and
//! runs the same tests.
//!
//! Every mutation takes the acting principal (`actor`) and writes its audit event in the same
//! transaction: a change without its audit event cannot happen.

use crate::StoreError;
use crate::model::*;
use std::future::Future;

type R<T> = Result<T, StoreError>;

/// Filters of a use-case list.
#[derive(Debug, Clone, Default)]
pub struct UseCaseFilter {
    /// Only these pods (`None`: all).
    pub pod_ids: Option<Vec<String>>,
    /// Only this stage.
    pub stage: Option<Stage>,
}

/// Filters of a key list.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Only keys of use cases in these pods (`None`: all).
    pub pod_ids: Option<Vec<String>>,
    /// Only this use case.
    pub use_case_id: Option<String>,
    /// Include revoked and expired keys.
    pub include_inactive: bool,
}

/// Changes to a user (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New display name.
    pub name: Option<String>,
    /// New org-wide role; `Some(None)` removes it.
    pub org_role: Option<Option<OrgRole>>,
    /// Disable (`true`) or enable (`false`).
    pub disabled: Option<bool>,
}

/// Changes to a use case (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct UseCasePatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New value model.
    pub value_model: Option<ValueModel>,
    /// New scores.
    pub scores: Option<Scores>,
    /// New allowed routes.
    pub routes: Option<Vec<String>>,
    /// New pilot caps.
    pub pilot_caps: Option<PilotCaps>,
    /// New rate limits.
    pub limits: Option<Limits>,
    /// New SLO (an empty one removes it).
    pub slo: Option<Slo>,
    /// Only if the use case's `updated_at` is still this: a read-merge-write (a partial value
    /// model merged into the stored one) must not overwrite a change made since it read.
    /// Otherwise [`StoreError::Conflict`](crate::StoreError::Conflict), and nothing changes.
    pub unchanged_since: Option<i64>,
}

/// A pod name as people read it (the control plane folds case and look-alike letters): two
/// pods whose names read the same are one too many.
pub type NameKey = fn(&str) -> String;

/// Pods.
pub trait PodQueries {
    /// Creates a pod; `Conflict` if the name is taken.
    fn create_pod(
        &self,
        actor: &str,
        name: &str,
        description: &str,
    ) -> impl Future<Output = R<Pod>> + Send;
    /// [`Self::create_pod`], unless another pod's name reads the same by `key`: then that pod,
    /// as `Ok(Err(pod))`. Checked inside the write, so two requests at once with look-alike
    /// names cannot both pass.
    fn create_pod_unlike(
        &self,
        actor: &str,
        name: &str,
        description: &str,
        key: NameKey,
    ) -> impl Future<Output = R<Result<Pod, Pod>>> + Send;
    /// One pod.
    fn get_pod(&self, id: &str) -> impl Future<Output = R<Pod>> + Send;
    /// Pods, optionally only `ids`, by creation order.
    fn list_pods(
        &self,
        ids: Option<&[String]>,
        page: &PageRequest,
    ) -> impl Future<Output = R<Page<Pod>>> + Send;
    /// Renames or re-describes a pod.
    fn update_pod(
        &self,
        actor: &str,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> impl Future<Output = R<Pod>> + Send;
    /// [`Self::update_pod`], unless the new name reads by `key` as another pod's does: then
    /// that pod, as `Ok(Err(pod))` (checked inside the write, as [`Self::create_pod_unlike`]).
    fn update_pod_unlike(
        &self,
        actor: &str,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        key: NameKey,
    ) -> impl Future<Output = R<Result<Pod, Pod>>> + Send;
}

/// Users and memberships.
pub trait UserQueries {
    /// Creates a user; `Conflict` if the e-mail is taken.
    fn create_user(
        &self,
        actor: &str,
        email: &str,
        name: &str,
        org_role: Option<OrgRole>,
    ) -> impl Future<Output = R<User>> + Send;
    /// One user.
    fn get_user(&self, id: &str) -> impl Future<Output = R<User>> + Send;
    /// Users, optionally only `ids`.
    fn list_users(
        &self,
        ids: Option<&[String]>,
        page: &PageRequest,
    ) -> impl Future<Output = R<Page<User>>> + Send;
    /// Changes a user's name, org role or disabled state, recording what changed (`user.update`,
    /// each changed field with its old and new value); nothing is recorded when nothing changed.
    /// Disabling a disabled user keeps the time they were first disabled.
    fn update_user(
        &self,
        actor: &str,
        id: &str,
        patch: &UserPatch,
    ) -> impl Future<Output = R<User>> + Send;
    /// Adds a member or changes their role.
    fn set_member(
        &self,
        actor: &str,
        pod_id: &str,
        user_id: &str,
        role: PodRole,
    ) -> impl Future<Output = R<Membership>> + Send;
    /// Removes a member; `NotFound` if they were not one.
    fn remove_member(
        &self,
        actor: &str,
        pod_id: &str,
        user_id: &str,
    ) -> impl Future<Output = R<()>> + Send;
    /// Members of a pod.
    fn list_members(&self, pod_id: &str) -> impl Future<Output = R<Vec<Membership>>> + Send;
    /// A page of a pod's members, by user id: those after `req.after`, at most `req.size()`.
    fn list_members_page(
        &self,
        pod_id: &str,
        req: &PageRequest,
    ) -> impl Future<Output = R<Page<Membership>>> + Send;
    /// Pods a user belongs to.
    fn memberships_of(&self, user_id: &str) -> impl Future<Output = R<Vec<Membership>>> + Send;
}

/// Use cases and their stages.
pub trait UseCaseQueries {
    /// Creates a use case in stage `proposed`.
    #[allow(clippy::too_many_arguments)]
    fn create_use_case(
        &self,
        actor: &str,
        pod_id: &str,
        name: &str,
        description: &str,
        value_model: &ValueModel,
        scores: &Scores,
        routes: &[String],
        pilot_caps: &PilotCaps,
        limits: &Limits,
    ) -> impl Future<Output = R<UseCase>> + Send;
    /// One use case.
    fn get_use_case(&self, id: &str) -> impl Future<Output = R<UseCase>> + Send;
    /// Use cases by filter.
    fn list_use_cases(
        &self,
        filter: &UseCaseFilter,
        page: &PageRequest,
    ) -> impl Future<Output = R<Page<UseCase>>> + Send;
    /// Changes fields.
    fn update_use_case(
        &self,
        actor: &str,
        id: &str,
        patch: &UseCasePatch,
    ) -> impl Future<Output = R<UseCase>> + Send;
    /// Moves to another stage, recording who, when and why; `Invalid` for a transition that is not
    /// allowed.
    fn change_stage(
        &self,
        actor: &str,
        id: &str,
        to: Stage,
        reason: &str,
    ) -> impl Future<Output = R<(UseCase, StageChange)>> + Send;
    /// A page of the stage history of a use case, oldest first (by time, then id): the changes
    /// after the change `req.after` (`Invalid` when that is not one of this use case's), at most
    /// `req.size()`.
    fn list_stage_changes(
        &self,
        id: &str,
        req: &PageRequest,
    ) -> impl Future<Output = R<Page<StageChange>>> + Send;
}

/// Virtual keys and personal tokens.
pub trait KeyQueries {
    /// Stores a new key (its hash only).
    fn create_key(&self, actor: &str, key: &ApiKey) -> impl Future<Output = R<ApiKey>> + Send;
    /// One key.
    fn get_key(&self, id: &str) -> impl Future<Output = R<ApiKey>> + Send;
    /// Keys by filter.
    fn list_keys(
        &self,
        filter: &KeyFilter,
        page: &PageRequest,
    ) -> impl Future<Output = R<Page<ApiKey>>> + Send;
    /// Revokes a key at `at` (Unix ms).
    fn revoke_key(&self, actor: &str, id: &str, at: i64) -> impl Future<Output = R<ApiKey>> + Send;
    /// Stores `new` and makes `old_id` stop working at `old_until` (the grace period).
    fn rotate_key(
        &self,
        actor: &str,
        old_id: &str,
        new: &ApiKey,
        old_until: i64,
    ) -> impl Future<Output = R<(ApiKey, ApiKey)>> + Send;
    /// Every key that may still authenticate at `now`, with its use case (the auth snapshot).
    fn active_keys(&self, now: i64) -> impl Future<Output = R<Vec<(ApiKey, UseCase)>>> + Send;
    /// Stores a personal admin token — unless its user already holds `max_active` tokens that
    /// are neither revoked nor expired at its creation (`Conflict`); counted in the same
    /// transaction, so concurrent requests cannot pass the bound.
    fn create_token(
        &self,
        actor: &str,
        token: &UserToken,
        max_active: usize,
    ) -> impl Future<Output = R<UserToken>> + Send;
    /// Finds an active personal token by hash.
    fn token_by_hash(
        &self,
        hash: &str,
        now: i64,
    ) -> impl Future<Output = R<Option<UserToken>>> + Send;
    /// A user's personal tokens, revoked and expired ones too, by id (creation order).
    fn list_tokens(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = R<Page<UserToken>>> + Send;
    /// Revokes `user_id`'s token `token_id` at `at` (Unix ms); `NotFound` unless that user has
    /// that token. Revoking a revoked token changes nothing and records nothing.
    fn revoke_token(
        &self,
        actor: &str,
        user_id: &str,
        token_id: &str,
        at: i64,
    ) -> impl Future<Output = R<UserToken>> + Send;
}

/// SLO windows.
pub trait SloQueries {
    /// Adds closed windows: a window already stored (another instance served it too) gets these
    /// counts added and takes these targets.
    fn add_slo_windows(&self, windows: &[SloWindow]) -> impl Future<Output = R<()>> + Send;
    /// Stores windows with exactly these counts, replacing a stored window's (for a writer that
    /// may write the same windows twice: the demo's history, completed after an interrupted
    /// start). In one transaction.
    fn set_slo_windows(&self, windows: &[SloWindow]) -> impl Future<Output = R<()>> + Send;
    /// The windows of `use_case_id` starting in `[from_ms, to_ms)`, oldest first.
    fn slo_windows(
        &self,
        use_case_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = R<Vec<SloWindow>>> + Send;
}

/// The rollups the KPIs read, summed over a scope and a window.
pub trait KpiQueries {
    /// What the rollups say of `scope` over `[from_ms, to_ms)` (whole hours, days and minutes
    /// touched by the window).
    fn kpi_data(
        &self,
        scope: &KpiScope,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = R<KpiData>> + Send;
    /// What the stage history and the evaluation and fairness runs say of each use case of
    /// `scope`, in a fixed number of queries however many use cases it has: each use case's
    /// first entry into each stage; its latest finished evaluation run started in
    /// `[from_ms, to_ms)` with that run's champion; its finished fairness runs started in the
    /// window and the gaps they flagged.
    fn use_case_evidence(
        &self,
        scope: &KpiScope,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = R<UseCaseEvidence>> + Send;
}

/// Outcome and feedback events, and what they are checked against.
pub trait OutcomeQueries {
    /// Stores events and adds them to their hourly rollups, in one transaction; an event whose
    /// `event_id` its use case already has (stored before or earlier in the batch), or whose
    /// request or session has had [`MAX_EVENTS_PER_REQUEST`] / [`MAX_EVENTS_PER_SESSION`]
    /// events already, or that names neither, is skipped. Each stored event updates its subject's
    /// [`OutcomeState`](crate::OutcomeState), and the rollups take back what the subject
    /// counted for and add what it counts for now. A session speaks for its requests (an
    /// event about a request carries the request's session in `session_hash`): each field the
    /// session's events report is left out of its requests' counts, so one answer is never
    /// counted both on its own and as part of its session. Returns how many were stored.
    fn insert_outcomes(&self, events: &[OutcomeEvent]) -> impl Future<Output = R<u64>> + Send;
    /// When use case `use_case_id` first had an answered (2xx) production request whose
    /// `x-request-id` is `request_id` (Unix ms), and that request's session pseudonym, if it
    /// has had one.
    fn request_first_at(
        &self,
        use_case_id: &str,
        request_id: &str,
    ) -> impl Future<Output = R<Option<(i64, Option<String>)>>> + Send;
    /// When use case `use_case_id` first had an answered (2xx) production request of the
    /// session with this pseudonym.
    fn session_first_at(
        &self,
        use_case_id: &str,
        session_hash: &str,
    ) -> impl Future<Output = R<Option<i64>>> + Send;
    /// The rollups of hours `from_hour..to_hour` (Unix hours), by hour then use case.
    fn outcome_rollups(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> impl Future<Output = R<Vec<OutcomeRollup>>> + Send;
}

/// The audit trail and settings.
pub trait AuditQueries {
    /// Audit events, newest last, after sequence `after`.
    fn list_audit(&self, after: i64, limit: u32)
    -> impl Future<Output = R<Vec<AuditEvent>>> + Send;
    /// Records an event that has no other row (a login failure, say).
    fn append_audit(
        &self,
        actor: &str,
        action: &str,
        object_type: &str,
        object_id: &str,
        details: serde_json::Value,
    ) -> impl Future<Output = R<()>> + Send;
    /// A setting.
    fn get_setting(&self, name: &str) -> impl Future<Output = R<Option<String>>> + Send;
    /// Sets a setting only if it is absent; returns the value now stored.
    fn init_setting(&self, name: &str, value: &str) -> impl Future<Output = R<String>> + Send;
}

/// Guard policies: versioned documents per use case and the org default (scope `""`).
pub trait PolicyQueries {
    /// Writes the next version of `scope_id`'s policy (`None` removes a use case's own policy)
    /// and its audit event, in one transaction; returns the version written.
    fn put_policy(
        &self,
        actor: &str,
        scope_id: &str,
        document: Option<&str>,
        note: &str,
        at: i64,
    ) -> impl Future<Output = R<PolicyVersion>> + Send;
    /// The newest version of every scope that has a document in force (the data plane's snapshot).
    fn current_policies(&self) -> impl Future<Output = R<Vec<PolicyVersion>>> + Send;
    /// A page of `scope_id`'s policy versions, oldest first: those after version `after`, at
    /// most `limit` (0: the default page size).
    fn policy_versions_page(
        &self,
        scope_id: &str,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = R<Page<PolicyVersion>>> + Send;
    /// The newest version of `scope_id`'s policy (a removal too), if it has any: one row, however
    /// long the history.
    fn latest_policy(
        &self,
        scope_id: &str,
    ) -> impl Future<Output = R<Option<PolicyVersion>>> + Send;
}

/// The tamper-evident audit chain (entries are appended by the writes they cover).
pub trait ChainQueries {
    /// The last entry's seq and hash (hex); `(0, zeros)` when empty.
    fn chain_head(&self) -> impl Future<Output = R<(i64, String)>> + Send;
    /// Up to `limit` entries from `from_seq` on, each with its content rebuilt from its row.
    fn chain_page(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> impl Future<Output = R<Vec<ChainRow>>> + Send;
    /// The hashes (hex) of entries `from_seq..=to_seq`.
    fn chain_hashes(
        &self,
        from_seq: i64,
        to_seq: i64,
    ) -> impl Future<Output = R<Vec<String>>> + Send;
    /// Under the writer's lock: `make` gets the last checkpoint, the chain's head (seq, hash) and
    /// the hashes of the entries since that checkpoint, and gives the checkpoint to store (or
    /// none).
    fn write_checkpoint(
        &self,
        make: impl FnOnce(
            Option<&CheckpointRow>,
            (i64, tollgate_audit::Hash),
            &[tollgate_audit::Hash],
        ) -> Option<CheckpointRow>
        + Send,
    ) -> impl Future<Output = R<Option<CheckpointRow>>> + Send;
    /// Every checkpoint, oldest first.
    fn checkpoints(&self) -> impl Future<Output = R<Vec<CheckpointRow>>> + Send;
    /// A request record or audit event no chain entry stands for, if any: (kind, reference).
    fn unchained_row(&self) -> impl Future<Output = R<Option<(String, String)>>> + Send;
    /// A stored policy version that no `policy.set` / `policy.remove` audit event set as it is
    /// (the same scope, version and document) — edited in the database: its scope (empty for
    /// the org default) and version. Policies are enforced from their table, and the chain
    /// covers the events, not the table.
    fn unaudited_policy(&self) -> impl Future<Output = R<Option<(String, i64)>>> + Send;
    /// Records after `after` (by id) with an end user's id or a sealed payload, at most `limit`,
    /// with what verification checks of them beyond the chain.
    fn record_sides(
        &self,
        after: &str,
        limit: u32,
    ) -> impl Future<Output = R<Vec<RecordSide>>> + Send;
    /// The seq of the chain entry of request record `id`.
    fn chain_seq_of_record(&self, id: &str) -> impl Future<Output = R<Option<i64>>> + Send;
}

/// Sealed payloads and their data keys.
pub trait PayloadQueries {
    /// A record's stored payload.
    fn get_payload(&self, record_id: &str)
    -> impl Future<Output = R<Option<StoredPayload>>> + Send;
    /// A data key (wrapped, or destroyed).
    fn get_data_key(&self, id: &str) -> impl Future<Output = R<Option<StoredDataKey>>> + Send;
    /// Destroys every data key whose day is before `today` (days since 1970-01-01 UTC), with an
    /// audit event; how many.
    fn destroy_expired_keys(&self, today: i64, at: i64) -> impl Future<Output = R<u64>> + Send;
    /// Destroys an end user's data keys and removes their id from records (their pseudonym
    /// stays), with an audit event; (keys, records).
    fn erase_end_user(
        &self,
        actor: &str,
        end_user_hash: &str,
        at: i64,
    ) -> impl Future<Output = R<(u64, u64)>> + Send;
    /// Re-wraps every live data key with `rewrap` (id, wrapped → wrapped under the new master
    /// key), all or nothing, with an audit event; (re-wrapped, failed).
    fn rotate_master_key(
        &self,
        actor: &str,
        new_kek_id: &str,
        rewrap: impl Fn(&str, &[u8]) -> Option<Vec<u8>> + Send + Sync,
    ) -> impl Future<Output = R<(u64, u64)>> + Send;
}

/// The request ledger.
pub trait LedgerQueries {
    /// Appends records and folds them into the hourly rollups, in one transaction.
    fn insert_records(&self, records: &[RequestRecord]) -> impl Future<Output = R<()>> + Send;
    /// Like [`insert_records`](Self::insert_records), but records whose id is already stored, or
    /// that repeat an earlier record of `records`, are skipped (and not folded again); returns how
    /// many were new. For replaying records that may
    /// have been written before (the ledger's spill file).
    fn insert_records_once(&self, records: &[RequestRecord])
    -> impl Future<Output = R<u64>> + Send;
    /// Number of records with `from <= at < to` (Unix ms).
    fn count_records(&self, from: i64, to: i64) -> impl Future<Output = R<u64>> + Send;
    /// Totals over raw records with `from <= at < to`.
    fn record_totals(&self, from: i64, to: i64) -> impl Future<Output = R<Totals>> + Send;
    /// Totals over the hourly rollups of hours `from_hour <= hour < to_hour` (hours since the epoch).
    fn rollup_totals(&self, from_hour: i64, to_hour: i64)
    -> impl Future<Output = R<Totals>> + Send;
    /// Spend grouped by `by` (`pod`, `use_case`, `key`, `route`, `model`, `day`) over the hourly
    /// rollups of hours `from_hour <= hour < to_hour`, optionally only `pod_ids`; most expensive
    /// first. For `day` the group is the day number since the epoch (UTC).
    fn spend_by(
        &self,
        by: &str,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> impl Future<Output = R<Vec<(String, Totals)>>> + Send;
    /// The last hour (since the epoch) each key was used in, from the rollups.
    fn keys_last_used(&self) -> impl Future<Output = R<Vec<(String, i64)>>> + Send;
    /// Records with `from <= at < to`, oldest first, at most `limit`.
    fn list_records(
        &self,
        from: i64,
        to: i64,
        limit: u32,
    ) -> impl Future<Output = R<Vec<RequestRecord>>> + Send;
    /// Stores price points not stored yet (a point's prices never change under its id).
    fn save_price_points(&self, points: &[PricePointRow]) -> impl Future<Output = R<()>> + Send;
    /// The FOCUS rollups of hours `from_hour <= hour < to_hour`, optionally only `pod_ids`, with
    /// their price points and names; ordered by hour, pod, use case, route, price point.
    fn focus_rollups(
        &self,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> impl Future<Output = R<Vec<FocusRollup>>> + Send;
    /// What a FOCUS export of these hours and pods holds — its rows, how many of them are
    /// unpriced, and its billed cost — and the spend of the hourly rollups for the same hours and
    /// pods, read in one statement (one snapshot), for the export's headers and reconciliation.
    fn focus_summary(
        &self,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> impl Future<Output = R<FocusCounts>> + Send;
    /// Spend per (use case, model) over the hourly rollups, optionally only `pod_ids`.
    fn spend_by_use_case_and_model(
        &self,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> impl Future<Output = R<Vec<(String, String, Totals)>>> + Send;
    /// Identical successful requests per use case over records with `from <= at < to`.
    fn duplicate_prompts(
        &self,
        from: i64,
        to: i64,
        pod_ids: Option<&[String]>,
    ) -> impl Future<Output = R<Vec<DuplicatePrompts>>> + Send;
}

/// Budgets.
pub trait BudgetQueries {
    /// Stores a budget.
    fn create_budget(&self, actor: &str, b: &Budget) -> impl Future<Output = R<Budget>> + Send;
    /// Every budget.
    fn list_budgets(&self) -> impl Future<Output = R<Vec<Budget>>> + Send;
    /// One budget, or `NotFound`.
    fn get_budget(&self, id: &str) -> impl Future<Output = R<Budget>> + Send;
    /// Deletes a budget; `NotFound` if there is none.
    fn delete_budget(&self, actor: &str, id: &str) -> impl Future<Output = R<()>> + Send;
    /// Cost (nano-USD) recorded since `from` (Unix ms) for a scope (`key`, `use_case`, `pod`, `org`):
    /// whole hours from the rollups, the first partial hour from the records.
    fn spend_since(
        &self,
        scope: &str,
        scope_id: &str,
        from: i64,
    ) -> impl Future<Output = R<u64>> + Send;
}

/// Evaluation suites (versioned per use case and name) and their runs.
pub trait EvalQueries {
    /// Stores `document` as the next version of suite `name` of `use_case_id` — unless the latest
    /// version has the same fingerprint, which is returned as is. `true` when a version was
    /// added (audited as `suite.version`).
    fn put_suite(
        &self,
        actor: &str,
        use_case_id: &str,
        name: &str,
        fingerprint: &str,
        document: &serde_json::Value,
        at: i64,
    ) -> impl Future<Output = R<(SuiteVersion, bool)>> + Send;
    /// Version `version` of a suite, or its latest.
    fn get_suite(
        &self,
        use_case_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> impl Future<Output = R<SuiteVersion>> + Send;
    /// The latest version of every suite of a use case, by name.
    fn list_suites(&self, use_case_id: &str) -> impl Future<Output = R<Vec<SuiteVersion>>> + Send;
    /// A page of them: the suites named after `req.after`, at most `req.size()`.
    fn list_suites_page(
        &self,
        use_case_id: &str,
        req: &PageRequest,
    ) -> impl Future<Output = R<Page<SuiteVersion>>> + Send;
    /// Records a run that starts (audited as `eval.start`).
    fn create_run(&self, actor: &str, run: &EvalRun) -> impl Future<Output = R<()>> + Send;
    /// Updates a running run's counts.
    fn run_progress(
        &self,
        id: &str,
        done: u64,
        passed: u64,
        failed: u64,
        errors: u64,
    ) -> impl Future<Output = R<()>> + Send;
    /// Records a run's end: its totals and report, or why it failed (audited as `eval.finish`).
    fn finish_run(&self, run: &EvalRun) -> impl Future<Output = R<()>> + Send;
    /// One run.
    fn get_run(&self, id: &str) -> impl Future<Output = R<EvalRun>> + Send;
    /// A use case's runs, newest first (of one suite, if given; only those older than run
    /// `before`, if given), without their reports; `NotFound` when `before` is not one of the
    /// use case's runs.
    fn list_runs(
        &self,
        use_case_id: &str,
        suite: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = R<Vec<EvalRun>>> + Send;
    /// Marks runs still `running` as `failed` (a server that stopped mid-run) and revokes the
    /// evaluation keys still active (their runs are over; audited as `key.revoke` by `system`);
    /// returns how many runs.
    fn fail_interrupted_runs(&self, at: i64) -> impl Future<Output = R<u64>> + Send;
}

/// Fairness probe runs.
pub trait FairnessQueries {
    /// Records a run that starts (audited as `fairness.start`).
    fn create_fairness_run(
        &self,
        actor: &str,
        run: &FairnessRun,
    ) -> impl Future<Output = R<()>> + Send;
    /// Records its end (audited as `fairness.finish`, with whether it flagged a gap).
    fn finish_fairness_run(&self, run: &FairnessRun) -> impl Future<Output = R<()>> + Send;
    /// One run.
    fn get_fairness_run(&self, id: &str) -> impl Future<Output = R<FairnessRun>> + Send;
    /// A use case's runs, newest first (only those older than run `before`, if given), without
    /// their reports; `NotFound` when `before` is not one of the use case's runs.
    fn list_fairness_runs(
        &self,
        use_case_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = R<Vec<FairnessRun>>> + Send;
}

/// Patterns: versioned prompt templates, their labels.
pub trait PatternQueries {
    /// Creates a pattern owned by `pod_id` (audited as `pattern.create`).
    fn create_pattern(
        &self,
        actor: &str,
        name: &str,
        pod_id: &str,
        description: &str,
        at: i64,
    ) -> impl Future<Output = R<Pattern>> + Send;
    /// Adds the next version (audited as `pattern.version`).
    fn add_pattern_version(
        &self,
        actor: &str,
        name: &str,
        messages: &serde_json::Value,
        schema: &serde_json::Value,
        note: &str,
        at: i64,
    ) -> impl Future<Output = R<PatternVersion>> + Send;
    /// Points `label` at `version` (audited as `pattern.label`, with the version it pointed at).
    fn move_pattern_label(
        &self,
        actor: &str,
        name: &str,
        label: &str,
        version: i64,
        at: i64,
    ) -> impl Future<Output = R<()>> + Send;
    /// One pattern with its versions and labels.
    fn get_pattern(&self, name: &str) -> impl Future<Output = R<Pattern>> + Send;
    /// Every pattern with its versions and labels (what the data plane's snapshot holds).
    fn list_patterns(&self) -> impl Future<Output = R<Vec<Pattern>>> + Send;
    /// A page of the library, by name: the patterns named after `req.after`, at most
    /// `req.size()`, each with its versions and labels.
    fn list_patterns_page(
        &self,
        req: &PageRequest,
    ) -> impl Future<Output = R<Page<Pattern>>> + Send;
}

/// Scheduled evaluation runs.
pub trait ScheduleQueries {
    /// Sets (or replaces) the schedule of a use case's suite (audited as `eval.schedule`).
    fn put_schedule(&self, actor: &str, s: &EvalSchedule) -> impl Future<Output = R<()>> + Send;
    /// Removes one (audited as `eval.unschedule`); `NotFound` when there is none.
    fn delete_schedule(
        &self,
        actor: &str,
        use_case_id: &str,
        suite: &str,
    ) -> impl Future<Output = R<()>> + Send;
    /// A page of a use case's schedules, by suite name: those named after `req.after`, at most
    /// `req.size()`.
    fn list_schedules(
        &self,
        use_case_id: &str,
        req: &PageRequest,
    ) -> impl Future<Output = R<Page<EvalSchedule>>> + Send;
    /// A use case's schedule of `suite`, if it has one.
    fn get_schedule(
        &self,
        use_case_id: &str,
        suite: &str,
    ) -> impl Future<Output = R<Option<EvalSchedule>>> + Send;
    /// Every schedule due at `now`, moving each one's `next_at` on by its cadence in the same
    /// transaction (so two instances do not both start it).
    fn take_due_schedules(&self, now: i64) -> impl Future<Output = R<Vec<EvalSchedule>>> + Send;
}

/// Stage gates: the organization's gate settings, promotion requests and their approvals, and
/// the stage changes they lead to.
pub trait GateQueries {
    /// Sets a setting (audited as `action`, with `details`).
    fn put_setting(
        &self,
        actor: &str,
        name: &str,
        value: &str,
        action: &str,
        details: serde_json::Value,
    ) -> impl Future<Output = R<()>> + Send;
    /// Opens a request (audited as `use_case.promotion_request`); `Conflict` when one is open,
    /// `Invalid` when the use case is no longer in `r.from`.
    fn create_promotion_request(&self, r: &PromotionRequest) -> impl Future<Output = R<()>> + Send;
    /// The use case's open request, if any.
    fn open_promotion_request(
        &self,
        use_case_id: &str,
    ) -> impl Future<Output = R<Option<PromotionRequest>>> + Send;
    /// Records an approval (audited as `use_case.approve`); `Conflict` when its person or role
    /// has signed the request already, `Invalid` when the request is closed or the use case has
    /// left the request's `from` stage.
    fn add_approval(&self, a: &Approval) -> impl Future<Output = R<()>> + Send;
    /// A request's approvals, oldest first.
    fn list_approvals(&self, request_id: &str) -> impl Future<Output = R<Vec<Approval>>> + Send;
    /// Moves a use case from `from` to `to` (`Invalid` when it is no longer in `from`, the move
    /// is not allowed, or `request_id` — the request whose approvals the gate counted — is no
    /// longer open), closing its open request, with the gate's checklist in the audit event
    /// (`use_case.stage`); with `overridden`, the unmet lines a platform admin overrode, kept
    /// on the use case.
    #[allow(clippy::too_many_arguments)]
    fn change_stage_gated(
        &self,
        actor: &str,
        id: &str,
        from: Stage,
        to: Stage,
        reason: &str,
        request_id: Option<&str>,
        checklist: serde_json::Value,
        overridden: Option<Vec<String>>,
    ) -> impl Future<Output = R<(UseCase, StageChange)>> + Send;
    /// Closes an open request without a move (audited as `use_case.promotion_withdraw`);
    /// `NotFound` when it is not open.
    fn withdraw_promotion_request(
        &self,
        actor: &str,
        r: &PromotionRequest,
    ) -> impl Future<Output = R<()>> + Send;
}
