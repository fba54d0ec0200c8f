"""A labelled corpus for the guard, generated from a seed.

Each sample is a text made from a template (a chat message, a JSON body, a CSV export, a log line,
source code, an e-mail) with values generated valid (checksums right) and their character spans
labelled. Hard negatives — numbers and tokens that look like personal data but are not — have no
spans. Templates are split: about a third are held out, and the figures are computed on those only,
so a recognizer tuned to one template's layout does not flatter itself.

    python3 eval/guard/corpus.py --seed 7 --per-template 40 > corpus.jsonl

Each line: {"id", "text", "spans": [{"type", "start", "end"}], "template", "split", "negative"}.
Offsets are Unicode code points (Python string indices).
"""

import argparse
import base64
import hashlib
import json
import random
import string
import sys
import uuid

# --- values, generated valid ---------------------------------------------------------------------


def luhn_digit(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def card(r):
    prefix, length = r.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15),
                               ("37", 15), ("6011", 16), ("35", 16), ("4", 13), ("65", 16)])
    if prefix == "35":
        prefix = str(r.randint(3528, 3589))
    body = prefix + "".join(r.choice(string.digits) for _ in range(length - len(prefix) - 1))
    n = body + luhn_digit(body)
    if len(set(n)) == 1:
        return card(r)
    style = r.choice(["plain", "space", "dash", "space"])
    if style == "plain" or length not in (15, 16):
        return n
    sep = " " if style == "space" else "-"
    if length == 16:
        return sep.join(n[i:i + 4] for i in range(0, 16, 4))
    return sep.join([n[:4], n[4:10], n[10:]])


IBAN_FORMATS = {"DE": (22, "n"), "GB": (22, "GB"), "FR": (27, "n"), "ES": (24, "n"), "IT": (27, "IT"),
                "NL": (18, "NL"), "BE": (16, "n"), "CH": (21, "n"), "PL": (28, "n"), "AT": (20, "n")}


def iban(r):
    cc = r.choice(list(IBAN_FORMATS))
    length, kind = IBAN_FORMATS[cc]
    if kind == "GB":
        bban = "".join(r.choice(string.ascii_uppercase) for _ in range(4)) + "".join(
            r.choice(string.digits) for _ in range(14))
    elif kind == "NL":
        bban = "".join(r.choice(string.ascii_uppercase) for _ in range(4)) + "".join(
            r.choice(string.digits) for _ in range(10))
    elif kind == "IT":
        bban = r.choice(string.ascii_uppercase) + "".join(r.choice(string.digits) for _ in range(22))
    else:
        bban = "".join(r.choice(string.digits) for _ in range(length - 4))
    rearranged = bban + cc + "00"
    num = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(num) % 97
    value = f"{cc}{check:02d}{bban}"
    if r.random() < 0.4:
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return value


def ssn(r):
    while True:
        area = r.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def phone(r):
    kind = r.choice(["us_paren", "us_dash", "e164_us", "e164_gb", "e164_de", "e164_fr", "gb_nat",
                     "e164_in", "e164_au", "us_dots", "gb_mobile", "fr_nat", "e164_compact"])
    if kind == "us_dots":
        return f"{r.randint(2, 9)}{r.randint(10, 99)}.{r.randint(2, 9)}{r.randint(10, 99)}.{r.randint(1000, 9999)}"
    if kind == "gb_mobile":
        return f"07{r.randint(100, 999)} {r.randint(100000, 999999)}"
    if kind == "fr_nat":
        return "0" + str(r.randint(1, 7)) + "".join(f" {r.randint(10, 99)}" for _ in range(4))
    if kind == "e164_compact":
        return f"+1{r.randint(2, 9)}{r.randint(10, 99)}{r.randint(2, 9)}{r.randint(10, 99)}{r.randint(1000, 9999)}"
    a, b = r.randint(2, 9), r.randint(2, 9)
    if kind == "us_paren":
        return f"({a}{r.randint(10, 99)}) {b}{r.randint(10, 99)}-{r.randint(1000, 9999)}"
    if kind == "us_dash":
        return f"{a}{r.randint(10, 99)}-{b}{r.randint(10, 99)}-{r.randint(1000, 9999)}"
    if kind == "e164_us":
        return f"+1 {a}{r.randint(10, 99)} {b}{r.randint(10, 99)} {r.randint(1000, 9999)}"
    if kind == "e164_gb":
        return f"+44 20 {r.randint(7000, 8999)} {r.randint(1000, 9999)}"
    if kind == "e164_de":
        return f"+49 30 {r.randint(1000000, 99999999)}"
    if kind == "e164_fr":
        return "+33 " + str(r.randint(1, 9)) + "".join(f" {r.randint(10, 99)}" for _ in range(4))
    if kind == "e164_in":
        return f"+91 {r.randint(70000, 99999)} {r.randint(10000, 99999)}"
    if kind == "e164_au":
        return f"+61 4{r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}"
    return f"020 {r.randint(7000, 8999)} {r.randint(1000, 9999)}"


