"""Hard-negative samples: texts that contain NO personal data or secrets but plenty of look-alikes."""
import json, uuid, base64, hashlib
import ids
from ids import R, rd, rs

HEX = "0123456789abcdef"


def uid():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def ts_iso():
    return f"2024-{R.randint(1,12):02d}-{R.randint(1,28):02d}T{R.randint(0,23):02d}:{R.randint(0,59):02d}:{R.randint(0,59):02d}Z"


def isbn13():
    b = "978" + rd(9)
    s = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(b))
    c = (10 - s % 10) % 10
    n = b + str(c)
    return f"{n[:3]}-{n[3]}-{n[4:7]}-{n[7:12]}-{n[12]}"


def ean13():
    b = R.choice(["400", "401", "500", "590", "729", "800", "840"]) + rd(9)
    s = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(b))
    return b + str((10 - s % 10) % 10)


def ups():
    return "1Z" + rs(6, "ABCDEFGHJKLMNPRSTUVWXYZ0123456789") + rd(10)


# ------- individual look-alike items: each returns (string, category)
def item():
    c = R.choice(ITEMS)
    return c()


def i_order():
    return R.choice([f"#{rd(6)}", f"ORD-2024-{rd(6)}", f"{rd(3)}-{rd(7)}-{rd(7)}", f"SO{rd(8)}", f"PO-{rd(5)}", f"4500{rd(6)}"]), "order_no"


def i_tracking():
    return R.choice([ups(), f"{rd(4)} {rd(4)} {rd(4)}", f"9400 {rd(4)} {rd(4)} {rd(4)} {rd(4)} {rd(2)}", f"JJD{rd(18)}", f"RR{rd(9)}DE", f"00{rd(16)}"]), "tracking"


def i_uuid():
    return uid(), "uuid"


def i_hash():
    b = bytes(R.getrandbits(8) for _ in range(32))
    return R.choice([hashlib.sha1(b).hexdigest(), hashlib.sha256(b).hexdigest(), hashlib.md5(b).hexdigest(), "sha256:" + hashlib.sha256(b).hexdigest()]), "hash"


def i_version():
    return R.choice([f"v{R.randint(0,9)}.{R.randint(0,40)}.{R.randint(0,20)}", f"{R.randint(1,5)}.{R.randint(0,20)}.{R.randint(0,9)}-rc.{R.randint(1,4)}",
                     f"10.0.{R.randint(17000, 22631)}.{R.randint(1000, 4000)}", f"{R.randint(1,9)}.{R.randint(0,9)}.{R.randint(0,9)}.{R.randint(0,99)}",
                     f"{R.randint(100,130)}.0.{R.randint(5000,6500)}.{R.randint(10,200)}"]), "version"


def i_ts():
    return R.choice([ts_iso(), str(R.randint(1690000000, 1730000000)), str(R.randint(1690000000000, 1730000000000)),
                     f"Thu, {R.randint(1,28)} Mar 2024 {R.randint(0,23):02d}:{R.randint(0,59):02d}:{R.randint(0,59):02d} +0000",
                     f"{R.randint(1,28):02d}/{R.randint(1,12):02d}/2024 {R.randint(0,23):02d}:{R.randint(0,59):02d}"]), "timestamp"


def i_price():
    return R.choice([f"${R.randint(1,9)},{R.randint(100,999)}.{R.randint(0,99):02d}", f"€ {R.randint(1,999)},{R.randint(0,99):02d}", f"£{R.randint(1,500)}.{R.randint(0,99):02d}",
                     f"USD {R.randint(10,99)},{R.randint(100,999)}.{R.randint(0,99):02d}", f"₹ {R.randint(1,99)},{R.randint(100,999)}", f"{R.randint(1,999)} kr"]), "price"


def i_invoice():
    return R.choice([f"INV-2024-{rd(6)}", f"RE-2024/{rd(4)}", f"Rechnung Nr. 2024-{rd(5)}", f"FAC-{rd(8)}", f"F{rd(10)}"]), "invoice"


