"""Tollgate's guard side by side with Microsoft Presidio (presidio-analyzer from PyPI).

    bash eval/guard/presidio/setup.sh        # once: Presidio in ~/.cache/tollgate/presidio-venv
    python3 eval/guard/corpus.py --seed 7 --per-template 40 > /tmp/corpus.jsonl
    ~/.cache/tollgate/presidio-venv/bin/python eval/guard/presidio/compare.py \\
        --bin target/release/tollgate --corpus /tmp/corpus.jsonl [--split test] \\
        [--independent eval/guard/independent] [--reps 3] [--markdown FILE]

Both products analyse exactly the same texts. Both are scored by eval/guard/score.py's matcher (a
finding matches a labelled span of the same type when their intersection over union is at least
0.9), on the entity types both have a recognizer for only (COMPARED below; findings and labels of
other types are dropped on both sides). Per type precision, recall and F2, micro totals, and
false positives per 1,000 negative samples; speed as MB of text (UTF-8, 10^6 bytes) per wall second
(and per CPU second): for Tollgate one `guard scan --jsonl` process over the whole corpus (its
start-up included; start-up alone and the steady state are timed too), for Presidio the analyze()
calls over all texts in one thread after the engine is built (engine load reported apart).
Medians of --reps runs, the two products timed alternately. Not part of CI.

Run it with the venv's python (it re-executes itself there when presidio_analyzer is missing).
"""

import argparse
import collections
import datetime
import importlib.metadata
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VENV = os.path.expanduser(os.environ.get("PRESIDIO_VENV", "~/.cache/tollgate/presidio-venv"))

_t_import = time.perf_counter()
try:
    import presidio_analyzer  # noqa: F401  (the rest is imported, and timed, in build_presidio)
    PRESIDIO_IMPORT_S = time.perf_counter() - _t_import
