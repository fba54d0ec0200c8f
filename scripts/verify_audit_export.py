#!/usr/bin/env python3
"""Verifies a `tollgate audit export` directory without Tollgate: the procedure of
docs/audit-chain.md, written independently of the Rust code (needs the `cryptography` package).

Usage: verify_audit_export.py DIR [--public-key HEX]
Exit status 0 when the chain and every checkpoint hold; 1 with the first broken link named.
"""

import base64
import hashlib
import json
import sys

GENESIS = bytes(32)


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def merkle_root(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


def parse_checkpoint(text):
    lines = text.split("\n")
    if lines[0] != "tollgate audit checkpoint v1" or lines[-1] != "":
        raise ValueError("not a tollgate checkpoint")
    fields = dict(line.split(" ", 1) for line in lines[1:-1])
    return {
        "size": int(fields["size"]),
        "from": int(fields["from"]),
        "head": bytes.fromhex(fields["head"]),
        "root": bytes.fromhex(fields["root"]),
        "prev": bytes.fromhex(fields["prev"]),
        "time": int(fields["time"]),
    }


def verify(directory, public_key_hex=None):
    """Returns (ok, message)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if public_key_hex is None:
        with open(f"{directory}/public-key.txt") as f:
            public_key_hex = f.read().strip()
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))

    checkpoints = []
    prev_cp = None
    with open(f"{directory}/checkpoints.jsonl") as f:
        for line in f:
            c = json.loads(line)
            try:
                key.verify(base64.b64decode(c["signature"]), c["text"].encode())
            except InvalidSignature:
                return False, f"a checkpoint is not signed by this key: {c['text']!r}"
            cp = parse_checkpoint(c["text"])
            expected_prev = GENESIS if prev_cp is None else hashlib.sha256(prev_cp.encode()).digest()
            if cp["prev"] != expected_prev:
                return False, f"checkpoint at {cp['size']} does not follow the one before it"
            expected_from = 1 if not checkpoints else checkpoints[-1]["size"] + 1
            if cp["from"] != expected_from:
                return False, f"checkpoint at {cp['size']} starts at {cp['from']}, not {expected_from}"
            prev_cp = c["text"]
            checkpoints.append(cp)
    checkpoints.sort(key=lambda cp: (cp["size"], cp["time"]))

    prev, expected_seq, hashes = GENESIS, 1, {0: GENESIS}
    with open(f"{directory}/entries.jsonl") as f:
        for line in f:
            e = json.loads(line)
            if e["seq"] != expected_seq:
                return False, f"entry {expected_seq} is missing or out of order (found {e['seq']})"
            if e["entry"] is None:
                return False, f"entry {e['seq']}: the row it stands for is gone"
            if e["entry"].get("seq") != e["seq"]:
                return False, f"entry {e['seq']}: its content names another place"
            h = hashlib.sha256(prev + canonical(e["entry"])).digest()
            if h.hex() != e["hash"]:
                return False, f"entry {e['seq']}: its content does not match its hash"
            prev = h
            hashes[e["seq"]] = h
            expected_seq += 1
    last = expected_seq - 1

    for cp in checkpoints:
        if cp["size"] > last:
            return False, f"checkpoint at {cp['size']} names entries past the end ({last})"
        leaves = [hashes[s] for s in range(cp["from"], cp["size"] + 1)]
        if hashes[cp["size"]] != cp["head"] or merkle_root(leaves) != cp["root"]:
            return False, f"entries {cp['from']}..{cp['size']} do not match the checkpoint signed at {cp['time']}"
    signed = max((cp["size"] for cp in checkpoints), default=0)
    return True, f"OK: {last} entries, {len(checkpoints)} checkpoints, signed through entry {signed}"


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    key = None
    if "--public-key" in args:
        i = args.index("--public-key")
        key = args[i + 1]
        del args[i : i + 2]
    ok, message = verify(args[0], key)
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