def i_luhn_bad():
    n = ids.luhn_invalid_16()
    return (R.choice([" ".join(n[i:i + 4] for i in range(0, 16, 4)), n])), "luhn_invalid_16"


def i_badphone():
    return R.choice([f"+1 (1{rd(2)}) {rd(3)}-{rd(4)}", f"+1 0{rd(2)} {rd(3)} {rd(4)}", f"000-000-{rd(4)}", f"+999 {rd(4)} {rd(4)}",
                     f"+44 0{rd(1)}{rd(3)} 000 000", f"(012) {rd(3)}-{rd(4)}", f"+49 0000 {rd(6)}", f"+1 555 0{rd(2)}"]), "invalid_phone"


def i_b64():
    n = R.choice([16, 24, 32, 48])
    b = base64.b64encode(bytes(R.getrandbits(8) for _ in range(n))).decode()
    return R.choice([b, "sha384-" + base64.b64encode(bytes(R.getrandbits(8) for _ in range(48))).decode(), "sha512-" + base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode()]), "base64"


def i_product():
    return R.choice([f"SKU WH-{rd(4)}XM{R.randint(2,5)}-BLK", f"EAN {ean13()}", f"P/N 90-MB{rs(4,'0123456789ABCDEF')}-M0EAY0", f"model A{rd(4)}", f"ASIN B0{rs(8, 'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789')}"]), "product_code"


def i_coord():
    return R.choice([f"{R.uniform(-60, 70):.4f}, {R.uniform(-170, 170):.4f}", f"lat={R.uniform(35, 60):.6f}&lng={R.uniform(-10, 30):.6f}",
                     f"{R.randint(0,89)}°{R.randint(0,59)}′{R.randint(0,59)}″N {R.randint(0,179)}°{R.randint(0,59)}′{R.randint(0,59)}″W"]), "coordinates"


def i_isbn():
    return "ISBN " + isbn13(), "isbn"


def i_port():
    return R.choice([f"port {R.choice([22, 443, 5432, 6379, 8080, 8443, 9092, 27017])}", f":{R.randint(1024, 65535)}"]), "port"


def i_duration():
    return R.choice([f"{R.randint(1,9)}h{R.randint(0,59)}m{R.randint(0,59)}s", f"PT{R.randint(1,9)}H{R.randint(0,59)}M", f"00:{R.randint(0,59):02d}:{R.randint(0,59):02d}.{R.randint(0,999):03d}",
                     f"p99={R.randint(20,900)}ms"]), "duration"


def i_stripe_obj():
    return R.choice(["ch_3", "cus_", "pi_3", "in_1", "sub_1", "evt_1"]) + rs(22), "stripe_object_id"


def i_aws_res():
    return R.choice([f"arn:aws:iam::{rd(12, '123456789')}:role/deploy", f"ami-0{rs(16, HEX)}", f"i-0{rs(16, HEX)}", f"vpc-{rs(8, HEX)}", f"s3://acme-logs-{rd(4)}/2024/03/"]), "aws_resource"


def i_masked():
    return R.choice([f"**** **** **** {rd(4)}", f"XXX-XX-{rd(4)}", f"card ending in {rd(4)}", f"DE** **** **** **** **{rd(2)} {rd(2)}"]), "masked"


def i_npm():
    return R.choice([f"lodash@4.17.{R.randint(10,21)}", f"@types/node@20.{R.randint(1,11)}.{R.randint(0,9)}", f"nginx:1.{R.randint(20,27)}.{R.randint(0,3)}-alpine", f"react@18.{R.randint(0,3)}.{R.randint(0,2)}"]), "package_version"


def i_id_numbers():
    # random digit ids of national-id-like lengths, in non-personal contexts
    n = R.choice([9, 10, 11, 12])
    return rd(n, "123456789"), f"digits{n}"


ITEMS = [i_order, i_tracking, i_uuid, i_hash, i_version, i_ts, i_price, i_invoice, i_luhn_bad, i_badphone, i_b64, i_product, i_coord, i_isbn,
         i_port, i_duration, i_stripe_obj, i_aws_res, i_masked, i_npm, i_id_numbers]


