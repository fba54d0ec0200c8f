"""Scores `tollgate guard scan` on a labelled corpus (see corpus.py).

    python3 eval/guard/score.py --bin target/release/tollgate --corpus corpus.jsonl [--split test]
        [--markdown docs/guard-evaluation.md] [--check]

Per entity type: precision, recall and F2 with a prediction matching a labelled span of the same
type when their intersection over union is at least 0.9 (and, beside it, at exact span match);
false positives per 1,000 negative samples. `--check` exits 1 unless every checksum-validated type
has F2 >= 0.95 and the negatives have at most 5 false positives per 1,000.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

# Types a checksum or a structural validator confirms (the acceptance bar applies to these).
VALIDATED = {"CREDIT_CARD", "IBAN_CODE", "CRYPTO_WALLET", "UK_NHS", "CA_SIN", "ES_NIF", "ES_NIE",
             "IT_FISCAL_CODE", "PL_PESEL", "DE_TAX_ID", "SE_PERSONNUMMER", "IN_AADHAAR", "AU_TFN",
             "AU_ABN", "SECRET_JWT", "EMAIL_ADDRESS", "URL_WITH_CREDENTIALS",
             "SECRET_CONNECTION_STRING", "SECRET_PRIVATE_KEY"}

SETTINGS = """\
guard:
  packs: [uk, ca, es, it, pl, de, se, in, au, us]
  phone_regions: [US, GB, DE, FR, IN, AU, ES, IT, NL]
"""


def iou(a, b):
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


def f_beta(p, r, beta=2.0):
    if p == 0 and r == 0:
        return 0.0
    return (1 + beta * beta) * p * r / (beta * beta * p + r)


def scan(binary, samples):
    with tempfile.TemporaryDirectory() as d:
        settings = os.path.join(d, "settings.yaml")
        with open(settings, "w") as f:
            f.write(SETTINGS)
        payload = "".join(json.dumps({"id": s["id"], "text": s["text"]}) + "\n" for s in samples)
        out = subprocess.run([binary, "guard", "scan", "--jsonl", "--policy", settings],
                             input=payload.encode(), capture_output=True, check=False)
        if out.returncode != 0:
            sys.exit(f"guard scan failed ({out.returncode}): {out.stderr.decode()[-2000:]}")
    found = {}
    for line in out.stdout.decode().splitlines():
        v = json.loads(line)
        found[v["id"]] = v["findings"]
    return found


def score(samples, found, threshold_iou):
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    fp_examples = collections.defaultdict(list)
    fn_examples = collections.defaultdict(list)
    neg_fp, negatives = 0, 0
    for s in samples:
        preds = [(f["type"], f["start"], f["end"]) for f in found.get(s["id"], [])]
        gold = [(g["type"], g["start"], g["end"]) for g in s["spans"]]
        used = set()
        for g in gold:
            hit = None
            for i, p in enumerate(preds):
                if i not in used and p[0] == g[0] and iou(p[1:], g[1:]) >= threshold_iou:
                    hit = i
                    break
            if hit is None:
                fn[g[0]] += 1
                fn_examples[g[0]].append(s["text"][max(0, g[1] - 20):g[2] + 20])
            else:
                used.add(hit)
                tp[g[0]] += 1
        for i, p in enumerate(preds):
            if i not in used:
                fp[p[0]] += 1
                fp_examples[p[0]].append(s["text"][max(0, p[1] - 20):p[2] + 20])
        if s["negative"]:
            negatives += 1
            neg_fp += sum(1 for i in range(len(preds)) if i not in used)
    return tp, fp, fn, neg_fp, negatives, fp_examples, fn_examples


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--split", default="test", choices=["test", "train", "all"])
    ap.add_argument("--markdown")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--examples", type=int, default=0, help="print this many misses per type")
    args = ap.parse_args()
    samples = [json.loads(l) for l in open(args.corpus, encoding="utf-8")]
    if args.split != "all":
        samples = [s for s in samples if s["split"] == args.split]
    found = scan(args.bin, samples)
    tp, fp, fn, neg_fp, negatives, fpx, fnx = score(samples, found, 0.9)
    etp, efp, efn, _, _, _, _ = score(samples, found, 1.0)
    types = sorted(set(tp) | set(fp) | set(fn))
    rows = []
    failures = []
    for t in types:
        p = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 0.0
        r = tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else 0.0
        f2 = f_beta(p, r)
        ep = etp[t] / (etp[t] + efp[t]) if etp[t] + efp[t] else 0.0
        er = etp[t] / (etp[t] + efn[t]) if etp[t] + efn[t] else 0.0
        labelled = tp[t] + fn[t]
        rows.append((t, labelled, tp[t], fp[t], fn[t], p, r, f2, f_beta(ep, er)))
        if t in VALIDATED and labelled and f2 < 0.95:
            failures.append(f"{t}: F2 {f2:.3f} < 0.95")
    per_1000 = 1000 * neg_fp / negatives if negatives else 0.0
    if per_1000 > 5:
        failures.append(f"negatives: {per_1000:.1f} false positives per 1,000 > 5")
    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    mp = all_tp / (all_tp + all_fp) if all_tp + all_fp else 0.0
    mr = all_tp / (all_tp + all_fn) if all_tp + all_fn else 0.0
    lines = [
        f"Samples: {len(samples)} ({args.split} split; {negatives} negative), "
        f"labelled spans: {all_tp + all_fn}.",
        "",
        "| type | labelled | TP | FP | FN | precision | recall | F2 (IoU ≥ 0.9) | F2 (exact) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, labelled, a, b, c, p, r, f2, ef2 in rows:
        mark = " ✓" if t in VALIDATED else ""
        lines.append(f"| {t}{mark} | {labelled} | {a} | {b} | {c} | {p:.3f} | {r:.3f} | {f2:.3f} | {ef2:.3f} |")
    lines += ["", f"Micro-average: precision {mp:.3f}, recall {mr:.3f}, F2 {f_beta(mp, mr):.3f}.",
              f"False positives on negative samples: {neg_fp} in {negatives} "
              f"({per_1000:.1f} per 1,000).", ""]
    text = "\n".join(lines)
    print(text)
    if args.examples:
        for t in types:
            for kind, ex in (("FN", fnx[t]), ("FP", fpx[t])):
                for e in ex[:args.examples]:
                    print(f"  {kind} {t}: {e!r}")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if failures:
        print("below the bar:\n  " + "\n  ".join(failures))
        if args.check:
            sys.exit(1)


if __name__ == "__main__":
    main()