FIRST = ["jane", "john", "maria", "wei", "amir", "olga", "li", "sam", "noor", "pierre", "ana", "kofi"]
LAST = ["doe", "smith", "garcia", "chen", "khan", "ivanova", "muller", "okafor", "rossi", "silva"]
DOMAINS = ["gmail.com", "outlook.com", "acme.co.uk", "mail.example.de", "corp.io", "uni.edu",
           "firma.de", "company.fr", "yahoo.co.jp", "startup.ai"]


def email(r):
    user = r.choice([f"{r.choice(FIRST)}.{r.choice(LAST)}", f"{r.choice(FIRST)}{r.randint(1, 99)}",
                     f"{r.choice(FIRST)}_{r.choice(LAST)}+news", r.choice(FIRST)])
    return f"{user}@{r.choice(DOMAINS)}"


def ipv4(r):
    return ".".join(str(r.randint(1, 254)) for _ in range(4))


def ipv6(r):
    groups = [f"{r.randint(0, 0xffff):x}" for _ in range(8)]
    if r.random() < 0.5:
        return "2001:db8::" + ":".join(groups[:3])
    return ":".join(groups)


def mac(r):
    sep = r.choice([":", "-"])
    return sep.join(f"{r.randint(0, 255):02X}" for _ in range(6))


def password(r):
    return "".join(r.choice(string.ascii_letters + string.digits) for _ in range(r.randint(8, 16)))


def url_creds(r):
    scheme = r.choice(["https", "http", "ftp", "sftp"])
    host = r.choice(["files.example.com", "10.0.3.4", "intranet.corp.example", "ftp.example.org"])
    return f"{scheme}://{r.choice(FIRST)}:{password(r)}@{host}/reports/{r.randint(1, 99)}.csv"


def connection_string(r):
    scheme = r.choice(["postgres", "postgresql", "mysql", "redis", "mongodb+srv", "mongodb"])
    host = r.choice(["db.internal", "10.0.3.4", "cache.prod.example.com", "cluster0.abcde.mongodb.net"])
    return f"{scheme}://{r.choice(FIRST)}:{password(r)}@{host}:{r.randint(1000, 9999)}/app"


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(raw):
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, rem = divmod(n, 58)
        out = B58[rem] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


def btc(r):
    payload = bytes([r.choice([0, 5])]) + bytes(r.randint(0, 255) for _ in range(20))
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return b58encode(payload + check)


BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32_polymod(values):
    gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1ffffff) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def bech32_address(r):
    hrp = "bc"
    data = [0] + [r.randint(0, 31) for _ in range(32)]
    values = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp] + data
    polymod = bech32_polymod(values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH[d] for d in data + checksum)


def wallet(r):
    return r.choice([btc, bech32_address])(r)


def nhs(r):
    while True:
        d = [r.randint(0, 9) for _ in range(9)]
        s = sum(x * (10 - i) for i, x in enumerate(d))
        c = 11 - s % 11
        if c == 11:
            c = 0
        if c != 10 and len(set(d)) > 1:
            n = "".join(map(str, d)) + str(c)
            return f"{n[:3]} {n[3:6]} {n[6:]}" if r.random() < 0.5 else n


def sin(r):
    body = str(r.randint(1, 7)) + "".join(r.choice(string.digits) for _ in range(7))
    n = body + luhn_digit(body)
    return f"{n[:3]} {n[3:6]} {n[6:]}" if r.random() < 0.5 else n


def nif(r):
    n = r.randint(10000000, 99999999)
    return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"