# ------- full negative documents by format
def n_log(cats):
    lines = []
    for _ in range(R.randint(4, 10)):
        o, c1 = i_order()
        d, c2 = i_duration()
        h, c3 = i_hash()
        cats += [c1, c2, c3]
        lines.append(R.choice([
            f"{ts_iso()} INFO  [orders] order={o} request_id={uid()} status=200 latency={d}",
            f"{ts_iso()} DEBUG [build] artifact digest={h} size={R.randint(1000, 99999999)}B",
            f"{ts_iso()} WARN  [scheduler] job {uid()} retry {R.randint(1,5)}/5 after {d}",
            f"{ts_iso()} INFO  [http] listening on {i_port()[0]} (pid {R.randint(100, 65000)}) version={i_version()[0]}",
            f"[{ts_iso()}] worker.{R.randint(1,16)} processed batch {rd(9,'123456789')} rows={R.randint(1,10**6)} in {d}",
        ]))
    return "\n".join(lines)


def n_csv(cats, sep=","):
    hdr = ["order_id", "sku", "qty", "unit_price", "currency", "tracking_no", "shipped_at", "status"]
    lines = [sep.join(hdr)]
    for _ in range(R.randint(3, 7)):
        o, t, p = i_order()[0], i_tracking()[0], f"{R.randint(1,999)}.{R.randint(0,99):02d}"
        cats += ["order_no", "tracking"]
        lines.append(sep.join([o, f"SKU-{rs(3, 'ABCDEFGHKLMNPRSTUVWXYZ')}-{rd(4)}", str(R.randint(1, 12)), p, R.choice(["EUR", "USD", "GBP", "INR", "SEK"]), t, ts_iso(), R.choice(["shipped", "delivered", "returned"])]))
    return "\n".join(lines) + "\n"


def n_json(cats):
    d = {"id": i_stripe_obj()[0], "object": "charge", "amount": R.randint(100, 99999), "currency": R.choice(["usd", "eur", "gbp"]), "created": int(i_ts()[0]) if False else R.randint(1690000000, 1730000000),
         "metadata": {"order_id": i_order()[0], "sku": i_product()[0], "cart_hash": i_hash()[0]}, "request": {"id": "req_" + rs(14), "idempotency_key": uid()},
         "payment_method_details": {"card": {"brand": R.choice(["visa", "mastercard", "amex"]), "last4": rd(4), "exp_month": R.randint(1, 12), "exp_year": R.randint(2025, 2030)}},
         "receipt_number": f"{rd(4)}-{rd(4)}", "livemode": True}
    cats += ["stripe_object_id", "order_no", "product_code", "hash", "uuid"]
    if R.random() < 0.5:
        it, c = item()
        d["metadata"]["note"] = it
        cats.append(c)
    return json.dumps(d, indent=R.choice([None, 2]), ensure_ascii=False)


def n_env(cats):
    lines = ["# non-secret runtime configuration", "NODE_ENV=production", f"PORT={R.choice([3000, 8080, 8000])}", f"APP_VERSION={i_version()[0]}",
             f"DATABASE_HOST=db.internal.acme.io", "DATABASE_PORT=5432", f"DATABASE_URL=postgres://db.internal.acme.io:5432/orders",
             f"REDIS_URL=redis://cache-01.redis.internal:6379/0", f"BUILD_SHA={i_hash()[0]}", f"REQUEST_TIMEOUT={i_duration()[0]}",
             "STRIPE_PUBLISHABLE_MODE=live", "FEATURE_FLAGS=checkout_v2,dark_mode", f"DEFAULT_LOCALE={R.choice(['en-GB', 'de-DE', 'fr-FR'])}", "API_KEY=${API_KEY}", "SECRET_KEY=<set-in-secrets-manager>"]
    cats += ["version", "hash", "duration", "db_url_no_creds", "placeholder"]
    return "\n".join(R.sample(lines, R.randint(6, len(lines)))) + "\n"


