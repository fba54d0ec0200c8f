use super::*;
use proptest::prelude::*;
use serde_json::json;

fn signer() -> Signer {
    Signer::from_bytes(&[7u8; 32])
}

/// A chain of `n` entries and a checkpoint after every `every` of them (and one at the end).
fn chain(n: i64, every: i64) -> (Vec<Entry>, Vec<SignedCheckpoint>) {
    let s = signer();
    let (mut entries, mut cps) = (Vec::new(), Vec::new());
    let (mut prev, mut cp_prev, mut from, mut leaves) = (GENESIS, GENESIS, 1, Vec::new());
    for seq in 1..=n {
        let body = json!({"seq": seq, "kind": "request", "ref": format!("rec_{seq}"), "cost": seq * 10, "model": "m"});
        let h = entry_hash(&prev, &body);
        entries.push(Entry {
            seq,
            hash: h,
            body: Some(body),
            what: format!("request rec_{seq}"),
        });
        prev = h;
        leaves.push(h);
        if seq % every == 0 || seq == n {
            let cp = Checkpoint {
                size: seq,
                from,
                head: prev,
                root: merkle_root(&leaves),
                prev: cp_prev,
                at: 1000 + seq,
            };
            let sc = s.sign(&cp);
            cp_prev = checkpoint_hash(&sc.text);
            cps.push(sc);
            from = seq + 1;
            leaves.clear();
        }
    }
    (entries, cps)
}

fn verify(entries: &[Entry], cps: &[SignedCheckpoint]) -> Report {
    let mut v = Verifier::new(signer().verifying_key(), 1, GENESIS, cps, true);
    for e in entries {
        v.entry(e);
    }
    v.finish()
}

/// Recomputes every hash from `from` on, as an attacker with the database (not the key) can.
fn rehash(entries: &mut [Entry]) {
    let mut prev = GENESIS;
    for e in entries.iter_mut() {
        if let Some(b) = &e.body {
            e.hash = entry_hash(&prev, b);
        }
        prev = e.hash;
    }
}

#[test]
fn an_intact_chain_verifies_through_its_last_checkpoint() {
    let (entries, cps) = chain(25, 10);
    let r = verify(&entries, &cps);
    assert_eq!(r.broken, None);
    assert_eq!((r.entries, r.checkpoints, r.signed_through), (25, 3, 25));
}

#[test]
fn a_modified_entry_is_named() {
    let (mut entries, cps) = chain(25, 10);
    entries[13].body.as_mut().unwrap()["cost"] = json!(1);
    let r = verify(&entries, &cps);
    assert_eq!(r.broken.as_ref().unwrap().seq, 14, "{r:?}");
    // Rewritten consistently: the checkpoint over it says so.
    rehash(&mut entries);
    let r = verify(&entries, &cps);
    let b = r.broken.unwrap();
    assert_eq!(b.seq, 20);
    assert!(b.problem.contains("11..=20"), "{b}");
}

#[test]
fn a_deleted_entry_is_named() {
    let (mut entries, cps) = chain(25, 10);
    entries.remove(6);
    let r = verify(&entries, &cps);
    let b = r.broken.unwrap();
    assert_eq!(b.seq, 7);
    assert!(b.problem.contains("missing"), "{b}");
    // The row behind an entry deleted: named too.
    let (mut entries, cps) = chain(25, 10);
    entries[3].body = None;
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 4);
    assert!(b.problem.contains("gone"), "{b}");
    // The last entries deleted: the checkpoint names them.
    let (mut entries, cps) = chain(25, 10);
    entries.truncate(22);
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 25);
}

#[test]
fn an_inserted_entry_is_named() {
    let (mut entries, cps) = chain(25, 10);
    let fake = Entry {
        seq: 5,
        hash: [1; 32],
        body: Some(json!({"seq": 5, "kind": "request", "ref": "rec_fake"})),
        what: "request rec_fake".into(),
    };
    entries.insert(4, fake.clone());
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 5);
    // Renumbered and rehashed, the insertion still breaks the signed checkpoint.
    for (i, e) in entries.iter_mut().enumerate() {
        e.seq = i as i64 + 1;
        if let Some(b) = e.body.as_mut() {
            b["seq"] = json!(e.seq);
        }
    }
    rehash(&mut entries);
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 10);
}

