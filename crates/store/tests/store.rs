//! The store's contract, run against the SQLite backend (the Postgres backend will run the same).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_store::*;

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-store-{name}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    dir.join("tollgate.db")
}

/// The data directory and the database files are private to the server's user: created 0700 and
/// 0600, and tightened at the next open when someone loosened them.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_db("perms");
    let dir = path.parent().unwrap().to_path_buf();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let files = |p: &std::path::Path| {
        ["", "-wal", "-shm"].map(|s| {
            let mut f = p.as_os_str().to_owned();
            f.push(s);
            std::path::PathBuf::from(f)
        })
    };
    let store = Store::open(&path).await.unwrap();
    store.create_pod("a", "p", "").await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    for f in files(&path) {
        assert!(f.exists(), "{}", f.display());
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    store.close().await;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in files(&path).iter().filter(|f| f.exists()) {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = Store::open(&path).await.unwrap();
    assert_eq!(mode(&dir), 0o700, "tightened at open");
    for f in files(&path).iter().filter(|f| f.exists()) {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn key(id_uc: &str, hash: &str) -> ApiKey {
    ApiKey {
        id: new_id("key"),
        use_case_id: id_uc.into(),
        user_id: None,
        name: "k".into(),
        prefix: "tg_abc".into(),
        hash: hash.into(),
        scopes: None,
        expires_at: None,
        revoked_at: None,
        replaced_by: None,
        limits: Limits::default(),
        created_at: now_ms(),
        created_by: "admin".into(),
        evaluation: false,
    }
}

#[tokio::test]
async fn pods_users_memberships() {
    let s = Store::open(&temp_db("org")).await.unwrap();
    let pod = s.create_pod("admin", "finance", "Money").await.unwrap();
    assert!(pod.id.starts_with("pod_"));
    assert!(
        matches!(s.create_pod("admin", "finance", "").await, Err(StoreError::Conflict(m)) if m.contains("finance"))
    );
    let updated = s
        .update_pod("admin", &pod.id, None, Some("Money matters"))
        .await
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str()),
        ("finance", "Money matters")
    );
    assert!(matches!(
        s.update_pod("admin", "pod_nope", Some("x"), None).await,
        Err(StoreError::NotFound(_))
    ));

    let u = s
        .create_user("admin", "ana@example.com", "Ana", None)
        .await
        .unwrap();
    assert!(matches!(
        s.create_user("admin", "ana@example.com", "Ana 2", None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    s.set_member("admin", &pod.id, &u.id, PodRole::Builder)
        .await
        .unwrap();
    s.set_member("admin", &pod.id, &u.id, PodRole::Lead)
        .await
        .unwrap();
    let members = s.list_members(&pod.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, PodRole::Lead);
    assert_eq!(s.memberships_of(&u.id).await.unwrap().len(), 1);
    assert!(matches!(
        s.set_member("admin", "pod_nope", &u.id, PodRole::Viewer)
            .await,
        Err(StoreError::Invalid(_))
    ));
    s.remove_member("admin", &pod.id, &u.id).await.unwrap();
    assert!(matches!(
        s.remove_member("admin", &pod.id, &u.id).await,
        Err(StoreError::NotFound(_))
    ));

    // Pagination: 5 pods, pages of 2.
    for i in 0..4 {
        s.create_pod("admin", &format!("p{i}"), "").await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_pods(
                None,
                &PageRequest {
                    after: after.clone(),
                    limit: 2,
                },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|p| p.name));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let only = s
        .list_pods(Some(std::slice::from_ref(&pod.id)), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(only.items.len(), 1);
}

#[tokio::test]
async fn use_cases_stages_and_audit() {
    let s = Store::open(&temp_db("uc")).await.unwrap();
    let pod = s.create_pod("admin", "hr", "").await.unwrap();
    let uc = s
        .create_use_case(
            "usr_1",
            &pod.id,
            "leave-bot",
            "Answers leave questions",
            &ValueModel::default(),
            &Scores::default(),
            &["chat".into()],
            &PilotCaps::default(),
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(uc.stage, Stage::Proposed);
    assert!(matches!(
        s.create_use_case(
            "admin",
            &pod.id,
            "leave-bot",
            "",
            &ValueModel::default(),
            &Scores::default(),
            &[],
            &PilotCaps::default(),
            &Limits::default()
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.change_stage("admin", &uc.id, Stage::Production, "skip")
            .await,
        Err(StoreError::Invalid(_))
    ));
    let (uc2, change) = s
        .change_stage("usr_1", &uc.id, Stage::Pilot, "ready for a pilot")
        .await
        .unwrap();
    assert_eq!(
        (uc2.stage, change.from, change.to),
        (Stage::Pilot, Stage::Proposed, Stage::Pilot)
    );
    let history = s
        .list_stage_changes(&uc.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].actor.as_str(), history[0].reason.as_str()),
        ("usr_1", "ready for a pilot")
    );

    let patched = s
        .update_use_case(
            "admin",
            &uc.id,
            &UseCasePatch {
                scores: Some(Scores {
                    impact: 5,
                    ..Scores::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.scores.impact, 5);
    let pilots = s
        .list_use_cases(
            &UseCaseFilter {
                stage: Some(Stage::Pilot),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(pilots.items.len(), 1);

    let events = s.list_audit(0, 100).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "pod.create",
            "use_case.create",
            "use_case.stage",
            "use_case.update"
        ]
    );
    assert_eq!(events[2].actor, "usr_1");
}

#[tokio::test]
async fn keys_revoke_rotate_and_the_active_snapshot() {
    let s = Store::open(&temp_db("keys")).await.unwrap();
    let pod = s.create_pod("admin", "cs", "").await.unwrap();
    let uc = plain_use_case(&s, &pod.id, "triage").await;
    let a = s.create_key("admin", &key(&uc.id, "h1")).await.unwrap();
    let b = s.create_key("admin", &key(&uc.id, "h2")).await.unwrap();
    assert!(matches!(
        s.create_key("admin", &key(&uc.id, "h1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.active_keys(now_ms()).await.unwrap().len(), 2);

    s.revoke_key("admin", &a.id, now_ms()).await.unwrap();
    let active = s.active_keys(now_ms() + 1).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].1.id, uc.id);

    let newer = key(&uc.id, "h3");
    let until = now_ms() + 60_000;
    let (old, new) = s.rotate_key("admin", &b.id, &newer, until).await.unwrap();
    assert_eq!(
        (old.revoked_at, old.replaced_by.as_deref()),
        (Some(until), Some(new.id.as_str()))
    );
    assert_eq!(
        s.active_keys(now_ms()).await.unwrap().len(),
        2,
        "both work during the grace period"
    );
    assert_eq!(
        s.active_keys(until + 1).await.unwrap().len(),
        1,
        "only the new one after it"
    );
    assert!(matches!(
        s.rotate_key("admin", &b.id, &key(&uc.id, "h4"), until)
            .await,
        Err(StoreError::Invalid(_))
    ));

    let all = s
        .list_keys(
            &KeyFilter {
                include_inactive: true,
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 3);
    let live = s
        .list_keys(&KeyFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(live.items.len(), 2);
}

/// A use case of pod `pod` with nothing but its name.
async fn plain_use_case(s: &Store, pod: &str, name: &str) -> UseCase {
    s.create_use_case(
        "admin",
        pod,
        name,
        "",
        &ValueModel::default(),
        &Scores::default(),
        &[],
        &PilotCaps::default(),
        &Limits::default(),
    )
    .await
    .unwrap()
}

/// The stage history is read a page at a time in time order, ties by id — also when the ids do
/// not follow the times — and a cursor that is not one of the use case's changes is refused.
#[tokio::test]
async fn stage_history_pages_follow_time_order() {
    let path = temp_db("stage-pages");
    let s = Store::open(&path).await.unwrap();
    let pod = s.create_pod("admin", "ops", "").await.unwrap();
    let uc = plain_use_case(&s, &pod.id, "triage").await;
    let other = plain_use_case(&s, &pod.id, "other").await;
    let mut ids = Vec::new();
    for to in [
        Stage::Pilot,
        Stage::Production,
        Stage::Pilot,
        Stage::Production,
        Stage::Retired,
    ] {
        ids.push(
            s.change_stage("admin", &uc.id, to, "step")
                .await
                .unwrap()
                .1
                .id,
        );
    }
    let (_, foreign) = s
        .change_stage("admin", &other.id, Stage::Pilot, "elsewhere")
        .await
        .unwrap();
    // Times that run against the ids: the last change made is the oldest, and the second and
    // fourth share a time.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for (id, at) in ids.iter().zip([5_000, 3_000, 4_000, 3_000, 1_000]) {
        sqlx::query("UPDATE stage_changes SET at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    let mut tie = [ids[1].clone(), ids[3].clone()];
    tie.sort();
    let expected = [
        ids[4].clone(),
        tie[0].clone(),
        tie[1].clone(),
        ids[2].clone(),
        ids[0].clone(),
    ];
    for size in [1, 2, 3, 5, 200] {
        let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = s
                .list_stage_changes(&uc.id, &PageRequest { after, limit: size })
                .await
                .unwrap();
            pages += 1;
            assert!(pages <= 5, "pages of {size} do not end: {seen:?}");
            assert!(page.items.len() <= size as usize);
            assert!(page.items.iter().all(|c| c.use_case_id == uc.id));
            seen.extend(page.items.iter().map(|c| c.id.clone()));
            match page.next {
                Some(n) => {
                    assert_eq!(Some(&n), seen.last(), "`next` is the page's last change");
                    after = Some(n);
                }
                None => break,
            }
        }
        assert_eq!(seen, expected, "pages of {size}");
        assert_eq!(pages, 5_usize.div_ceil(size as usize), "pages of {size}");
    }
    for bad in [foreign.id.clone(), new_id("stg"), "stg_x".into()] {
        let err = s
            .list_stage_changes(
                &uc.id,
                &PageRequest {
                    after: Some(bad.clone()),
                    limit: 2,
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(&bad)),
            "{bad}: {err:?}"
        );
    }
}

/// A use case's schedules are read a page at a time by suite name, only its own; one is read by
/// its suite.
#[tokio::test]
async fn schedules_page_by_suite_and_read_one() {
    let s = Store::open(&temp_db("schedules")).await.unwrap();
    let pod = s.create_pod("admin", "ops", "").await.unwrap();
    let mut ucs = Vec::new();
    for name in ["triage", "other"] {
        ucs.push(plain_use_case(&s, &pod.id, name).await.id);
    }
    let schedule = |uc: &str, suite: &str, tolerance: f64| EvalSchedule {
        use_case_id: uc.into(),
        suite: suite.into(),
        every_minutes: 60,
        tolerance,
        next_at: 1_000,
        created_at: 1_000,
        created_by: "admin".into(),
    };
    for (i, suite) in ["nightly", "Zeta", "alpha", "mid"].iter().enumerate() {
        s.put_schedule("admin", &schedule(&ucs[0], suite, i as f64 / 10.0))
            .await
            .unwrap();
    }
    s.put_schedule("admin", &schedule(&ucs[1], "beta", 0.5))
        .await
        .unwrap();
    // By the bytes of the name, as the cursor compares.
    let expected = ["Zeta", "alpha", "mid", "nightly"];
    for size in [1, 3, 4, 200] {
        let (mut seen, mut after) = (Vec::new(), None);
        loop {
            let page = s
                .list_schedules(&ucs[0], &PageRequest { after, limit: size })
                .await
                .unwrap();
            assert!(seen.len() <= 4, "pages of {size} do not end: {seen:?}");
            assert!(page.items.len() <= size as usize);
            assert!(page.items.iter().all(|x| x.use_case_id == ucs[0]));
            seen.extend(page.items.into_iter().map(|x| x.suite));
            match page.next {
                Some(n) => {
                    assert_eq!(Some(&n), seen.last());
                    after = Some(n);
                }
                None => break,
            }
        }
        assert_eq!(seen, expected, "pages of {size}");
    }
    let one = s.get_schedule(&ucs[0], "alpha").await.unwrap().unwrap();
    assert_eq!((one.suite.as_str(), one.tolerance), ("alpha", 0.2));
    assert!(s.get_schedule(&ucs[0], "beta").await.unwrap().is_none());
    assert!(s.get_schedule(&ucs[1], "alpha").await.unwrap().is_none());
}

#[tokio::test]
async fn audit_events_are_append_only() {
    let path = temp_db("audit");
    let s = Store::open(&path).await.unwrap();
    s.create_pod("admin", "x", "").await.unwrap();
    drop(s);
    // Even with direct SQL, the triggers refuse to change history.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let err = sqlx::query("UPDATE audit_events SET actor = 'mallory'")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("DELETE FROM audit_events")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn two_processes_can_start_on_one_directory() {
    let path = temp_db("twice");
    let (a, b) = tokio::join!(Store::open(&path), Store::open(&path));
    let (a, b) = (a.unwrap(), b.unwrap());
    a.create_pod("admin", "one", "").await.unwrap();
    assert_eq!(
        b.list_pods(None, &PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // And again later, with migrations already applied.
    let c = Store::open(&path).await.unwrap();
    assert_eq!(c.init_setting("secret", "v1").await.unwrap(), "v1");
    assert_eq!(c.init_setting("secret", "v2").await.unwrap(), "v1");
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let s = Store::open(&temp_db("closed")).await.unwrap();
    s.close().await;
    assert!(matches!(
        s.list_pods(None, &PageRequest::default()).await,
        Err(StoreError::Unavailable(_))
    ));
}

fn token(user_id: &str, hash: &str, expires_at: Option<i64>) -> UserToken {
    UserToken {
        id: new_id("tok"),
        user_id: user_id.into(),
        name: "t".into(),
        prefix: "tgu_abc".into(),
        hash: hash.into(),
        expires_at,
        revoked_at: None,
        created_at: now_ms(),
    }
}

/// Users are renamed, given or stripped of an org role, disabled and enabled, each change audited
/// with what changed; their tokens are listed and revoked, only through their own user.
#[tokio::test]
async fn users_change_and_their_tokens_are_listed_and_revoked() {
    let s = Store::open(&temp_db("lifecycle")).await.unwrap();
    let ana = s
        .create_user("admin", "ana@example.com", "Ana", None)
        .await
        .unwrap();
    let bo = s
        .create_user("admin", "bo@example.com", "Bo", None)
        .await
        .unwrap();
    assert_eq!(ana.disabled_at, None);

    let patch = UserPatch {
        name: Some("Ana B".into()),
        org_role: Some(Some(OrgRole::Finops)),
        disabled: Some(true),
    };
    let changed = s.update_user("usr_root", &ana.id, &patch).await.unwrap();
    assert_eq!(changed.name, "Ana B");
    assert_eq!(changed.org_role, Some(OrgRole::Finops));
    let disabled_at = changed.disabled_at.expect("disabled");
    assert_eq!(s.get_user(&ana.id).await.unwrap(), changed, "stored");
    // The same patch again changes nothing and records nothing; the first disable time stays.
    let before = s.list_audit(0, 1000).await.unwrap().len();
    let again = s.update_user("usr_root", &ana.id, &patch).await.unwrap();
    assert_eq!(again.disabled_at, Some(disabled_at));
    assert_eq!(s.list_audit(0, 1000).await.unwrap().len(), before);
    let enabled = s
        .update_user(
            "usr_root",
            &ana.id,
            &UserPatch {
                org_role: Some(None),
                disabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((enabled.org_role, enabled.disabled_at), (None, None));
    let updates: Vec<AuditEvent> = s
        .list_audit(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "user.update")
        .collect();
    assert_eq!(updates.len(), 2);
    assert_eq!(
        (updates[0].actor.as_str(), updates[0].object_id.as_str()),
        ("usr_root", ana.id.as_str())
    );
    assert_eq!(
        updates[0].details["changes"],
        serde_json::json!({
            "name": {"from": "Ana", "to": "Ana B"},
            "org_role": {"from": null, "to": "finops"},
            "disabled": {"from": false, "to": true},
        })
    );
    assert_eq!(
        updates[1].details["changes"],
        serde_json::json!({
            "org_role": {"from": "finops", "to": null},
            "disabled": {"from": true, "to": false},
        })
    );
    assert!(matches!(
        s.update_user("admin", "usr_nope", &patch).await,
        Err(StoreError::NotFound(_))
    ));

    // Tokens: listed per user, revoked only through their own user.
    let t1 = s
        .create_token("admin", &token(&ana.id, "th1", Some(now_ms() + 60_000)), 20)
        .await
        .unwrap();
    let t2 = s
        .create_token("admin", &token(&ana.id, "th2", None), 20)
        .await
        .unwrap();
    let tb = s
        .create_token("admin", &token(&bo.id, "th3", None), 20)
        .await
        .unwrap();
    let listed = s
        .list_tokens(&ana.id, &PageRequest::default())
        .await
        .unwrap();
    let ids: Vec<&str> = listed.items.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, [t1.id.as_str(), t2.id.as_str()]);
    let first = s
        .list_tokens(
            &ana.id,
            &PageRequest {
                after: None,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.next.as_deref(), Some(t1.id.as_str()));
    assert!(matches!(
        s.revoke_token("admin", &ana.id, &tb.id, now_ms()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s.token_by_hash("th3", now_ms()).await.unwrap().is_some());
    let at = now_ms();
    let revoked = s.revoke_token("usr_x", &ana.id, &t1.id, at).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    assert!(!revoked.is_active(at));
    assert!(s.token_by_hash("th1", at).await.unwrap().is_none());
    assert!(s.token_by_hash("th2", at).await.unwrap().is_some());
    let again = s
        .revoke_token("usr_x", &ana.id, &t1.id, at + 5)
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at),
        "revoking twice keeps the first time"
    );
    let revokes: Vec<AuditEvent> = s
        .list_audit(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "token.revoke")
        .collect();
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0].details["token_id"], t1.id.as_str());
    assert_eq!(revokes[0].actor, "usr_x");
}

/// A database at schema version `upto` (the migrations before it applied, as an older release
/// left it): its pool, to write old rows into before the store opens it.
async fn db_at_version(path: &std::path::Path, upto: i64) -> sqlx::SqlitePool {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let all = [
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/sqlite/0002_ledger.sql"),
        include_str!("../migrations/sqlite/0003_limits.sql"),
        include_str!("../migrations/sqlite/0004_budgets.sql"),
        include_str!("../migrations/sqlite/0005_focus.sql"),
        include_str!("../migrations/sqlite/0006_user_lifecycle.sql"),
        include_str!("../migrations/sqlite/0007_policies.sql"),
        include_str!("../migrations/sqlite/0008_chain.sql"),
        include_str!("../migrations/sqlite/0009_payloads.sql"),
        include_str!("../migrations/sqlite/0010_outcomes.sql"),
        include_str!("../migrations/sqlite/0011_kpis.sql"),
        include_str!("../migrations/sqlite/0012_slo.sql"),
        include_str!("../migrations/sqlite/0013_evals.sql"),
        include_str!("../migrations/sqlite/0014_fairness.sql"),
        include_str!("../migrations/sqlite/0015_patterns.sql"),
        include_str!("../migrations/sqlite/0016_run_patterns.sql"),
        include_str!("../migrations/sqlite/0017_eval_schedules.sql"),
        include_str!("../migrations/sqlite/0018_gates.sql"),
        include_str!("../migrations/sqlite/0019_routing_savings.sql"),
        include_str!("../migrations/sqlite/0020_outcome_subjects.sql"),
        include_str!("../migrations/sqlite/0021_sessions_stand_for_requests.sql"),
        include_str!("../migrations/sqlite/0022_sessions_per_hour.sql"),
    ];
    assert!(upto as usize <= all.len(), "no migration {upto} here");
    for (v, sql) in (1..=upto).zip(all) {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO schema_version VALUES (?, 0)")
            .bind(v)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool
}

/// Version 6 gives personal tokens issued before it, which could live forever, at most 90 days.
#[tokio::test]
async fn the_upgrade_caps_the_lifetime_of_older_tokens() {
    let path = temp_db("upgrade");
    // The schema as version 5 left it.
    let pool = db_at_version(&path, 5).await;
    sqlx::raw_sql(
        "INSERT INTO users (id, email, name, created_at) VALUES ('usr_1', 'a@example.com', 'A', 0);
         INSERT INTO user_tokens (id, user_id, name, prefix, hash, expires_at, revoked_at, created_at) VALUES
           ('tok_forever', 'usr_1', 't', 'tgu_a', 'h1', NULL, NULL, 0),
           ('tok_far', 'usr_1', 't', 'tgu_b', 'h2', 32503680000000, NULL, 0),
           ('tok_soon', 'usr_1', 't', 'tgu_c', 'h3', 1000, NULL, 0),
           ('tok_revoked', 'usr_1', 't', 'tgu_d', 'h4', NULL, 5, 0);",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let before = now_ms();
    let s = Store::open(&path).await.unwrap();
    let after = now_ms();
    let ninety_days = 90 * 86_400_000;
    let user = s.get_user("usr_1").await.unwrap();
    assert_eq!(user.disabled_at, None);
    let tokens = s
        .list_tokens("usr_1", &PageRequest::default())
        .await
        .unwrap()
        .items;
    let expiry = |id: &str| tokens.iter().find(|t| t.id == id).unwrap().expires_at;
    for id in ["tok_forever", "tok_far"] {
        let e = expiry(id).unwrap();
        assert!(
            (before - 1000 + ninety_days..=after + ninety_days).contains(&e),
            "{id}: {e}"
        );
    }
    assert_eq!(expiry("tok_soon"), Some(1000), "an earlier expiry stays");
    assert_eq!(expiry("tok_revoked"), None, "revoked tokens are left alone");
}

/// Version 10 maps the value drivers written as free text before it onto the four names, and
/// clears the ones it cannot map (the lead sets them again).
#[tokio::test]
async fn the_upgrade_maps_old_value_drivers() {
    let path = temp_db("drivers");
    let pool = db_at_version(&path, 9).await;
    sqlx::raw_sql(
        "INSERT INTO pods (id, name, description, created_at) VALUES ('pod_1', 'p', '', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (id, driver) in [
        ("uc_1", "cost_reduction"),
        ("uc_2", "risk_reduction"),
        ("uc_3", "revenue"),
        ("uc_4", "decision_quality"),
        ("uc_5", ""),
    ] {
        sqlx::query(
            "INSERT INTO use_cases (id, pod_id, name, description, stage, value_model, scores, priority, routes, pilot_caps, created_at, updated_at)
             VALUES (?, 'pod_1', ?, '', 'proposed', ?, '{\"impact\":3,\"feasibility\":3,\"data_readiness\":3,\"risk\":3,\"time_to_impact\":3}', 50, '[]', '{}', 0, 0)",
        )
        .bind(id)
        .bind(id)
        .bind(format!("{{\"driver\":\"{driver}\",\"kpi\":\"k\",\"eligible_users\":7}}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let s = Store::open(&path).await.unwrap();
    for (id, want) in [
        ("uc_1", "efficiency"),
        ("uc_2", "risk"),
        ("uc_3", "revenue"),
        ("uc_4", ""),
        ("uc_5", ""),
    ] {
        let uc = s.get_use_case(id).await.unwrap();
        assert_eq!(uc.value_model.driver, want, "{id}");
        // The rest of the value model is untouched.
        assert_eq!(
            (uc.value_model.kpi.as_str(), uc.value_model.eligible_users),
            ("k", 7)
        );
    }
}

/// Version 20 folds the outcome events stored before it into their subjects (each field as the
/// latest event that gave it) and counts the rollups again: events where they happened, each
/// request or session once in the hour of its first event. Nothing stored is lost, and a later
/// event corrects the folded state rather than adding to it.
#[tokio::test]
async fn the_upgrade_counts_stored_outcomes_once_per_request_and_session() {
    const H: i64 = 3_600_000;
    let t0 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
    let path = temp_db("subjects");
    let pool = db_at_version(&path, 19).await;
    // r1: escalated and rated 2, then (an hour later) a success worth $3; r2: a failure; the
    // session: accepted after edits. (The rollups as version 19 kept them, per event.)
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO outcome_events (id, event_id, at, use_case_id, pod_id, key_id, request_id, session_hash,
             outcome, rating, accepted, edited, value_nano_usd, minutes_saved_milli, labels) VALUES
           ('fbk_1', NULL, {t0}, 'uc_a', 'pod_a', 'k', 'r1', NULL, 'escalated', 2, NULL, NULL, NULL, NULL, '{{}}'),
           ('fbk_2', NULL, {t0} + 1, 'uc_a', 'pod_a', 'k', 'r2', NULL, 'failure', NULL, NULL, NULL, NULL, NULL, '{{}}'),
           ('fbk_3', NULL, {t0} + 2, 'uc_a', 'pod_a', 'k', NULL, 's1', NULL, NULL, 1, 1, NULL, NULL, '{{}}'),
           ('fbk_4', NULL, {t0} + {H}, 'uc_a', 'pod_a', 'k', 'r1', NULL, 'success', NULL, NULL, NULL, 3000000000, NULL, '{{}}');
         INSERT INTO rollups_outcomes_hourly VALUES
           ({t0} / {H}, 'pod_a', 'uc_a', 3, 0, 1, 1, 0, 1, 0, 2, 1, 0, 1, 0, 0, 0, 0),
           ({t0} / {H} + 1, 'pod_a', 'uc_a', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3000000000, 0);"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let s = Store::open(&path).await.unwrap();
    let rows = s.outcome_rollups(0, i64::MAX).await.unwrap();
    let first = OutcomeRollup {
        hour: t0 / H,
        pod_id: "pod_a".into(),
        use_case_id: "uc_a".into(),
        events: 3,
        subjects: 3,
        success: 1,
        failure: 1,
        rated: 1,
        rating_sum: 2,
        with_acceptance: 1,
        accepted_edited: 1,
        success_untimed: 1,
        value_nano_usd: 3_000_000_000,
        ..OutcomeRollup::default()
    };
    let second = OutcomeRollup {
        hour: t0 / H + 1,
        pod_id: "pod_a".into(),
        use_case_id: "uc_a".into(),
        events: 1,
        ..OutcomeRollup::default()
    };
    assert_eq!(rows, vec![first.clone(), second.clone()]);
    // A later rating of r1 replaces its 2.
    s.insert_outcomes(&[OutcomeEvent {
        id: new_id("fbk"),
        at: t0 + H + 5,
        use_case_id: "uc_a".into(),
        pod_id: "pod_a".into(),
        key_id: "k".into(),
        request_id: Some("r1".into()),
        rating: Some(5),
        ..OutcomeEvent::default()
    }])
    .await
    .unwrap();
    let rows = s.outcome_rollups(0, i64::MAX).await.unwrap();
    assert_eq!(
        rows,
        vec![
            OutcomeRollup {
                rating_sum: 5,
                positive: 1,
                ..first
            },
            OutcomeRollup {
                events: 2,
                ..second
            }
        ]
    );
}

/// Version 21: a session speaks for its requests. The upgrade finds each request's session in
/// the ledger and counts the rollups again with each field the session reports left out of its
/// requests' (events stay as they were); later events follow the same rule.
#[tokio::test]
async fn the_upgrade_lets_a_session_speak_for_its_requests() {
    const H: i64 = 3_600_000;
    let t0 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
    let path = temp_db("sessions");
    let pool = db_at_version(&path, 20).await;
    // r1 (in session s1): a success worth $5 rated 4; r2 (no session): a failure; the session
    // s1: a success worth $5; r3 (refused by the policy): a success worth $7; r9 (its record
    // gone, as retention does): abandoned. The rollups as version 20 kept them (not read: the
    // upgrade counts subjects again).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO request_records (id, request_id, at, key_id, use_case_id, pod_id, endpoint, route,
             stream, attempts, status, outcome, input_tokens, cached_input_tokens, cache_write_tokens,
             output_tokens, reasoning_tokens, price_source, usage_source, latency_ms, session_hash) VALUES
           ('rec_1', 'r1', {t0}, 'k', 'uc_a', 'pod_a', 'chat', 'm', 0, 1, 200, 'ok', 1, 0, 0, 1, 0, 'catalog', 'reported', 5, 's1'),
           ('rec_2', 'r2', {t0}, 'k', 'uc_a', 'pod_a', 'chat', 'm', 0, 1, 200, 'ok', 1, 0, 0, 1, 0, 'catalog', 'reported', 5, NULL),
           ('rec_3', 'r3', {t0}, 'k', 'uc_a', 'pod_a', 'chat', 'm', 0, 1, 400, 'policy_violation', 1, 0, 0, 0, 0, 'catalog', 'reported', 5, NULL),
           ('rec_4', 'r4', {t0}, 'k', 'uc_a', 'pod_a', 'chat', 'm', 0, 1, 400, 'policy_violation', 1, 0, 0, 0, 0, 'catalog', 'reported', 5, 's2');
         INSERT INTO outcome_events (id, event_id, at, use_case_id, pod_id, key_id, request_id, session_hash,
             outcome, rating, accepted, edited, value_nano_usd, minutes_saved_milli, labels) VALUES
           ('fbk_1', NULL, {t0}, 'uc_a', 'pod_a', 'k', 'r1', NULL, 'success', 4, NULL, NULL, 5000000000, NULL, '{{}}'),
           ('fbk_2', NULL, {t0}, 'uc_a', 'pod_a', 'k', 'r2', NULL, 'failure', NULL, NULL, NULL, NULL, NULL, '{{}}'),
           ('fbk_3', NULL, {t0} + {H}, 'uc_a', 'pod_a', 'k', NULL, 's1', 'success', NULL, NULL, NULL, 5000000000, NULL, '{{}}'),
           ('fbk_5', NULL, {t0}, 'uc_a', 'pod_a', 'k', 'r3', NULL, 'success', NULL, NULL, NULL, 7000000000, NULL, '{{}}'),
           ('fbk_6', NULL, {t0}, 'uc_a', 'pod_a', 'k', 'r9', NULL, 'abandoned', NULL, NULL, NULL, NULL, NULL, '{{}}');
         INSERT INTO outcome_subjects VALUES
           ('uc_a', 'r:r1', 'pod_a', {t0} / {H}, 'success', 4, NULL, NULL, 5000000000, NULL),
           ('uc_a', 'r:r2', 'pod_a', {t0} / {H}, 'failure', NULL, NULL, NULL, NULL, NULL),
           ('uc_a', 's:s1', 'pod_a', {t0} / {H} + 1, 'success', NULL, NULL, NULL, 5000000000, NULL),
           ('uc_a', 'r:r3', 'pod_a', {t0} / {H}, 'success', NULL, NULL, NULL, 7000000000, NULL),
           ('uc_a', 'r:r9', 'pod_a', {t0} / {H}, 'abandoned', NULL, NULL, NULL, NULL, NULL),
           ('uc_a', 's:s2', 'pod_a', {t0} / {H}, 'success', NULL, NULL, NULL, 9000000000, NULL);
         INSERT INTO rollups_outcomes_hourly VALUES
           ({t0} / {H}, 'pod_a', 'uc_a', 4, 1, 1, 0, 0, 1, 1, 4, 0, 0, 0, 0, 1, 5000000000, 0, 2),
           ({t0} / {H} + 1, 'pod_a', 'uc_a', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5000000000, 0, 1);"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let s = Store::open(&path).await.unwrap();
    let rows = s.outcome_rollups(0, i64::MAX).await.unwrap();
    // r1 keeps only its rating (the session speaks for its outcome and value); r2 is as it was;
    // r3 and the session s2 count no more (neither had an answer), r9 still does; s1 counts in
    // its own hour.
    let first = OutcomeRollup {
        hour: t0 / H,
        pod_id: "pod_a".into(),
        use_case_id: "uc_a".into(),
        events: 4,
        subjects: 3,
        failure: 1,
        abandoned: 1,
        rated: 1,
        positive: 1,
        rating_sum: 4,
        ..OutcomeRollup::default()
    };
    let second = OutcomeRollup {
        hour: t0 / H + 1,
        pod_id: "pod_a".into(),
        use_case_id: "uc_a".into(),
        events: 1,
        subjects: 1,
        success: 1,
        success_untimed: 1,
        value_nano_usd: 5_000_000_000,
        ..OutcomeRollup::default()
    };
    assert_eq!(rows, vec![first.clone(), second.clone()]);
    // The session now rates the conversation 2: r1's own rating stops counting.
    s.insert_outcomes(&[OutcomeEvent {
        id: new_id("fbk"),
        at: t0 + H + 5,
        use_case_id: "uc_a".into(),
        pod_id: "pod_a".into(),
        key_id: "k".into(),
        session_hash: Some("s1".into()),
        rating: Some(2),
        ..OutcomeEvent::default()
    }])
    .await
    .unwrap();
    let rows = s.outcome_rollups(0, i64::MAX).await.unwrap();
    assert_eq!(
        rows,
        vec![
            OutcomeRollup {
                subjects: 2,
                rated: 0,
                positive: 0,
                rating_sum: 0,
                ..first
            },
            OutcomeRollup {
                events: 2,
                rated: 1,
                rating_sum: 2,
                ..second
            }
        ]
    );
}

/// `INSERT INTO rollups_kpi_hourly (…)` with every column a version-21 row must have: the
/// counters, then the 29 latency and time-to-first-token buckets (58 values in all after them).
fn kpi_hourly_insert() -> String {
    let hist: String = (0..29).map(|k| format!(", l{k}, t{k}")).collect();
    format!(
        "INSERT INTO rollups_kpi_hourly (hour, pod_id, use_case_id, requests, answered, errors,
             fallbacks, streams, streams_cancelled, guard_blocked, guard_flagged, with_session,
             routing_priced, first_choice_nano_usd, first_choice_paid_nano_usd{hist})"
    )
}

/// Version 22 counts each stored session once, on its first day, in that day's first hour with
/// a session's request (sessions were kept per day); new requests of a session seen before
/// count nothing more.
#[tokio::test]
async fn the_upgrade_counts_each_session_once_in_the_hour_it_began() {
    const H: i64 = 3_600_000;
    let t0 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
    let (h0, d0) = (t0 / H, t0 / (24 * H));
    let path = temp_db("sessions-hourly");
    let pool = db_at_version(&path, 21).await;
    let (insert, zeros) = (kpi_hourly_insert(), ", 0".repeat(58));
    let hour = |h: i64, with_session: i64| {
        format!(
            "{insert}
             VALUES ({h}, 'pod_a', 'uc_a', 3, 3, 0, 0, 0, 0, 0, 0, {with_session}, 0, 0, 0{zeros});"
        )
    };
    // Day 0: hour 1 without sessions, hours 2 and 5 with; sessions 11 and 12. Day 1: hour 3;
    // session 11 again and 13. Day 2: hours 2 and 4, neither marked with a session (a count
    // that disagrees); session 15.
    let sql = [
        hour(h0 + 1, 0),
        hour(h0 + 2, 1),
        hour(h0 + 5, 2),
        hour(h0 + 27, 2),
        hour(h0 + 52, 0),
        hour(h0 + 50, 0),
        format!(
            "INSERT INTO sessions_daily VALUES ('uc_a', {d0}, 11), ('uc_a', {d0}, 12),
                 ('uc_a', {d0} + 1, 11), ('uc_a', {d0} + 1, 13), ('uc_a', {d0} + 2, 15);
             INSERT INTO rollups_daily VALUES ('u:uc_a', {d0}, 0, 2), ('u:uc_a', {d0} + 1, 0, 2);"
        ),
    ]
    .concat();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let s = Store::open(&path).await.unwrap();
    let uc = KpiScope::UseCase("uc_a".into());
    let sessions = async |from: i64, to: i64| s.kpi_data(&uc, from, to).await.unwrap().sessions;
    assert_eq!(
        sessions(t0, t0 + 2 * 24 * H).await,
        3,
        "11, 12 and 13, once each"
    );
    assert_eq!(
        sessions(t0 + 2 * H, t0 + 3 * H).await,
        2,
        "day 0's in its first hour with sessions"
    );
    assert_eq!(sessions(t0 + H, t0 + 2 * H).await, 0);
    assert_eq!(sessions(t0 + 5 * H, t0 + 6 * H).await, 0);
    assert_eq!(
        sessions(t0 + 24 * H, t0 + 48 * H).await,
        1,
        "13 began on day 1; 11 before"
    );
    assert_eq!(
        sessions(t0 + 50 * H, t0 + 51 * H).await,
        1,
        "15 in day 2's first hour with requests"
    );
    // Session 11 (its pseudonym's first 64 bits) again: counted already; 14: new.
    let record = |i: u64, session: &str| RequestRecord {
        session_hash: Some(session.into()),
        ..ledger_record(i, t0 + 30 * H, "catalog", "ok")
    };
    s.insert_records(&[
        record(1, "000000000000000b0000"),
        record(2, "000000000000000e0000"),
    ])
    .await
    .unwrap();
    assert_eq!(sessions(t0 + 30 * H, t0 + 31 * H).await, 1);
    assert_eq!(sessions(t0, t0 + 2 * 24 * H).await, 4);
}

/// The upgrade to version 22 at scale: 100 use cases over 60 days of hourly rows (144,000) and
/// their stored sessions. Each use case's sessions count once, in the first hour of their first
/// day marked with a session. (Its first form ran a scan of every first hour per hourly row: on
/// a year of rows it held the store's start for minutes.)
#[tokio::test]
async fn the_sessions_upgrade_is_right_over_many_hourly_rows() {
    const H: i64 = 3_600_000;
    const USE_CASES: i64 = 100;
    const DAYS: i64 = 60;
    let t0 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
    let (h0, d0) = (t0 / H, t0 / (24 * H));
    let path = temp_db("sessions-hourly-scale");
    let pool = db_at_version(&path, 21).await;
    let (insert, zeros) = (kpi_hourly_insert(), ", 0".repeat(58));
    // Hours 0-2 of every day have requests without sessions, hours 3-23 with. Each use case
    // has session 1,000,000 every day and two of its own each day (2 * day and 2 * day + 1).
    let rows = USE_CASES * DAYS * 24;
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {rows})
         {insert}
         SELECT {h0} + i / {USE_CASES}, 'pod_a', 'uc_' || (i % {USE_CASES}), 2, 2, 0, 0, 0, 0, 0,
                0, CASE WHEN (i / {USE_CASES}) % 24 >= 3 THEN 2 ELSE 0 END, 0, 0, 0{zeros}
           FROM n;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {days})
         INSERT INTO sessions_daily
         SELECT 'uc_' || (i % {USE_CASES}), {d0} + i / {USE_CASES},
                s.k + CASE WHEN s.k < 2 THEN (i / {USE_CASES}) * 2 ELSE 0 END
           FROM n, (SELECT 1000000 AS k UNION ALL SELECT 0 UNION ALL SELECT 1) s;",
        days = USE_CASES * DAYS,
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let s = Store::open(&path).await.unwrap();
    let sessions = async |scope: &KpiScope, from: i64, to: i64| {
        s.kpi_data(scope, from, to).await.unwrap().sessions
    };
    let all = KpiScope::Portfolio;
    let end = t0 + DAYS * 24 * H;
    assert_eq!(
        sessions(&all, t0, end).await,
        (USE_CASES * (1 + 2 * DAYS)) as u64
    );
    assert_eq!(
        sessions(&all, t0 + 3 * H, t0 + 4 * H).await,
        (USE_CASES * 3) as u64,
        "day 0: the everyday session and the day's two, in hour 3"
    );
    for day in [1, 29, DAYS - 1] {
        let at = t0 + (day * 24 + 3) * H;
        assert_eq!(sessions(&all, at, at + H).await, (USE_CASES * 2) as u64);
        assert_eq!(sessions(&all, at - 3 * H, at).await, 0, "day {day}");
        assert_eq!(sessions(&all, at + H, at + 21 * H).await, 0, "day {day}");
    }
    let one = KpiScope::UseCase("uc_7".into());
    assert_eq!(sessions(&one, t0, end).await, (1 + 2 * DAYS) as u64);
}

/// Version 23 rewrites stored event ids in NFC, as the gateway keeps new ones: a repeat of an id
/// stored decomposed (`e` and a combining accent) is met, and not counted again. An id whose
/// composed form its use case already holds is left; ASCII ids and other use cases' are
/// untouched.
#[tokio::test]
async fn the_upgrade_composes_stored_event_ids() {
    let path = temp_db("event-ids-nfc");
    let pool = db_at_version(&path, 22).await;
    let stored = [
        ("fbk_1", "cafe\u{301}", "uc_a"),
        ("fbk_2", "plain-id", "uc_a"),
        ("fbk_3", "o\u{308}l", "uc_b"),
        ("fbk_4", "\u{f6}l", "uc_b"),
        ("fbk_5", "cafe\u{301}", "uc_b"),
        ("fbk_6", "\u{212b}ngstro\u{308}m", "uc_a"),
    ];
    for (id, event_id, use_case) in stored {
        sqlx::query(
            "INSERT INTO outcome_events (id, event_id, at, use_case_id, pod_id, key_id, outcome, labels)
             VALUES (?, ?, 1793577600000, ?, 'pod_a', 'k', 'success', '{}')",
        )
        .bind(id)
        .bind(event_id)
        .bind(use_case)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let s = Store::open(&path).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let ids: Vec<(String, String)> =
        sqlx::query_as("SELECT id, event_id FROM outcome_events ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let want = [
        ("fbk_1", "caf\u{e9}"),
        ("fbk_2", "plain-id"),
        // Its composed form is fbk_4's: left.
        ("fbk_3", "o\u{308}l"),
        ("fbk_4", "\u{f6}l"),
        ("fbk_5", "caf\u{e9}"),
        // The Ångström sign composes to the letter Å.
        ("fbk_6", "\u{c5}ngstr\u{f6}m"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(ids, want);
    // A repeat of fbk_1, as the gateway now sends it (composed, its own id): not stored again.
    let repeat = OutcomeEvent {
        id: new_id("fbk"),
        event_id: Some("caf\u{e9}".into()),
        at: 1_793_577_600_000,
        use_case_id: "uc_a".into(),
        pod_id: "pod_a".into(),
        key_id: "k".into(),
        outcome: Some(Outcome::Success),
        ..OutcomeEvent::default()
    };
    assert_eq!(s.insert_outcomes(&[repeat]).await.unwrap(), 0);
}

/// A record with every counted column set, so a rollup that drops or overwrites any of them shows.
fn ledger_record(i: u64, at: i64, price_source: &str, outcome: &str) -> RequestRecord {
    let priced = price_source != "unpriced";
    RequestRecord {
        id: new_id("rec"),
        request_id: format!("req_{i}"),
        at,
        key_id: "key_a".into(),
        use_case_id: "uc_a".into(),
        pod_id: "pod_a".into(),
        endpoint: "chat".into(),
        route: "m".into(),
        status: if outcome == "ok" { 200 } else { 502 },
        outcome: outcome.into(),
        input_tokens: 100 + i,
        cached_input_tokens: 10 + i,
        cache_write_tokens: 5 + i,
        output_tokens: 50 + i,
        reasoning_tokens: 20 + i,
        cost_nano_usd: priced.then_some(1_000 + i),
        cost_split: if priced {
            [1_000 + i, 0, 0, 0, 0]
        } else {
            [0; 5]
        },
        price_source: price_source.into(),
        usage_source: "reported".into(),
        ..Default::default()
    }
}

/// Batches written one after another into the same hour and group add up in the rollups, column
/// by column, to exactly what the records hold.
#[tokio::test]
async fn rollups_add_every_column_across_batches_of_one_group() {
    let s = Store::open(&temp_db("rollups")).await.unwrap();
    let hour = 1_796_040_000_000i64; // 2026-11-30T12:00Z
    let kinds = [
        ("catalog:1", "ok"),
        ("unpriced", "ok"),
        ("catalog:1", "upstream_error"),
        ("unpriced", "client_disconnected"),
    ];
    let mut i = 0;
    for batch in 0..3 {
        let records: Vec<_> = kinds
            .iter()
            .map(|(price, outcome)| {
                i += 1;
                ledger_record(i, hour + batch * 60_000 + i as i64, price, outcome)
            })
            .collect();
        s.insert_records(&records).await.unwrap();
    }
    let records = s.record_totals(hour, hour + 3_600_000).await.unwrap();
    let rollups = s
        .rollup_totals(hour / 3_600_000, hour / 3_600_000 + 1)
        .await
        .unwrap();
    assert_eq!(records.requests, 12);
    assert_eq!(records.unpriced, 6);
    assert_eq!(records.errors, 3);
    assert!(records.reasoning_tokens > 0 && records.cost_nano_usd > 0);
    assert_eq!(rollups, records);
}

/// A budget period that starts inside an hour (Asia/Kolkata's midnight is 18:30 UTC) counts the
/// spend after its start and nothing of the same hour before it.
#[tokio::test]
async fn spend_since_a_start_inside_an_hour_counts_only_after_it() {
    let s = Store::open(&temp_db("partial-hour")).await.unwrap();
    let hour = 1_796_061_600_000i64; // 2026-11-30T18:00Z
    let start = hour + 30 * 60_000; // 18:30Z, midnight in Kolkata
    let before = ledger_record(1, start - 10 * 60_000, "catalog:1", "ok");
    let after = ledger_record(2, start + 10 * 60_000, "catalog:1", "ok");
    let next_hour = ledger_record(3, hour + 3_600_000 + 60_000, "catalog:1", "ok");
    s.insert_records(&[before, after.clone(), next_hour.clone()])
        .await
        .unwrap();
    let want = after.cost_nano_usd.unwrap() + next_hour.cost_nano_usd.unwrap();
    assert_eq!(
        s.spend_since("use_case", "uc_a", start).await.unwrap(),
        want
    );
    assert_eq!(s.spend_since("pod", "pod_a", start).await.unwrap(), want);
    assert_eq!(s.spend_since("use_case", "uc_b", start).await.unwrap(), 0);
}