def n_shell(cats):
    cmds = [f"git checkout {rs(7, HEX)}", f"git tag v{R.randint(1,5)}.{R.randint(0,20)}.{R.randint(0,9)}", f"docker pull nginx@sha256:{rs(64, HEX)}",
            f"kubectl rollout restart deployment/api -n prod", f"npm install {i_npm()[0]}", f"curl -s https://api.github.com/repos/acme/api/releases/latest | jq .tag_name",
            f"aws s3 cp ./dist s3://acme-static-{rd(4)}/ --recursive", f"ssh-keygen -lf ~/.ssh/id_ed25519.pub", f"openssl rand -hex 16 > /dev/null",
            f"sleep {R.randint(1,300)}", f"kill -9 {R.randint(1000, 65000)}", f"python3 -m http.server {R.randint(8000, 9000)}", f"sha256sum release-{i_version()[0]}.tar.gz",
            f"ping -c 1 localhost", f"date -d @{R.randint(1690000000, 1730000000)}"]
    cats += ["hash", "version", "timestamp", "port"]
    start = R.randint(100, 900)
    return "\n".join(f"  {start + k}  {c}" for k, c in enumerate(R.sample(cmds, R.randint(5, 10))))


def n_code(cats):
    lines = [f'VERSION = "{i_version()[0]}"', f'BUILD_HASH = "{i_hash()[0]}"', f"MAX_RETRIES = {R.randint(1,10)}", f"TIMEOUT_MS = {R.randint(100, 60000)}",
             f'DEFAULT_REGION = "eu-central-1"', f'EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
             f'PHONE_REGEX = r"^\\+?[1-9]\\d{{1,14}}$"', f'ISBN_SAMPLE = "{isbn13()}"', f'TEST_UUID = "{uid()}"', f"MAGIC = 0x{rs(8, HEX)}",
             f"PRIME = {R.choice([2147483647, 4294967291, 1000000007, 998244353])}", f'COLOR_PRIMARY = "#{rs(6, HEX)}"',
             f'SRI = "{i_b64()[0]}"', f"EPOCH = {R.randint(1690000000, 1730000000)}", f'PLACEHOLDER_CARD = "{i_masked()[0]}"', f'API_BASE = "https://api.acme-corp.com/v2"']
    cats += ["version", "hash", "isbn", "uuid", "base64", "timestamp", "masked"]
    return "\n".join(R.sample(lines, R.randint(6, 12))) + "\n\ndef backoff(n):\n    return min(2 ** n * 0.1, 30.0)\n"


def n_md(cats):
    lines = ["## Benchmark results", "", "| Build | Commit | p50 | p99 | Throughput | Date |", "|---|---|---|---|---|---|"]
    for _ in range(R.randint(2, 6)):
        lines.append(f"| {i_version()[0]} | `{rs(7, HEX)}` | {R.randint(1,50)}ms | {R.randint(50,900)}ms | {R.randint(1000, 90000):,} req/s | {ts_iso()[:10]} |")
    cats += ["version", "hash", "timestamp"]
    if R.random() < 0.5:
        it, c = item()
        lines.append(f"\n_Note: reference {it}_")
        cats.append(c)
    return "\n".join(lines)


def n_html(cats):
    p, c = i_badphone()
    cats += [c, "price", "product_code"]
    return "\n".join(['<form action="/cart/add" method="post">', f'  <input type="hidden" name="product_id" value="{rd(8)}">',
                      f'  <input type="hidden" name="variant" value="{i_product()[0]}">', f'  <span class="price">{i_price()[0]}</span>',
                      '  <label for="phone">Phone</label>', f'  <input type="tel" id="phone" name="phone" placeholder="{p}">',
                      '  <label for="email">Email</label>', '  <input type="email" id="email" name="email" placeholder="you@yourdomain">',
                      f'  <input type="number" name="qty" min="1" max="{R.randint(5, 99)}" value="1">', '  <button>Add to cart</button>', "</form>",
                      f'<script src="/static/app.{rs(8, HEX)}.js" integrity="{i_b64()[0]}" crossorigin="anonymous"></script>'])