#[test]
fn reordered_entries_are_named() {
    let (mut entries, cps) = chain(25, 10);
    entries.swap(15, 16);
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 16, "the first out of place: {b}");
    // Contents swapped under the same numbers, rehashed: the checkpoint breaks.
    let (mut entries, cps) = chain(25, 10);
    let (a, c) = (entries[15].body.clone(), entries[16].body.clone());
    entries[15].body = c;
    entries[16].body = a;
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 16);
    rehash(&mut entries);
    assert_eq!(verify(&entries, &cps).broken.unwrap().seq, 20);
}

#[test]
fn a_forged_or_missing_checkpoint_is_named() {
    let (entries, mut cps) = chain(25, 10);
    // A checkpoint edited: its signature no longer holds.
    cps[1].text = cps[1].text.replace("time 1020", "time 1021");
    let b = verify(&entries, &cps).broken.unwrap();
    assert!(b.problem.contains("forged"), "{b}");
    // Signed by another key.
    let (entries, mut cps) = chain(25, 10);
    let other = Signer::from_bytes(&[9u8; 32]);
    let cp = Checkpoint::parse(&cps[1].text).unwrap();
    cps[1] = other.sign(&cp);
    assert!(
        verify(&entries, &cps)
            .broken
            .unwrap()
            .problem
            .contains("forged")
    );
    // One removed: the next does not follow.
    let (entries, mut cps) = chain(25, 10);
    cps.remove(1);
    let b = verify(&entries, &cps).broken.unwrap();
    assert!(b.problem.contains("does not follow"), "{b}");
    // The first removed: the one now first names a previous one.
    let (entries, mut cps) = chain(25, 10);
    cps.remove(0);
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 20, "{b}");
    assert!(
        b.problem
            .contains("the first checkpoint (at 20) names a previous one"),
        "{b}"
    );
    // Signed with the key and following the one before it, but starting past where that one
    // ended: a gap in what the checkpoints cover.
    let (entries, mut cps) = chain(25, 10);
    let mut cp = Checkpoint::parse(&cps[2].text).unwrap();
    cp.from += 1;
    cps[2] = signer().sign(&cp);
    let b = verify(&entries, &cps).broken.unwrap();
    assert_eq!(b.seq, 25, "{b}");
    assert!(
        b.problem
            .contains("the checkpoint at 25 starts at entry 22 where 21 was expected"),
        "{b}"
    );
}

#[test]
fn silence_is_checkpointed_too() {
    let s = signer();
    let empty = Checkpoint {
        size: 0,
        from: 1,
        head: GENESIS,
        root: merkle_root(&[]),
        prev: GENESIS,
        at: 5,
    };
    let first = s.sign(&empty);
    let again = s.sign(&Checkpoint {
        prev: checkpoint_hash(&first.text),
        at: 6,
        ..empty
    });
    let r = verify(&[], &[first, again]);
    assert_eq!((r.broken, r.checkpoints), (None, 2));
}