except ImportError:
    venv_python = os.path.join(DEFAULT_VENV, "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(DEFAULT_VENV):
        os.execv(venv_python, [venv_python] + sys.argv)
    sys.exit(f"presidio_analyzer is not installed: run `bash {os.path.relpath(HERE)}/setup.sh` first")

sys.path.insert(0, os.path.dirname(HERE))  # eval/guard: the shared matcher
import score as guard_score  # noqa: E402

# Our type -> (Presidio's entity type, Presidio recognizer class). Every type here has a
# recognizer in both products; nothing else is scored.
COMPARED = {
    "CREDIT_CARD": ("CREDIT_CARD", "CreditCardRecognizer"),
    "CRYPTO_WALLET": ("CRYPTO", "CryptoRecognizer"),
    "EMAIL_ADDRESS": ("EMAIL_ADDRESS", "EmailRecognizer"),
    "IBAN_CODE": ("IBAN_CODE", "IbanRecognizer"),
    "IP_ADDRESS": ("IP_ADDRESS", "IpRecognizer"),
    "MAC_ADDRESS": ("MAC_ADDRESS", "MacAddressRecognizer"),
    "PHONE_NUMBER": ("PHONE_NUMBER", "PhoneRecognizer"),
    "US_SSN": ("US_SSN", "UsSsnRecognizer"),
    "US_ITIN": ("US_ITIN", "UsItinRecognizer"),
    "US_NPI": ("US_NPI", "UsNpiRecognizer"),
    "ABA_ROUTING_NUMBER": ("ABA_ROUTING_NUMBER", "AbaRoutingRecognizer"),
    "UK_NHS": ("UK_NHS", "NhsRecognizer"),
    "UK_NINO": ("UK_NINO", "UkNinoRecognizer"),
    "CA_SIN": ("CA_SIN", "CaSinRecognizer"),
    "ES_NIF": ("ES_NIF", "EsNifRecognizer"),
    "ES_NIE": ("ES_NIE", "EsNieRecognizer"),
    "IT_FISCAL_CODE": ("IT_FISCAL_CODE", "ItFiscalCodeRecognizer"),
    "PL_PESEL": ("PL_PESEL", "PlPeselRecognizer"),
    "DE_TAX_ID": ("DE_TAX_ID", "DeTaxIdRecognizer"),
    "SE_PERSONNUMMER": ("SE_PERSONNUMMER", "SePersonnummerRecognizer"),
    "IN_AADHAAR": ("IN_AADHAAR", "InAadhaarRecognizer"),
    "AU_ABN": ("AU_ABN", "AuAbnRecognizer"),
    "AU_TFN": ("AU_TFN", "AuTfnRecognizer"),
}
FROM_PRESIDIO = {p: ours for ours, (p, _) in COMPARED.items()}

# Types one product has and the other has not (or not as the same entity), with why.
LEFT_OUT = {
    "DATE_OF_BIRTH": "Presidio's DATE_TIME finds every date and time; it has no date-of-birth entity",
    "URL_WITH_CREDENTIALS": "Presidio's URL finds every URL; it has no credentials-in-URL entity",
    "SECRET_* (AWS, GitHub, Slack, Stripe, OpenAI, Anthropic, Google API keys, JWT, private keys, "
    "connection strings, generic)": "Presidio has no secret or API-key recognizer",
    "PERSON, LOCATION, NRP, ORGANIZATION": "Presidio's NER types (spaCy model); Tollgate has none, "
    "and the corpora label none",
    "Presidio's other pattern types (US_BANK_NUMBER, US_DRIVER_LICENSE, US_PASSPORT, UUID, URL, "
    "DATE_TIME, MEDICAL_LICENSE, UK_POSTCODE, IN_PAN, ... )": "Tollgate has no recognizer for them and "
    "the corpora label none; their findings are dropped, not counted as false positives",
}


def cpu_snapshot():
    """(seconds the whole machine was busy, seconds this process and its children used, wall)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError):
        busy = float("nan")
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system, time.perf_counter()


def utf8_mb(samples):
    return sum(len(s["text"].encode("utf-8")) for s in samples) / 1e6


def read_phone_regions(policy_text):
    m = re.search(r"phone_regions:\s*\[([^\]]*)\]", policy_text)
    return [r.strip() for r in m.group(1).split(",") if r.strip()] if m else None


# --- Tollgate ------------------------------------------------------------------------------------


class Tollgate:
    """`guard scan --jsonl` with a policy: each rep() times one process over the corpus, one over
    nothing (start-up and policy load), and one over the corpus repeated `repeat` times (the steady
    state), in wall seconds and in CPU seconds (user + system of the child)."""

    def __init__(self, binary, samples, policy_text, repeat):
        def payload(rounds):
            return "".join(json.dumps({"id": f"{k}:{s['id']}" if k else s["id"], "text": s["text"]}) + "\n"
                           for k in range(rounds) for s in samples).encode()

        self.once, self.many = payload(1), payload(repeat) if repeat > 1 else b""
        self.dir = tempfile.TemporaryDirectory()
        policy = os.path.join(self.dir.name, "settings.yaml")
        with open(policy, "w", encoding="utf-8") as f:
            f.write(policy_text)
        self.cmd = [binary, "guard", "scan", "--jsonl", "--policy", policy, "--offsets", "char"]
        self.outputs = []
        self.timed(self.once)  # warm-up: the binary's pages in the page cache, as Presidio's engine is loaded

    def timed(self, data):
        r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        out = subprocess.run(self.cmd, input=data, capture_output=True, check=False)
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            sys.exit(f"guard scan failed ({out.returncode}): {out.stderr.decode()[-2000:]}")
        return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), out.stdout

    def rep(self):
        wall, cpu, out = self.timed(self.once)
        self.outputs.append(out)
        start = self.timed(b"")
        many = self.timed(self.many) if self.many else (None, None, None)
        return {"tg": wall, "tg_cpu": cpu, "tg_start": start[0], "tg_start_cpu": start[1],
                "tg_rep": many[0], "tg_rep_cpu": many[1]}

    def found(self):
        self.dir.cleanup()
        if len(set(self.outputs)) != 1:
            print("warning: Tollgate's output differed between runs", file=sys.stderr)
        found = {}
        for line in self.outputs[-1].decode().splitlines():
            v = json.loads(line)
            found[v["id"]] = v["findings"]
        return found


def tollgate_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, check=False)
    digest = hashlib.sha256()
    with open(binary, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"{out.stdout.decode().strip() or '?'}` (binary sha256 {digest.hexdigest()[:16]}…)"


# --- Presidio ------------------------------------------------------------------------------------


def offline_tldextract():
    """Presidio's e-mail validator calls tldextract, which fetches the public-suffix list from the
    internet on first use and falls back to the snapshot it ships. Use the snapshot directly: no
    network attempt (the result is the same as its fallback here)."""
    import tldextract

    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    tldextract.extract = extractor
    return extractor


def build_presidio(model, recognizer_set, phone_regions):
    """AnalyzerEngine with Presidio's default English registry, plus the recognizers of every
    compared type (Presidio ships most country ones disabled or tied to es/it/pl/de/sv: here all
    are on for the English analysis our policy amounts to), the phone recognizer set to the policy's
    regions. recognizer_set='compared' keeps only the compared types' recognizers."""
    t0 = time.perf_counter()
    import presidio_analyzer.predefined_recognizers as pr
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    t_import = PRESIDIO_IMPORT_S + time.perf_counter() - t0

    offline_tldextract()
    t1 = time.perf_counter()
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    nlp_engine = provider.create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    if recognizer_set == "all":
        registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    have = {e for r in registry.recognizers for e in r.supported_entities}
    for ours, (entity, cls) in COMPARED.items():
        if entity == "PHONE_NUMBER":
            registry.remove_recognizer("PhoneRecognizer")
            kw = {"supported_regions": phone_regions} if phone_regions else {}
            registry.add_recognizer(pr.PhoneRecognizer(supported_language="en", **kw))
        elif entity not in have:
            registry.add_recognizer(getattr(pr, cls)(supported_language="en"))
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    t_load = time.perf_counter() - t1
    names = sorted({r.name for r in registry.recognizers})
    return engine, t_import, t_load, names


def presidio_rep(engine, samples):
    """One timed pass of analyze() over every text: wall and CPU seconds, and the results."""
    c0, t0 = time.process_time(), time.perf_counter()
    res = [engine.analyze(text=s["text"], language="en") for s in samples]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"pr": wall, "pr_cpu": cpu}, {s["id"]: presidio_findings(r) for s, r in zip(samples, res)}