def n_sql(cats):
    rows = []
    for k in range(R.randint(2, 6)):
        rows.append(f"({k + 1},'{i_product()[0]}','{R.choice(['Wireless headphones', 'USB-C cable 2m', 'Espresso beans 1kg', 'Desk lamp'])}',{R.randint(1,999)}.{R.randint(0,99):02d},'{ean13()}','{ts_iso()[:19].replace('T', ' ')}')")
    cats += ["product_code", "price", "ean", "timestamp"]
    return "-- Dump of table products\nINSERT INTO `products` (`id`,`sku`,`title`,`price`,`ean`,`updated_at`) VALUES\n" + ",\n".join(rows) + ";"


def n_k8s(cats):
    cats += ["hash", "version", "port"]
    return "\n".join(["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: web", "  labels:", f"    app.kubernetes.io/version: \"{i_version()[0]}\"",
                      "spec:", f"  replicas: {R.randint(1, 12)}", "  template:", "    spec:", "      containers:", "        - name: web",
                      f"          image: ghcr.io/acme/web@sha256:{rs(64, HEX)}", "          ports:", f"            - containerPort: {R.choice([80, 8080, 3000])}",
                      "          resources:", f"            limits: {{cpu: \"{R.randint(1,4)}\", memory: {R.choice([256, 512, 1024])}Mi}}",
                      "          env:", "            - name: DB_HOST", "              value: db.prod.svc.cluster.local", "            - name: DB_PASSWORD",
                      "              valueFrom:", "                secretKeyRef: {name: db, key: password}"])


def n_diff(cats):
    cats += ["version", "base64"]
    a, b = f"{R.randint(1,5)}.{R.randint(0,20)}.{R.randint(0,9)}", f"{R.randint(1,5)}.{R.randint(0,20)}.{R.randint(0,9)}"
    return "\n".join(["diff --git a/package-lock.json b/package-lock.json", f"index {rs(7, HEX)}..{rs(7, HEX)} 100644", "--- a/package-lock.json", "+++ b/package-lock.json",
                      "@@ -1021,9 +1021,9 @@", '     "node_modules/lodash": {', f'-      "version": "{a}",', f'+      "version": "{b}",',
                      f'-      "resolved": "https://registry.npmjs.org/lodash/-/lodash-{a}.tgz",', f'+      "resolved": "https://registry.npmjs.org/lodash/-/lodash-{b}.tgz",',
                      f'-      "integrity": "sha512-{base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode()}",',
                      f'+      "integrity": "sha512-{base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode()}",', '       "dev": true'])


def n_stack(cats):
    cats += ["uuid"]
    return "\n".join(["Exception in thread \"pool-3-thread-7\" java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"value\" is null",
                      f"\tat com.acme.orders.OrderService.process(OrderService.java:{R.randint(20, 900)})", f"\tat com.acme.orders.Worker.run(Worker.java:{R.randint(20, 200)})",
                      f"\tat java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:{R.randint(1100, 1200)})",
                      f"Caused by: com.acme.NotFoundException: order {i_order()[0]} not found (trace {uid()})", f"\t... {R.randint(3, 40)} more"])


CHAT_NEG = {
    "en": ["Hi, where is my parcel? Tracking number {t}.", "Order {o} arrived damaged, total was {p}.", "Invoice {i} shows the wrong VAT.", "Can I change the delivery slot to {d}?",
           "The app crashes on version {v}.", "I got error code {n} when paying."],
    "de": ["Hallo, wo ist mein Paket? Sendungsnummer {t}.", "Bestellung {o} kam beschädigt an, Betrag {p}.", "Rechnung {i} hat die falsche MwSt.", "Die App stürzt in Version {v} ab."],
    "fr": ["Bonjour, où est mon colis ? Numéro de suivi {t}.", "La commande {o} est arrivée abîmée ({p}).", "La facture {i} est incorrecte."],
    "es": ["Hola, ¿dónde está mi paquete? Seguimiento {t}.", "El pedido {o} llegó roto, importe {p}.", "La factura {i} tiene un error."],
    "it": ["Buongiorno, dov'è il mio pacco? Tracking {t}.", "L'ordine {o} è arrivato danneggiato ({p}).", "La fattura {i} è sbagliata."],
    "nl": ["Hoi, waar is mijn pakket? Track & trace {t}.", "Bestelling {o} kwam beschadigd aan ({p})."],
    "pl": ["Dzień dobry, gdzie jest moja paczka? Numer przesyłki {t}.", "Zamówienie {o} przyszło uszkodzone ({p})."],
    "sv": ["Hej, var är mitt paket? Spårningsnummer {t}.", "Order {o} kom trasig ({p})."],
}