#[test]
fn merkle_roots_follow_rfc_6962() {
    // RFC 6962: MTH of one leaf d is SHA-256(0x00 ‖ d); of two, SHA-256(0x01 ‖ MTH(d0) ‖ MTH(d1)).
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let leaf = |x: Hash| -> Hash {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(x);
        h.finalize().into()
    };
    let node = |l: Hash, r: Hash| -> Hash {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    };
    assert_eq!(merkle_root(&[a]), leaf(a));
    assert_eq!(merkle_root(&[a, b]), node(leaf(a), leaf(b)));
    // Three leaves split 2 + 1.
    assert_eq!(
        merkle_root(&[a, b, c]),
        node(node(leaf(a), leaf(b)), leaf(c))
    );
    assert_eq!(
        hex(&merkle_root(&[])),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn canonical_form_sorts_keys_and_escapes_like_json() {
    let v = json!({"b": 1, "a": {"z": "x\"y\n\u{1}é", "c": [true, null, -3]}});
    assert_eq!(
        String::from_utf8(canonical(&v)).unwrap(),
        "{\"a\":{\"c\":[true,null,-3],\"z\":\"x\\\"y\\n\\u0001é\"},\"b\":1}"
    );
}

#[test]
fn a_key_is_generated_private_and_read_back() {
    let dir = std::env::temp_dir().join(format!("tollgate-audit-key-{}", std::process::id()));
    let path = dir.join("audit-signing-key");
    let _ = std::fs::remove_file(&path);
    let a = Signer::load_or_create(&path).unwrap();
    let b = Signer::load_or_create(&path).unwrap();
    assert_eq!(a.verifying_key(), b.verifying_key());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::write(&path, "not a key").unwrap();
    assert!(Signer::load_or_create(&path).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Any single change to any entry is found, rehashed or not.
    #[test]
    fn any_single_change_is_found(n in 2i64..40, every in 3i64..12, at in 0usize..40, cost in 0i64..1000, rehashed in any::<bool>()) {
        let (mut entries, cps) = chain(n, every);
        let at = at % entries.len();
        prop_assume!(entries[at].body.as_ref().unwrap()["cost"] != json!(cost));
        entries[at].body.as_mut().unwrap()["cost"] = json!(cost);
        if rehashed {
            rehash(&mut entries);
        }
        let b = verify(&entries, &cps).broken;
        prop_assert!(b.is_some());
        prop_assert!(b.unwrap().seq > at as i64);
    }
}

#[test]
fn entry_bytes_are_the_canonical_bytes_of_the_whole_entry() {
    let data = json!({"z": 1, "a": "x\"\n", "m": [1, {"b": null, "a": true}]});
    for (seq, kind, reference) in [
        (1, "request", "rec_1"),
        (42, "audit", "17"),
        (7, "odd\"kind", "ref\u{1}é"),
    ] {
        let whole = json!({"seq": seq, "kind": kind, "ref": reference, "data": data});
        assert_eq!(
            entry_bytes(seq, kind, reference, &canonical(&data)),
            canonical(&whole)
        );
        assert_eq!(
            entry_hash_of_bytes(
                &GENESIS,
                &entry_bytes(seq, kind, reference, &canonical(&data))
            ),
            entry_hash(&GENESIS, &whole)
        );
    }
    assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
}

/// Arbitrary JSON without floating-point numbers (entries hold none).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        // Control characters and escapes, dense.
        "[\\x00-\\x1f\"\\\\\\x7fa-zé€😀]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// The canonical form is what serde_json writes for an object map kept sorted (its default),
    /// which an external verifier reproduces with `json.dumps(sort_keys=True,
    /// separators=(",", ":"), ensure_ascii=False)`: an independent oracle for the escaping and
    /// the numbers.
    #[test]
    fn canonical_is_compact_sorted_json(v in json_value()) {
        prop_assert_eq!(canonical(&v), serde_json::to_vec(&v).unwrap());
    }

    /// The field-by-field writer gives the bytes of `canonical` of the same object.
    #[test]
    fn the_field_writer_writes_canonical_bytes(
        a in any::<String>(), b in any::<Option<String>>(), c in any::<i64>(), d in any::<Option<u64>>(),
        e in any::<bool>(), f in prop::collection::vec(any::<u64>(), 0..6), g in "[\\x00-\\x1f\"\\\\a-z]{0,8}",
    ) {
        let mut out = b"prefix".to_vec();
        Canon::object(&mut out)
            .str("a", &a)
            .opt_str("b", b.as_deref())
            .int("c", c)
            .opt_int("d", d)
            .bool("e", e)
            .ints("f", &f)
            .str("g", &g)
            .null("h")
            .end();
        let v = json!({"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": null});
        prop_assert_eq!(&out[..6], b"prefix");
        prop_assert_eq!(&out[6..], &canonical(&v)[..]);
    }
}
