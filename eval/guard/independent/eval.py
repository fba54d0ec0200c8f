#!/usr/bin/env python3
"""Score tool output against gold. usage: eval.py gold.jsonl out.jsonl [min_score] [--examples]"""
import json, sys, collections

gold_path, out_path = sys.argv[1], sys.argv[2]
min_score = float(sys.argv[3]) if len(sys.argv) > 3 and not sys.argv[3].startswith("--") else 0.0
show = "--examples" in sys.argv

gold = {}
for l in open(gold_path):
    s = json.loads(l)
    gold[s["id"]] = s
pred = {}
bad_offsets = []
for l in open(out_path):
    o = json.loads(l)
    text = gold[o["id"]]["text"]
    fs = []
    for f in o["findings"]:
        if not (isinstance(f["start"], int) and isinstance(f["end"], int) and 0 <= f["start"] < f["end"] <= len(text)):
            bad_offsets.append((o["id"], f))
            continue
        if f.get("score", 1.0) >= min_score:
            fs.append(f)
    pred[o["id"]] = fs
missing = [i for i in gold if i not in pred]


def iou(a, b):
    inter = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
    union = max(a["end"], b["end"]) - min(a["start"], b["start"])
    return inter / union if union else 0


tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
fp_neg = collections.Counter()
neg_samples_with_fp = 0
fn_ex, fp_ex = collections.defaultdict(list), collections.defaultdict(list)
sub_stats = collections.defaultdict(lambda: [0, 0])  # (type,sub) -> [tp, total]
fmt_stats = collections.defaultdict(lambda: [0, 0])
type_confusion = collections.Counter()
fp_neg_cat = collections.Counter()


def snip(text, s, e, w=60):
    a, b = max(0, s - w), min(len(text), e + w)
    return (text[a:s] + "⟦" + text[s:e] + "⟧" + text[e:b]).replace("\n", "⏎")


n_neg = 0
for sid, g in gold.items():
    text = g["text"]
    ps = pred.get(sid, [])
    gs = g["spans"]
    if g["negative"]:
        n_neg += 1
        if ps:
            neg_samples_with_fp += 1
        for p in ps:
            fp[p["type"]] += 1
            fp_neg[p["type"]] += 1
            fp_neg_cat[(p["type"], tuple(g.get("neg_items", [])))] += 1
            fp_ex[p["type"]].append((sid, "NEG", snip(text, p["start"], p["end"]), p))
        continue
    cands = []
    for i, gsp in enumerate(gs):
        for j, p in enumerate(ps):
            if p["type"] == gsp["type"]:
                v = iou(gsp, p)
                if v >= 0.9:
                    cands.append((v, i, j))
    cands.sort(reverse=True)
    mg, mp = set(), set()
    for v, i, j in cands:
        if i in mg or j in mp:
            continue
        mg.add(i)
        mp.add(j)
    for i, gsp in enumerate(gs):
        key = (gsp["type"], gsp.get("sub"))
        sub_stats[key][1] += 1
        fmt_stats[(gsp["type"], g["format"])][1] += 1
        if i in mg:
            tp[gsp["type"]] += 1
            sub_stats[key][0] += 1
            fmt_stats[(gsp["type"], g["format"])][0] += 1
        else:
            fn[gsp["type"]] += 1
            over = [p for p in ps if iou(gsp, p) > 0]
            for p in over:
                type_confusion[(gsp["type"], p["type"])] += 1
            fn_ex[gsp["type"]].append((sid, g["format"], snip(text, gsp["start"], gsp["end"]),
                                       [(p["type"], p["start"], p["end"], text[p["start"]:p["end"]][:80], p.get("rule")) for p in over], gsp))
    for j, p in enumerate(ps):
        if j not in mp:
            fp[p["type"]] += 1
            over = [gsp for gsp in gs if iou(gsp, p) > 0]
            fp_ex[p["type"]].append((sid, g["format"], snip(text, p["start"], p["end"]), p, [(x["type"], text[x["start"]:x["end"]][:60]) for x in over]))


def f2(p, r):
    return 5 * p * r / (4 * p + r) if p + r else 0.0


types = sorted(set(tp) | set(fp) | set(fn))
print(f"samples={len(gold)} negatives={n_neg} min_score={min_score} missing_outputs={len(missing)} bad_offsets={len(bad_offsets)}")
print(f"{'TYPE':26s} {'gold':>5s} {'TP':>5s} {'FP':>5s} {'FN':>5s} {'P':>6s} {'R':>6s} {'F2':>6s} {'FPneg':>5s}")
T = [0, 0, 0]
rows = []
for t in types:
    P = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 0.0
    Rr = tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else 0.0
    T[0] += tp[t]; T[1] += fp[t]; T[2] += fn[t]
    rows.append((t, tp[t] + fn[t], tp[t], fp[t], fn[t], P, Rr, f2(P, Rr), fp_neg[t]))
    print(f"{t:26s} {tp[t] + fn[t]:5d} {tp[t]:5d} {fp[t]:5d} {fn[t]:5d} {P:6.3f} {Rr:6.3f} {f2(P, Rr):6.3f} {fp_neg[t]:5d}")
P = T[0] / (T[0] + T[1]); Rr = T[0] / (T[0] + T[2])
print(f"{'MICRO':26s} {T[0] + T[2]:5d} {T[0]:5d} {T[1]:5d} {T[2]:5d} {P:6.3f} {Rr:6.3f} {f2(P, Rr):6.3f} {sum(fp_neg.values()):5d}")
print(f"FP per 1000 negative samples: {1000 * sum(fp_neg.values()) / n_neg:.1f}  (negative samples with >=1 finding: {neg_samples_with_fp}/{n_neg})")
json.dump({"rows": rows, "micro": [P, Rr, f2(P, Rr)]}, open(out_path + ".scores.json", "w"))

if show:
    print("\n== recall by (type, sub) where < 1 ==")
    for k, (a, b) in sorted(sub_stats.items()):
        if a < b:
            print(f"  {k[0]:26s} {str(k[1]):18s} {a}/{b}")
    print("\n== recall by (type, format) where < 1 ==")
    for k, (a, b) in sorted(fmt_stats.items()):
        if a < b:
            print(f"  {k[0]:26s} {k[1]:10s} {a}/{b}")
    print("\n== type confusion (gold -> predicted overlapping) ==")
    for k, v in type_confusion.most_common():
        print(f"  {k[0]} -> {k[1]}: {v}")
    print("\n== FP on negatives by (type, categories) ==")
    for k, v in fp_neg_cat.most_common(40):
        print(f"  {v:3d} {k[0]} {k[1]}")
    for t in types:
        P = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 0.0
        Rr = tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else 0.0
        if f2(P, Rr) < 0.95 or fp_neg[t]:
            print(f"\n######## {t}  F2={f2(P, Rr):.3f}")
            for ex in fn_ex[t][:int(sys.argv[-1]) if sys.argv[-1].isdigit() else 6]:
                print("  FN", ex[0], ex[1], "|", ex[2][:260], "| gold_sub=", ex[4].get("sub"), "| tool:", ex[3])
            for ex in fp_ex[t][:int(sys.argv[-1]) if sys.argv[-1].isdigit() else 6]:
                print("  FP", ex[0], ex[1], "|", ex[2][:260], "| rule=", ex[3].get("rule"), "score=", ex[3].get("score"), "| gold overlap:", ex[4] if len(ex) > 4 else "")
if bad_offsets:
    print("BAD OFFSETS", bad_offsets[:10])