def n_chat(cats):
    lang = R.choice(list(CHAT_NEG))
    out = []
    for _ in range(R.randint(2, 4)):
        tmpl = R.choice(CHAT_NEG[lang])
        vals = {"t": i_tracking()[0], "o": i_order()[0], "p": i_price()[0], "i": i_invoice()[0], "d": ts_iso()[:10], "v": i_version()[0], "n": rd(R.choice([9, 10, 11, 12]), "123456789")}
        for k in "topidvn":
            if "{" + k + "}" in tmpl:
                cats.append({"t": "tracking", "o": "order_no", "p": "price", "i": "invoice", "d": "date_not_dob", "v": "version", "n": "digits"}[k])
        out.append(f"[{R.randint(0,23):02d}:{R.randint(0,59):02d}] {R.choice(['Customer', 'Kunde', 'Client', 'Cliente', 'Klant', 'Klient', 'Kund'])}: " + tmpl.format(**vals))
        out.append(f"[{R.randint(0,23):02d}:{R.randint(0,59):02d}] Agent: " + R.choice(["Thanks, checking now.", "Danke, ich prüfe das.", "Merci, je regarde.", "Gracias, lo miro."]))
    if R.random() < 0.5:
        it, c = item()
        out.append(f"[{R.randint(0,23):02d}:{R.randint(0,59):02d}] Agent: reference for your case: {it}")
        cats.append(c)
    return "\n".join(out)


def n_email(cats):
    it1, c1 = item()
    it2, c2 = item()
    cats += [c1, c2, "order_no", "tracking", "price"]
    return "\n".join(["From: Acme Shop Notifications", "Subject: Your order has shipped", "", "Hello,", "",
                      f"Good news! Order {i_order()[0]} ({i_price()[0]}) left our warehouse on {ts_iso()[:10]}.",
                      f"Carrier: {R.choice(['UPS', 'DHL', 'FedEx', 'PostNL', 'La Poste'])} — tracking {i_tracking()[0]}.", f"Item reference: {it1}", f"Batch: {it2}", "",
                      "Estimated delivery: 2-4 business days.", "", "— The Acme team", "You received this email because you placed an order."])


def n_misc(cats):
    parts = []
    for _ in range(R.randint(3, 6)):
        it, c = item()
        cats.append(c)
        parts.append(R.choice(["ref", "value", "id", "code", "see", "batch", "build", "item"]) + ": " + it)
    return R.choice(["Release notes\n", "Inventory sync summary\n", "Notes from standup\n", ""]) + "\n".join(parts)


NEG_FORMATS = {"log": n_log, "csv": n_csv, "tsv": lambda c: n_csv(c, "\t"), "json": n_json, "env": n_env, "shell": n_shell, "code": n_code, "markdown": n_md,
               "html": n_html, "sql": n_sql, "k8s": n_k8s, "gitdiff": n_diff, "stack": n_stack, "chat": n_chat, "email": n_email, "misc": n_misc}


def negative(i):
    fmts = list(NEG_FORMATS)
    fmt = fmts[i % len(fmts)] if i < 3 * len(fmts) else R.choice(fmts + ["misc", "misc", "chat", "log", "json"])
    cats = []
    text = NEG_FORMATS[fmt](cats)
    return text, sorted(set(cats)), fmt