def presidio_at(engine, samples, threshold):
    """The same analysis with a score threshold (Tollgate's default is 0.5), untimed."""
    return {s["id"]: presidio_findings(engine.analyze(text=s["text"], language="en",
                                                      score_threshold=threshold))
            for s in samples}


def presidio_findings(results):
    return [{"type": FROM_PRESIDIO.get(r.entity_type, "PRESIDIO:" + r.entity_type),
             "start": r.start, "end": r.end, "score": r.score} for r in results]


# --- scoring -------------------------------------------------------------------------------------


def keep_compared(samples, found):
    """Labels and findings of the compared types only. A finding inside a labelled span of a type
    left out (an IP address inside a URL with credentials, an "e-mail" inside a connection string)
    is neither right nor wrong here: it is dropped, on both sides, unless it matches a label."""
    s2, f2, dropped = [], {}, 0
    for s in samples:
        kept = [g for g in s["spans"] if g["type"] in COMPARED]
        other = [g for g in s["spans"] if g["type"] not in COMPARED]
        s2.append(dict(s, spans=kept))
        out = []
        for f in found.get(s["id"], []):
            if f["type"] not in COMPARED:
                continue
            span = (f["start"], f["end"])
            matches = any(g["type"] == f["type"] and guard_score.iou(span, (g["start"], g["end"])) >= 0.9
                          for g in kept)
            if not matches and any(f["start"] < g["end"] and g["start"] < f["end"] for g in other):
                dropped += 1
                continue
            out.append(f)
        f2[s["id"]] = out
    return s2, f2, dropped


def is_bitcoin(addr):
    return addr[:1] in ("1", "3") or addr[:3].lower() == "bc1"


def evaluate(samples, found):
    s2, f2, dropped = keep_compared(samples, found)
    tp, fp, fn, neg_fp, negatives, fpx, fnx = guard_score.score(s2, f2, 0.9)
    # Presidio's CRYPTO recognizer is for Bitcoin only: recall on the Bitcoin addresses too.
    btc = [dict(s, spans=[g for g in s["spans"] if g["type"] == "CRYPTO_WALLET"
                          and is_bitcoin(s["text"][g["start"]:g["end"]])]) for s in s2]
    btp, _, bfn, _, _, _, _ = guard_score.score(btc, f2, 0.9)
    # False positives that are a labelled value reported under another (compared) type.
    cross = sum(1 for s in s2 for f in f2.get(s["id"], [])
                if any(g["type"] != f["type"] and
                       guard_score.iou((f["start"], f["end"]), (g["start"], g["end"])) >= 0.9
                       for g in s["spans"]))
    return {"tp": tp, "fp": fp, "fn": fn, "neg_fp": neg_fp, "negatives": negatives,
            "fpx": fpx, "fnx": fnx, "cross": cross, "dropped": dropped, "btc": (btp["CRYPTO_WALLET"], btp["CRYPTO_WALLET"] + bfn["CRYPTO_WALLET"])}


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, guard_score.f_beta(p, r)