def pesel(r):
    y, m, d = r.randint(50, 99), r.randint(1, 12), r.randint(1, 28)
    body = f"{y:02d}{m:02d}{d:02d}{r.randint(0, 9999):04d}"
    w = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3]
    s = sum(int(c) * wi for c, wi in zip(body, w))
    return body + str((10 - s % 10) % 10)


VERHOEFF_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
              [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
              [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
              [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
              [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
              [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]
VERHOEFF_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def aadhaar(r):
    body = str(r.randint(2, 9)) + "".join(r.choice(string.digits) for _ in range(10))
    c = 0
    for i, ch in enumerate(reversed(body)):
        c = VERHOEFF_D[c][VERHOEFF_P[(i + 1) % 8][int(ch)]]
    n = body + str(VERHOEFF_INV[c])
    return f"{n[:4]} {n[4:8]} {n[8:]}"


def aws_key(r):
    return "AKIA" + "".join(r.choice(string.ascii_uppercase + "234567") for _ in range(16))


def github_token(r):
    return "ghp_" + "".join(r.choice(string.ascii_letters + string.digits) for _ in range(36))


def slack_token(r):
    return f"xoxb-{r.randint(10**10, 10**11)}-{r.randint(10**11, 10**12)}-" + "".join(
        r.choice(string.ascii_letters + string.digits) for _ in range(24))


def stripe_key(r):
    return "sk_live_" + "".join(r.choice(string.ascii_letters + string.digits) for _ in range(24))


def openai_key(r):
    return "sk-proj-" + "".join(r.choice(string.ascii_letters + string.digits + "_-") for _ in range(48)) + "A1"


def google_key(r):
    return "AIza" + "".join(r.choice(string.ascii_letters + string.digits + "_-") for _ in range(35))


def jwt(r):
    def seg(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    head = seg({"alg": r.choice(["HS256", "RS256"]), "typ": "JWT"})
    body = seg({"sub": str(r.randint(1000, 9999)), "name": r.choice(FIRST), "iat": 1700000000})
    sig = base64.urlsafe_b64encode(bytes(r.randint(0, 255) for _ in range(32))).rstrip(b"=").decode()
    return f"{head}.{body}.{sig}"


def pem(r):
    raw = bytes(r.randint(0, 255) for _ in range(r.choice([120, 300])))
    b = base64.b64encode(raw).decode()
    lines = "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
    kind = r.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----"


def dob(r):
    y, m, d = r.randint(1940, 2005), r.randint(1, 12), r.randint(1, 28)
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"]
    return r.choice([f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d} {months[m - 1]} {y}",
                     f"{months[m - 1]} {d}, {y}", f"{d:02d}.{m:02d}.{y}"])


GEN = {
    "CREDIT_CARD": card, "IBAN_CODE": iban, "US_SSN": ssn, "PHONE_NUMBER": phone,
    "EMAIL_ADDRESS": email, "IP_ADDRESS": lambda r: r.choice([ipv4, ipv6])(r), "MAC_ADDRESS": mac,
    "URL_WITH_CREDENTIALS": url_creds, "SECRET_CONNECTION_STRING": connection_string,
    "CRYPTO_WALLET": wallet, "UK_NHS": nhs, "CA_SIN": sin,
    "ES_NIF": nif, "PL_PESEL": pesel, "IN_AADHAAR": aadhaar, "SECRET_AWS_KEY": aws_key,
    "SECRET_GITHUB_TOKEN": github_token, "SECRET_SLACK_TOKEN": slack_token,
    "SECRET_STRIPE_KEY": stripe_key, "SECRET_OPENAI_KEY": openai_key,
    "SECRET_GOOGLE_API_KEY": google_key, "SECRET_JWT": jwt, "SECRET_PRIVATE_KEY": pem,
    "DATE_OF_BIRTH": dob,
}

# --- hard negatives -------------------------------------------------------------------------------


def luhn_invalid(r):
    while True:
        body = "4" + "".join(r.choice(string.digits) for _ in range(14))
        last = str((int(luhn_digit(body)) + r.randint(1, 9)) % 10)
        n = body + last
        return " ".join(n[i:i + 4] for i in range(0, 16, 4)) if r.random() < 0.5 else n


NEG = {
    "LUHN_INVALID": luhn_invalid,
    "ORDER": lambda r: f"{r.choice(['ORD', 'INV', 'PO'])}-{r.randint(100000, 99999999)}",
    "UUID": lambda r: str(uuid.UUID(int=r.getrandbits(128))),
    "SHA": lambda r: "".join(r.choice("0123456789abcdef") for _ in range(40)),
    "VERSION": lambda r: f"{r.randint(0, 12)}.{r.randint(0, 30)}.{r.randint(0, 99)}",
    "TS": lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z",
    "PRICE": lambda r: f"{r.randint(1, 9999)}.{r.randint(0, 99):02d}",
    "QTY": lambda r: str(r.randint(1, 500)),
    # NANP-shaped but starting with 1: no national format of any region allows it (a leading 0
    # would be a plausible number in Germany or the UK).
    "BAD_PHONE": lambda r: f"1{r.randint(10, 99)}-{r.randint(100, 999)}-{r.randint(1000, 9999)}",
    "B64": lambda r: base64.b64encode(bytes(r.randint(0, 255) for _ in range(48))).decode(),
    "HEX": lambda r: "0x" + "".join(r.choice("0123456789abcdef") for _ in range(8)),
    "ZIP": lambda r: f"{r.randint(10000, 99999)}",
    "ACCOUNT": lambda r: f"ACC{r.randint(10**7, 10**8)}",
    "TRACKING": lambda r: f"1Z{''.join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16))}",
    "ISBN": lambda r: f"978-{r.randint(0, 9)}-{r.randint(100, 999)}-{r.randint(10000, 99999)}-{r.randint(0, 9)}",
    "IP_VERSIONISH": lambda r: f"v{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 99)}",
    "NAME": lambda r: f"{r.choice(FIRST).title()} {r.choice(LAST).title()}",
    "COORD": lambda r: f"{r.uniform(-80, 80):.4f}",
    "TIME": lambda r: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
    "MS": lambda r: f"{r.randint(1, 99999)}",
}

# --- templates --------------------------------------------------------------------------------------
# {TYPE} is a labelled value; {neg:KIND} an unlabelled hard negative.

POSITIVE = [
    ("chat", "Hi, I'm {neg:NAME}. My email is {EMAIL_ADDRESS} and you can call me on {PHONE_NUMBER}."),
    ("chat", "please charge my card {CREDIT_CARD} exp 09/28 for order {neg:ORDER}"),
    ("chat", "can you wire the refund to {IBAN_CODE}? thanks!"),
    ("chat", "my SSN is {US_SSN}, date of birth {DATE_OF_BIRTH}"),
    ("chat", "Reach me at {EMAIL_ADDRESS} (work) or {PHONE_NUMBER} (mobile)."),
    ("chat", "Summarise this ticket: customer {neg:NAME} <{EMAIL_ADDRESS}> paid with {CREDIT_CARD}, total ${neg:PRICE}."),
    ("json", '{"user": {"email": "{EMAIL_ADDRESS}", "phone": "{PHONE_NUMBER}", "ip": "{IP_ADDRESS}"}, "order": "{neg:ORDER}"}'),
    ("json", '{"payment": {"card_number": "{CREDIT_CARD}", "amount": {neg:PRICE}}, "id": "{neg:UUID}"}'),
    ("json", '{"beneficiary": {"iban": "{IBAN_CODE}", "name": "{neg:NAME}"}, "ref": "{neg:ORDER}"}'),
    ("json", '{"device": {"mac": "{MAC_ADDRESS}", "ip": "{IP_ADDRESS}", "fw": "{neg:VERSION}"}}'),
    ("json", '{"config": {"database_url": "{SECRET_CONNECTION_STRING}", "pool": {neg:QTY}}}'),
    ("json", '{"patient": {"nhs_number": "{UK_NHS}", "dob": "{DATE_OF_BIRTH}"}}'),
    ("csv", "id,name,email,phone\n{neg:QTY},{neg:NAME},{EMAIL_ADDRESS},{PHONE_NUMBER}\n"),
    ("csv", "date,account,iban,amount\n{neg:TS},{neg:ACCOUNT},{IBAN_CODE},{neg:PRICE}\n"),
    ("csv", "employee,sin,start\n{neg:NAME},{CA_SIN},{neg:TS}\n"),
    ("csv", "cliente,nif,telefono\n{neg:NAME},{ES_NIF},{PHONE_NUMBER}\n"),
    ("log", "{neg:TS} INFO auth user={EMAIL_ADDRESS} ip={IP_ADDRESS} req={neg:UUID}"),
    ("log", "{neg:TS} WARN payment failed card={CREDIT_CARD} order={neg:ORDER} latency_ms={neg:QTY}"),
    ("log", "{neg:TS} DEBUG dhcp lease {IP_ADDRESS} to {MAC_ADDRESS} build {neg:SHA}"),
    ("log", "{neg:TS} ERROR connect failed: {SECRET_CONNECTION_STRING} (attempt {neg:QTY})"),
    ("chat", "download the export from {URL_WITH_CREDENTIALS} and summarise it"),
    ("code", 'AWS_ACCESS_KEY_ID = "{SECRET_AWS_KEY}"\nREGION = "eu-west-1"  # v{neg:VERSION}'),
    ("code", "export GITHUB_TOKEN={SECRET_GITHUB_TOKEN}\nexport BUILD={neg:SHA}"),
    ("code", 'client = OpenAI(api_key="{SECRET_OPENAI_KEY}")\nmodel = "gpt-4o"'),
    ("code", 'stripe.api_key = "{SECRET_STRIPE_KEY}"  # order {neg:ORDER}'),
    ("code", "SLACK_BOT_TOKEN={SECRET_SLACK_TOKEN}\nCHANNEL=C{neg:ZIP}"),
    ("code", 'const maps = new Loader({ apiKey: "{SECRET_GOOGLE_API_KEY}", version: "{neg:VERSION}" });'),
    ("code", "curl -H 'Authorization: Bearer {SECRET_JWT}' https://api.example.com/v1/items/{neg:QTY}"),
    ("code", "# deploy key\n{SECRET_PRIVATE_KEY}\n"),
    ("email", "Dear team,\n\nPlease update my bank details to {IBAN_CODE}.\nMy phone is {PHONE_NUMBER}.\n\nBest regards,\n{neg:NAME}"),
    ("email", "Hello,\n\nThe patient (PESEL {PL_PESEL}) was admitted on {neg:TS}.\nContact: {EMAIL_ADDRESS}\n\nThanks"),
    ("email", "Hi,\nmy Aadhaar is {IN_AADHAAR} and my mobile {PHONE_NUMBER}.\nRegards"),
    ("email", "Donations: send BTC to {CRYPTO_WALLET}.\nInvoice {neg:ORDER} attached."),
    ("chat", "Ich heiße {neg:NAME}, meine E-Mail ist {EMAIL_ADDRESS}, Telefon {PHONE_NUMBER}."),
    ("chat", "Je m'appelle {neg:NAME}, mon IBAN est {IBAN_CODE}, né le {DATE_OF_BIRTH}."),
    ("chat", "Mi correo es {EMAIL_ADDRESS} y mi NIF {ES_NIF}."),
    ("chat", "born {DATE_OF_BIRTH}, SSN {US_SSN}, card ending in {neg:QTY}"),
    ("chat", "the server at {IP_ADDRESS} keeps rejecting {EMAIL_ADDRESS}; build {neg:VERSION}"),
    ("chat", "send it to my wallet {CRYPTO_WALLET} please"),
    ("yaml", "db:\n  url: {SECRET_CONNECTION_STRING}\n  admin_email: {EMAIL_ADDRESS}\n  pool: {neg:QTY}\n"),
    ("sql", "INSERT INTO customers (email, phone, card) VALUES ('{EMAIL_ADDRESS}', '{PHONE_NUMBER}', '{CREDIT_CARD}');"),
    ("html", '<p>Contact <a href="mailto:{EMAIL_ADDRESS}">us</a> or call <span class="tel">{PHONE_NUMBER}</span></p>'),
    ("markdown", "| name | iban | since |\n|---|---|---|\n| {neg:NAME} | {IBAN_CODE} | {neg:TS} |\n"),
    ("url", "https://shop.example.com/checkout?email={EMAIL_ADDRESS}&ref={neg:ORDER}&qty={neg:QTY}"),
    ("trace", 'Traceback (most recent call last):\n  File "app.py", line {neg:QTY}, in charge\nValueError: card {CREDIT_CARD} declined for {EMAIL_ADDRESS}'),
    ("chat", "Mein Geburtsdatum ist der {DATE_OF_BIRTH}, meine IBAN {IBAN_CODE}."),
    ("json", '[{"ssn": "{US_SSN}", "email": "{EMAIL_ADDRESS}"}, {"ssn": "{US_SSN}", "email": "{EMAIL_ADDRESS}"}]'),
]

NEGATIVE = [
    ("chat", "Order {neg:ORDER} shipped on {neg:TS}; total ${neg:PRICE} for {neg:QTY} items."),
    ("chat", "the ticket number is {neg:LUHN_INVALID}, can you look it up?"),
    ("log", "{neg:TS} INFO request {neg:UUID} took {neg:QTY} ms (commit {neg:SHA})"),
    ("log", "{neg:TS} DEBUG cache key {neg:B64} size {neg:QTY}"),
    ("code", "version = \"{neg:VERSION}\"\nchecksum = \"{neg:SHA}\"\naddress = {neg:HEX}"),
    ("csv", "sku,qty,price,zip\n{neg:ACCOUNT},{neg:QTY},{neg:PRICE},{neg:ZIP}\n"),
    ("chat", "my old number {neg:BAD_PHONE} no longer works, tracking {neg:TRACKING}"),
    ("email", "Hi {neg:NAME},\n\nThe book (ISBN {neg:ISBN}) costs {neg:PRICE} EUR.\n\nBest"),
    ("json", '{"id": "{neg:UUID}", "version": "{neg:IP_VERSIONISH}", "items": [{neg:QTY}, {neg:QTY}]}'),
    ("chat", "Please summarise the meeting notes from {neg:TS} about release {neg:VERSION}."),
    ("code", "for i in range({neg:QTY}):\n    total += prices[i] * {neg:PRICE}"),
    ("log", "{neg:TS} WARN retry {neg:QTY}/5 for job {neg:ORDER} on node {neg:HEX}"),
    ("log", '{neg:TS} GET /api/v1/orders/{neg:QTY}?page={neg:QTY} 200 {neg:MS}ms ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)"'),
    ("chat", "The meeting is at {neg:TIME} in room {neg:QTY}, dial-in code {neg:ZIP}#"),
    ("csv", "lat,lon,count\n{neg:COORD},{neg:COORD},{neg:QTY}\n{neg:COORD},{neg:COORD},{neg:QTY}\n"),
    ("code", 'assert total({neg:QTY}, {neg:QTY}) == {neg:MS}\nDIGEST = "{neg:SHA}"  # {neg:UUID}'),
    ("chat", "upgrade from {neg:VERSION} to {neg:IP_VERSIONISH} fixed it; see build {neg:ORDER}"),
    ("json", '{"sku": "{neg:ACCOUNT}", "price": {neg:PRICE}, "stock": {neg:QTY}, "barcode": "{neg:ISBN}"}'),
]

PACK_TYPES = {"UK_NHS", "CA_SIN", "ES_NIF", "PL_PESEL", "IN_AADHAAR"}


def fill(r, template):
    """The text of `template` with values, and the labelled spans (code points)."""
    out, spans = "", []
    i = 0
    while i < len(template):
        if template[i] == "{" and "}" in template[i:]:
            j = template.index("}", i)
            slot = template[i + 1:j]
            if slot.startswith("neg:"):
                out += NEG[slot[4:]](r)
                i = j + 1
                continue
            if slot in GEN:
                value = GEN[slot](r)
                spans.append({"type": slot, "start": len(out), "end": len(out) + len(value)})
                out += value
                i = j + 1
                continue
        out += template[i]
        i += 1
    return out, spans


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--per-template", type=int, default=40)
    args = ap.parse_args()
    r = random.Random(args.seed)
    templates = [(k, t, False) for k, t in POSITIVE] + [(k, t, True) for k, t in NEGATIVE]
    n = 0
    for ti, (kind, template, negative) in enumerate(templates):
        # Every third template is held out: the figures are computed on those.
        split = "test" if ti % 3 == 2 else "train"
        for _ in range(args.per_template):
            text, spans = fill(r, template)
            n += 1
            sys.stdout.write(json.dumps({
                "id": f"s{n}", "text": text, "spans": spans, "template": f"{kind}-{ti}",
                "split": split, "negative": negative,
            }, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