def micro(ev):
    return prf(sum(ev["tp"].values()), sum(ev["fp"].values()), sum(ev["fn"].values()))


def per_1000(ev):
    return 1000 * ev["neg_fp"] / ev["negatives"] if ev["negatives"] else 0.0


def fmt(x, digits=3):
    return f"{x:.{digits}f}"


def dataset_report(name, samples, tg, pr_, pr_at, threshold, speed):
    """Markdown lines for one corpus."""
    types = sorted(set(tg["tp"]) | set(tg["fp"]) | set(tg["fn"]) | set(pr_["tp"]) | set(pr_["fp"])
                   | set(pr_["fn"]))
    labelled = collections.Counter()
    for s in samples:
        for g in s["spans"]:
            if g["type"] in COMPARED:
                labelled[g["type"]] += 1
    neg = tg["negatives"]
    lines = [f"### {name}", "",
             f"{len(samples)} texts ({neg} negative, {speed['mb']:.3f} MB), "
             f"{sum(labelled.values())} labelled spans of compared types.", "",
             "| type | labelled | Tollgate TP/FP/FN | P | R | F2 | Presidio TP/FP/FN | P | R | F2 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    def cells(ev, t, bold):
        tp, fp, fn = ev["tp"][t], ev["fp"][t], ev["fn"][t]
        p, r, f2 = prf(tp, fp, fn)
        b = "**" if bold else ""
        return (f"{tp}/{fp}/{fn} | {fmt(p) if tp + fp else '—'} | {fmt(r) if tp + fn else '—'} | "
                f"{b}{fmt(f2) if labelled[t] else '—'}{b}")

    for t in types:
        fa, fb = prf(tg["tp"][t], tg["fp"][t], tg["fn"][t])[2], prf(pr_["tp"][t], pr_["fp"][t], pr_["fn"][t])[2]
        lines.append(f"| {t} | {labelled[t]} | {cells(tg, t, labelled[t] and fa > fb + 0.005)} | "
                     f"{cells(pr_, t, labelled[t] and fb > fa + 0.005)} |")
    ma, mb = micro(tg), micro(pr_)
    mc = micro(pr_at)
    tot = lambda ev: f"{sum(ev['tp'].values())}/{sum(ev['fp'].values())}/{sum(ev['fn'].values())}"  # noqa: E731
    lines.append(f"| **micro** | {sum(labelled.values())} | {tot(tg)} | {fmt(ma[0])} | {fmt(ma[1])} | "
                 f"**{fmt(ma[2])}** | {tot(pr_)} | {fmt(mb[0])} | {fmt(mb[1])} | **{fmt(mb[2])}** |")
    lines += ["", "F2 in bold where one product is ahead by more than 0.005; a type with no label "
              "in this corpus has only false positives (— : no ratio).", ""]
    lines += [
        "| | Tollgate | Presidio | Presidio, score ≥ " + f"{threshold:g} |",
        "|---|---:|---:|---:|",
        f"| micro precision / recall / F2 | {fmt(ma[0])} / {fmt(ma[1])} / {fmt(ma[2])} | "
        f"{fmt(mb[0])} / {fmt(mb[1])} / {fmt(mb[2])} | {fmt(mc[0])} / {fmt(mc[1])} / {fmt(mc[2])} |",
        f"| false positives on negative samples (per 1,000) | {tg['neg_fp']} ({per_1000(tg):.1f}) | "
        f"{pr_['neg_fp']} ({per_1000(pr_):.1f}) | {pr_at['neg_fp']} ({per_1000(pr_at):.1f}) |",
    ]
    lines.append(f"| of all false positives: a labelled value reported under another type | {tg['cross']} | "
                 f"{pr_['cross']} | {pr_at['cross']} |")
    lines.append(f"| findings inside a labelled span of a left-out type (not scored) | {tg['dropped']} | "
                 f"{pr_['dropped']} | {pr_at['dropped']} |")
    if tg["btc"][1]:
        lines.append(f"| CRYPTO_WALLET recall on Bitcoin addresses only | {tg['btc'][0]}/{tg['btc'][1]} | "
                     f"{pr_['btc'][0]}/{pr_['btc'][1]} | {pr_at['btc'][0]}/{pr_at['btc'][1]} |")
    s = speed
    runs = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
    tg_rate, pr_rate = s["mb"] / s["tg"], s["mb"] / s["pr"]
    lines += [
        "", f"Speed ({s['reps']} timed runs of each, interleaved; medians; MB = 10^6 bytes of UTF-8 text; "
        "both single-threaded):", "",
        "| | wall s: median (runs) | MB/s (wall) | texts/s (wall) | CPU s: median | MB/s (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| Tollgate, one `guard scan --jsonl` process over the corpus | {s['tg']:.3f} ({runs(s['tg_all'])}) | "
        f"{tg_rate:.2f} | {len(samples) / s['tg']:,.0f} | {s['tg_cpu']:.3f} | {s['mb'] / s['tg_cpu']:.2f} |",
        f"| Presidio, analyze() over all texts after engine load | {s['pr']:.3f} ({runs(s['pr_all'])}) | "
        f"{pr_rate:.3f} | {len(samples) / s['pr']:,.1f} | {s['pr_cpu']:.3f} | {s['mb'] / s['pr_cpu']:.3f} |",
    ]
    steady = steady_cpu = None
    if s.get("tg_rep"):
        steady = (s["tg_rep"] - s["tg"]) / (s["repeat"] - 1)
        steady_cpu = (s["tg_rep_cpu"] - s["tg_cpu"]) / (s["repeat"] - 1)
        lines.append(
            f"| Tollgate steady state: (corpus ×{s['repeat']} in one process − corpus ×1) ÷ {s['repeat'] - 1} "
            f"| {steady:.4f} (×{s['repeat']}: {runs(s['tg_rep_all'])}) | {s['mb'] / steady:.2f} | "
            f"{len(samples) / steady:,.0f} | {steady_cpu:.4f} | {s['mb'] / steady_cpu:.2f} |")
    lines += [
        "",
        f"**Speed ratio (Tollgate MB/s ÷ Presidio MB/s), wall: {tg_rate / pr_rate:.0f}×** with "
        f"Tollgate's process start-up and policy load counted ({s['tg_start'] * 1000:.0f} ms median over "
        f"empty input: {runs(s['tg_start_all'])} s)"
        + (f"; **{s['pr'] / steady:.0f}×** steady state against steady state." if steady else ".")
        + f" By CPU seconds: {s['pr_cpu'] / s['tg_cpu']:.0f}×"
        + (f" and {s['pr_cpu'] / steady_cpu:.0f}×." if steady_cpu else ".")
        + f" Presidio's engine load, not in its time: {s['pr_load']:.2f} s (spaCy pipeline and "
        f"recognizers), after {s['pr_import']:.2f} s of Python imports.",
        "",
    ]
    return lines


def plain(lines):
    out = []
    for l in lines:
        out.append(l.replace("**", "").replace("`", ""))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the tollgate binary")
    ap.add_argument("--corpus", help="corpus from eval/guard/corpus.py")
    ap.add_argument("--split", default="test", choices=["test", "train", "all"])
    ap.add_argument("--independent", nargs="?", const=os.path.join(os.path.dirname(HERE), "independent"),
                    help="also the independent corpus (folder with gold.jsonl and settings.yaml; "
                         "default eval/guard/independent)")
    ap.add_argument("--model", default=os.path.join(DEFAULT_VENV, "models", "en_blank_lookup"),
                    help="spaCy pipeline for Presidio: a folder or an installed package name")
    ap.add_argument("--recognizers", default="all", choices=["all", "compared"],
                    help="Presidio's default English registry plus the compared types' recognizers "
                         "(all), or only the latter (compared)")
    ap.add_argument("--threshold", type=float, default=0.5,
                    help="Presidio score threshold for the extra column (its default is 0)")
    ap.add_argument("--reps", type=int, default=3, help="timed runs of each product (medians quoted)")
    ap.add_argument("--tollgate-repeat", type=int, default=20,
                    help="also time Tollgate over the corpus repeated this many times in one process, "
                         "for its steady-state speed without start-up (1: skip)")
    ap.add_argument("--markdown", help="write the Markdown report here")
    ap.add_argument("--examples", type=int, default=0, help="print this many misses per type and product")
    args = ap.parse_args()
    if not args.corpus and not args.independent:
        ap.error("give --corpus and/or --independent")
    if args.reps < 1:
        ap.error("--reps must be at least 1")

    datasets = []
    if args.corpus:
        samples = [json.loads(l) for l in open(args.corpus, encoding="utf-8")]
        if args.split != "all":
            samples = [s for s in samples if s["split"] == args.split]
        datasets.append((f"Seeded corpus (`eval/guard/corpus.py`), {args.split} split", samples,
                         guard_score.SETTINGS))
    if args.independent:
        gold = os.path.join(args.independent, "gold.jsonl")
        if not os.path.exists(gold):
            sys.exit(f"{gold} is missing: run `python3 gen.py` in {args.independent}")
        samples = [json.loads(l) for l in open(gold, encoding="utf-8")]
        with open(os.path.join(args.independent, "settings.yaml"), encoding="utf-8") as f:
            policy = f.read()
        datasets.append(("Independent corpus (`eval/guard/independent`), all samples", samples, policy))

    load_before, cpu_before = os.getloadavg(), cpu_snapshot()
    body, engine_cache, recognizer_names = [], {}, []
    for name, samples, policy in datasets:
        print(f"== {name}: {len(samples)} texts", file=sys.stderr)
        regions = read_phone_regions(policy)
        key = tuple(regions or ())
        if key not in engine_cache:
            engine_cache[key] = build_presidio(args.model, args.recognizers, regions)
        engine, t_import, t_load, recognizer_names = engine_cache[key]
        tollgate = Tollgate(args.bin, samples, policy, args.tollgate_repeat)
        runs = collections.defaultdict(list)
        for _ in range(args.reps):  # interleaved: a busy moment of the machine hits both products
            for k, v in tollgate.rep().items():
                runs[k].append(v)
            timing, pr_found = presidio_rep(engine, samples)
            for k, v in timing.items():
                runs[k].append(v)
        tg_found = tollgate.found()
        pr_at = presidio_at(engine, samples, args.threshold)
        tg, pr_ = evaluate(samples, tg_found), evaluate(samples, pr_found)
        pat = evaluate(samples, pr_at)
        speed = {"reps": args.reps, "mb": utf8_mb(samples), "repeat": args.tollgate_repeat,
                 "pr_load": t_load, "pr_import": t_import}
        for k, v in runs.items():
            if v and v[0] is not None:
                speed[k], speed[k + "_all"] = statistics.median(v), v
        body += dataset_report(name, samples, tg, pr_, pat, args.threshold, speed)
        if args.examples:
            for who, ev in (("Tollgate", tg), ("Presidio", pr_)):
                for t in sorted(set(ev["fnx"]) | set(ev["fpx"])):
                    for kind, ex in (("FN", ev["fnx"][t]), ("FP", ev["fpx"][t])):
                        for e in ex[:args.examples]:
                            print(f"  {who} {kind} {t}: {e!r}", file=sys.stderr)

    cpu_after = cpu_snapshot()
    others = (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])
    wall = cpu_after[2] - cpu_before[2]
    pv = importlib.metadata.version("presidio-analyzer")
    import spacy
    model_desc = args.model
    try:
        nlp = spacy.load(args.model)
        meta = nlp.meta
        pipes = ", ".join(nlp.pipe_names) or "none"
        model_desc = f"`{meta.get('lang')}_{meta.get('name')}` v{meta.get('version')} (pipes: {pipes}" \
                     + ("; no NER)" if "ner" not in nlp.pipe_names else ")")
    except Exception:  # noqa: BLE001 - only a description
        pass
    head = [
        "Command: `" + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:]) + "`",
        "",
        f"Date: {datetime.date.today().isoformat()}. Machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; 1-minute load average {load_before[0]:.2f} before the run, "
        f"{os.getloadavg()[0]:.2f} after; other processes used {max(others, 0):.0f} CPU-seconds of the "
        f"machine's {wall * (os.cpu_count() or 1):.0f} during the run ({wall:.0f} s wall).",
        f"Tollgate: `{tollgate_version(args.bin)}. Presidio: presidio-analyzer {pv}, spaCy {spacy.__version__}, "
        f"NLP pipeline {model_desc}.",
        f"Presidio recognizers ({args.recognizers}): {', '.join(recognizer_names)}.",
        "",
        "Types compared (our name = Presidio's unless given): "
        + ", ".join(t if p == t else f"{t} (= {p})" for t, (p, _) in COMPARED.items()) + ".",
        "",
        "Left out:",
        "",
    ] + [f"- {k}: {v}." for k, v in LEFT_OUT.items()] + [""]
    text_lines = head + body
    print(plain(text_lines))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write("\n".join(text_lines).rstrip() + "\n")


if __name__ == "__main__":
    main()
