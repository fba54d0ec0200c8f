#!/usr/bin/env python3
"""Generate an independent labelled PII/secret corpus.
Outputs: corpus.jsonl ({"id","text"}) and gold.jsonl ({"id","text","spans":[{type,start,end,sub}],"negative","format","lang","neg_items"}).
stdlib only."""
import json, re, sys, uuid, os
import ids
from ids import R, rd, rs

HERE = os.path.dirname(os.path.abspath(__file__))


class Ent:
    def __init__(self, t, value, sub=None):
        self.t, self.value, self.sub = t, value, sub


class Doc:
    def __init__(self):
        self.ents = []

    def put(self, ent, tr=None):
        self.ents.append((ent, tr))
        return f"\ue000{len(self.ents) - 1}\ue001"

    def finalize(self, s):
        out, spans, pos = [], [], 0
        for k, piece in enumerate(re.split("\ue000(\\d+)\ue001", s)):
            if k % 2 == 0:
                out.append(piece)
                pos += len(piece)
            else:
                ent, tr = self.ents[int(piece)]
                v = tr(ent.value) if tr else ent.value
                spans.append({"type": ent.t, "start": pos, "end": pos + len(v), "sub": ent.sub})
                out.append(v)
                pos += len(v)
        text = "".join(out)
        assert "\ue000" not in text
        return text, spans


def jesc(v):
    return json.dumps(v, ensure_ascii=False)[1:-1]


# ------------------------------------------------------------------ locales
class Loc:
    def __init__(self, lang, cc):
        self.lang, self.cc = lang, cc
        self.us = cc == "US"


LOCS = {"US": Loc("en", "US"), "GB": Loc("en", "GB"), "CA": Loc("en", "CA"), "CAfr": Loc("fr", "CA"), "AU": Loc("en", "AU"),
        "IN": Loc("hi", "IN"), "DE": Loc("de", "DE"), "FR": Loc("fr", "FR"), "ES": Loc("es", "ES"), "IT": Loc("it", "IT"),
        "NL": Loc("nl", "NL"), "PL": Loc("pl", "PL"), "SE": Loc("sv", "SE")}
IBAN_CC = {"US": None, "CA": None, "AU": None, "IN": None, "GB": "GB", "DE": "DE", "FR": "FR", "ES": "ES", "IT": "IT", "NL": "NL", "PL": "PL", "SE": "SE"}


def nlang(loc):
    return "en" if loc.lang == "hi" else loc.lang


def g_phone(loc):
    cc = loc.cc
    if R.random() < 0.1:
        cc = R.choice(["US", "GB", "DE", "FR", "IN", "AU", "ES", "IT", "NL", "SE", "PL", "BR", "JP"])
    for _ in range(30):
        v, c = ids.phone(cc)
        if cc == loc.cc or v.startswith("+"):
            break
    return v, c


def g_iban(loc):
    cc = IBAN_CC.get(loc.cc)
    v, c = ids.iban(cc if cc and R.random() < 0.75 else None)
    return v, c


def g_aws(loc):
    return (ids.aws_id(), "aws_key_id") if R.random() < 0.72 else (ids.aws_secret(), "aws_secret")


def g_ip(loc):
    return ids.ip()


def g_email(loc):
    return ids.email(loc.lang if loc.lang in ids.FIRST else "en"), None


GEN = {
    "EMAIL_ADDRESS": g_email,
    "PHONE_NUMBER": g_phone,
    "CREDIT_CARD": lambda l: ids.card(),
    "IBAN_CODE": g_iban,
    "US_SSN": lambda l: ids.ssn(),
    "IP_ADDRESS": g_ip,
    "MAC_ADDRESS": lambda l: ids.mac(),
    "URL_WITH_CREDENTIALS": lambda l: ids.url_cred(),
    "CRYPTO_WALLET": lambda l: ids.wallet(),
    "DATE_OF_BIRTH": lambda l: ids.dob(nlang(l), l.us),
    "UK_NHS": lambda l: (ids.nhs(), None),
    "UK_NINO": lambda l: (ids.nino(), None),
    "CA_SIN": lambda l: (ids.sin(), None),
    "ES_NIF": lambda l: (ids.nif(), None),
    "ES_NIE": lambda l: (ids.nie(), None),
    "IT_FISCAL_CODE": lambda l: (ids.codice_fiscale()[0], None),
    "PL_PESEL": lambda l: (ids.pesel(), None),
    "DE_TAX_ID": lambda l: (ids.de_taxid(), None),
    "SE_PERSONNUMMER": lambda l: (ids.personnummer(), None),
    "IN_AADHAAR": lambda l: (ids.aadhaar(), None),
    "AU_TFN": lambda l: (ids.tfn(), None),
    "AU_ABN": lambda l: (ids.abn(), None),
    "US_ITIN": lambda l: ids.itin(),
    "US_NPI": lambda l: (ids.npi(), None),
    "ABA_ROUTING_NUMBER": lambda l: (ids.aba(), None),
    "SECRET_AWS_KEY": g_aws,
    "SECRET_GITHUB_TOKEN": lambda l: ids.github_token(),
    "SECRET_SLACK_TOKEN": lambda l: ids.slack_token(),
    "SECRET_STRIPE_KEY": lambda l: ids.stripe_key(),
    "SECRET_OPENAI_KEY": lambda l: ids.openai_key(),
    "SECRET_ANTHROPIC_KEY": lambda l: ids.anthropic_key(),
    "SECRET_GOOGLE_API_KEY": lambda l: ids.google_key(),
    "SECRET_JWT": lambda l: ids.jwt(),
    "SECRET_PRIVATE_KEY": lambda l: ids.pem(),
    "SECRET_CONNECTION_STRING": lambda l: ids.conn_string(),
    "SECRET_GENERIC": lambda l: ids.generic_secret(),
}

NATIONAL = {"UK_NHS": ["GB"], "UK_NINO": ["GB"], "CA_SIN": ["CA", "CAfr"], "ES_NIF": ["ES"], "ES_NIE": ["ES"],
            "IT_FISCAL_CODE": ["IT"], "PL_PESEL": ["PL"], "DE_TAX_ID": ["DE"], "SE_PERSONNUMMER": ["SE"], "IN_AADHAAR": ["IN"],
            "AU_TFN": ["AU"], "AU_ABN": ["AU"], "US_ITIN": ["US"], "US_NPI": ["US"], "ABA_ROUTING_NUMBER": ["US"], "US_SSN": ["US"]}


def make(t, loc):
    v, sub = GEN[t](loc)
    return Ent(t, v, sub)


# ------------------------------------------------------------------ keys
KEYS = {
    "EMAIL_ADDRESS": ["email", "email_address", "contact_email", "customer_email", "mail"],
    "PHONE_NUMBER": ["phone", "phone_number", "mobile", "tel", "contact_phone", "msisdn"],
    "CREDIT_CARD": ["card_number", "cc_number", "pan", "credit_card"],
    "IBAN_CODE": ["iban", "bank_iban", "payout_iban"],
    "US_SSN": ["ssn", "social_security_number", "ssn_full"],
    "DATE_OF_BIRTH": ["date_of_birth", "dob", "birth_date", "birthdate"],
    "IP_ADDRESS": ["ip", "client_ip", "remote_addr", "ip_address", "source_ip"],
    "MAC_ADDRESS": ["mac", "mac_address", "hw_addr", "device_mac"],
    "CRYPTO_WALLET": ["wallet", "wallet_address", "payout_address", "deposit_address"],
    "UK_NHS": ["nhs_number", "nhs_no"], "UK_NINO": ["ni_number", "nino", "national_insurance_no"],
    "CA_SIN": ["sin", "social_insurance_number"], "ES_NIF": ["nif", "dni"], "ES_NIE": ["nie", "nie_number"],
    "IT_FISCAL_CODE": ["codice_fiscale", "cf", "tax_code"], "PL_PESEL": ["pesel", "pesel_number"],
    "DE_TAX_ID": ["steuer_id", "steuerliche_idnr", "tax_id"], "SE_PERSONNUMMER": ["personnummer", "personnr"],
    "IN_AADHAAR": ["aadhaar", "aadhaar_number", "aadhaar_no"], "AU_TFN": ["tfn", "tax_file_number"], "AU_ABN": ["abn", "business_abn"],
    "US_ITIN": ["itin", "taxpayer_itin"], "US_NPI": ["npi", "provider_npi"], "ABA_ROUTING_NUMBER": ["routing_number", "aba_routing", "aba"],
    "SECRET_GITHUB_TOKEN": ["github_token", "gh_token", "gh_pat"],
    "SECRET_STRIPE_KEY": ["stripe_secret_key", "stripe_api_key", "stripe_key"],
    "SECRET_OPENAI_KEY": ["openai_api_key", "openai_key"], "SECRET_ANTHROPIC_KEY": ["anthropic_api_key", "claude_api_key"],
    "SECRET_GOOGLE_API_KEY": ["google_api_key", "maps_api_key", "firebase_api_key"],
    "SECRET_JWT": ["access_token", "id_token", "auth_token", "bearer_token"],
    "SECRET_PRIVATE_KEY": ["private_key", "ssh_private_key", "tls_key"],
    "URL_WITH_CREDENTIALS": ["registry_url", "repo_url", "ftp_url", "backup_target", "remote_url"],
}


def key(e):
    t, s = e.t, e.sub
    if t == "SECRET_AWS_KEY":
        return "aws_access_key_id" if s == "aws_key_id" else "aws_secret_access_key"
    if t == "SECRET_SLACK_TOKEN":
        return "slack_webhook_url" if s == "webhook" else R.choice(["slack_bot_token", "slack_token"]) if s != "app" else "slack_app_token"
    if t == "SECRET_CONNECTION_STRING":
        return {"postgres": "database_url", "mysql": "database_url", "mongodb_srv": "mongo_uri", "mongodb": "mongodb_uri",
                "redis": "redis_url", "jdbc": "jdbc_url", "adonet": "connection_string"}[s]
    if t == "SECRET_GENERIC":
        return R.choice({"password": ["db_password", "admin_password", "smtp_password"], "hex64": ["session_secret", "secret_key", "jwt_secret"],
                         "hex32": ["twilio_auth_token", "datadog_api_key"], "sendgrid": ["sendgrid_api_key"], "mailgun": ["mailgun_api_key"],
                         "b64": ["encryption_key", "app_key"], "gitlab": ["gitlab_token"]}[s])
    return R.choice(KEYS[t])


# ------------------------------------------------------------------ phrases (natural language contexts)
P = {
    "EMAIL_ADDRESS": {"en": ["you can email me at {}", "my email is {}", "please send the invoice to {}", "contact: {}", "cc {} on the thread", "my new address is {} (old one is closed)"],
                      "de": ["meine E-Mail-Adresse ist {}", "bitte schreiben Sie an {}", "E-Mail: {}"], "fr": ["mon adresse e-mail est {}", "écrivez-moi à {}"],
                      "es": ["mi correo es {}", "escríbeme a {}"], "it": ["la mia email è {}", "scrivetemi a {}"], "nl": ["mijn e-mailadres is {}", "mail naar {}"],
                      "pl": ["mój e-mail to {}", "proszę pisać na {}"], "sv": ["min e-post är {}", "mejla {}"]},
    "PHONE_NUMBER": {"en": ["call me on {}", "my number is {}", "reach me at {}", "mobile: {}", "text me at {}", "best number to reach me is {}"],
                     "hi": ["mera number {} hai", "call karo {} pe", "my mobile no is {}"],
                     "de": ["Sie erreichen mich unter {}", "meine Handynummer ist {}", "Tel.: {}", "Rückruf bitte unter {}"],
                     "fr": ["mon numéro est le {}", "appelez-moi au {}", "tél. : {}"], "es": ["mi teléfono es el {}", "llámame al {}", "móvil: {}"],
                     "it": ["il mio numero è {}", "chiamatemi al {}", "cell. {}"], "nl": ["bel me op {}", "mijn nummer is {}", "tel: {}"],
                     "pl": ["mój numer telefonu to {}", "proszę dzwonić pod {}"], "sv": ["ring mig på {}", "mitt nummer är {}"]},
    "CREDIT_CARD": {"en": ["my card number is {}", "I paid with card {}", "please charge it to {}", "the card was {}, exp 09/27"],
                    "de": ["meine Kreditkartennummer lautet {}", "bezahlt mit Karte {}"], "fr": ["ma carte bancaire : {}", "le numéro de ma carte est {}"],
                    "es": ["el número de mi tarjeta es {}", "pagué con la tarjeta {}"], "it": ["il numero della carta è {}"], "nl": ["mijn creditcardnummer is {}"],
                    "pl": ["numer mojej karty to {}"], "sv": ["mitt kortnummer är {}"]},
    "IBAN_CODE": {"en": ["please refund to IBAN {}", "our bank account: {}", "IBAN {}"], "de": ["bitte überweisen Sie auf IBAN {}", "meine IBAN lautet {}", "IBAN: {}"],
                  "fr": ["mon IBAN est {}", "IBAN : {}"], "es": ["mi IBAN es {}", "cuenta: {}"], "it": ["IBAN per il rimborso: {}", "il mio IBAN è {}"],
                  "nl": ["mijn IBAN is {}", "rekeningnummer {}"], "pl": ["numer konta: {}", "mój IBAN to {}"], "sv": ["mitt IBAN: {}"]},
    "US_SSN": {"en": ["my SSN is {}", "Social Security Number: {}", "SSN {}", "last year I gave you my social, it's {}"]},
    "DATE_OF_BIRTH": {"en": ["my date of birth is {}", "DOB: {}", "I was born on {}", "date of birth {}"], "de": ["geboren am {}", "Geburtsdatum: {}"],
                      "fr": ["né le {}", "date de naissance : {}"], "es": ["fecha de nacimiento: {}", "nací el {}"], "it": ["nato il {}", "data di nascita: {}"],
                      "nl": ["geboortedatum: {}", "geboren op {}"], "pl": ["data urodzenia: {}", "urodzona {}"], "sv": ["födelsedatum: {}", "född {}"]},
    "IP_ADDRESS": {"en": ["the request came from {}", "my IP is {}", "blocked IP {}", "the server is at {}"], "de": ["meine IP-Adresse ist {}", "Server-IP: {}"],
                   "fr": ["mon adresse IP est {}"], "es": ["mi IP es {}"], "it": ["il mio indirizzo IP è {}"], "nl": ["mijn IP-adres is {}"]},
    "MAC_ADDRESS": {"en": ["the MAC address is {}", "device MAC: {}", "my laptop's MAC is {}"], "de": ["MAC-Adresse: {}"], "fr": ["adresse MAC : {}"]},
    "CRYPTO_WALLET": {"en": ["send it to my wallet {}", "wallet address: {}", "deposit address {}", "payout to {}"], "de": ["meine Wallet-Adresse: {}"],
                      "es": ["mi billetera: {}"], "fr": ["mon adresse de portefeuille : {}"]},
    "URL_WITH_CREDENTIALS": {"en": ["use {} for the upload", "the remote is {}", "it pulls from {}"]},
    "SECRET_CONNECTION_STRING": {"en": ["the connection string is {}", "prod DB: {}", "use {} to connect"]},
    "UK_NHS": {"en": ["my NHS number is {}", "NHS No: {}", "NHS number {}"]},
    "UK_NINO": {"en": ["my National Insurance number is {}", "NI number: {}", "NINO {}"]},
    "CA_SIN": {"en": ["my SIN is {}", "Social Insurance Number: {}", "SIN {}"], "fr": ["mon numéro d'assurance sociale est le {}", "NAS : {}"]},
    "ES_NIF": {"es": ["mi DNI es {}", "NIF: {}", "con DNI {}"], "en": ["my DNI is {}"]},
    "ES_NIE": {"es": ["mi NIE es {}", "NIE: {}", "número de identidad de extranjero {}"], "en": ["my NIE is {}"]},
    "IT_FISCAL_CODE": {"it": ["il mio codice fiscale è {}", "C.F.: {}", "codice fiscale {}"], "en": ["my codice fiscale is {}"]},
    "PL_PESEL": {"pl": ["mój PESEL to {}", "PESEL: {}", "nr PESEL {}"], "en": ["my PESEL is {}"]},
    "DE_TAX_ID": {"de": ["meine Steuer-ID lautet {}", "Steuerliche Identifikationsnummer: {}", "IdNr. {}"], "en": ["my German tax ID is {}"]},
    "SE_PERSONNUMMER": {"sv": ["mitt personnummer är {}", "Personnr: {}", "personnummer {}"], "en": ["my personnummer is {}"]},
    "IN_AADHAAR": {"hi": ["my Aadhaar number is {}", "Aadhaar: {}", "mera aadhaar number {} hai", "Aadhaar no. {}"]},
    "AU_TFN": {"en": ["my TFN is {}", "Tax File Number: {}", "TFN {}"]},
    "AU_ABN": {"en": ["our ABN is {}", "ABN {}", "ABN: {}"]},
    "US_ITIN": {"en": ["my ITIN is {}", "ITIN: {}", "Individual Taxpayer Identification Number {}"]},
    "US_NPI": {"en": ["provider NPI {}", "NPI: {}", "the doctor's NPI number is {}"]},
    "ABA_ROUTING_NUMBER": {"en": ["routing number {}", "ABA/RTN: {}", "the ABA routing number is {}"]},
    "SECRET_AWS_KEY": {"en": ["here's the access key: {}", "AWS key {}", "I think I leaked {} in the repo"]},
    "SECRET_GITHUB_TOKEN": {"en": ["token is {}", "use my PAT {}", "the CI token {} needs rotating"]},
    "SECRET_SLACK_TOKEN": {"en": ["bot token: {}", "post to {}", "slack token {}"]},
    "SECRET_STRIPE_KEY": {"en": ["our Stripe key is {}", "set STRIPE_SECRET to {}", "stripe secret {}"]},
    "SECRET_OPENAI_KEY": {"en": ["my OpenAI key is {}", "api key: {}", "try with {}"]},
    "SECRET_ANTHROPIC_KEY": {"en": ["here's my Anthropic key {}", "ANTHROPIC_API_KEY={}", "key: {}"]},
    "SECRET_GOOGLE_API_KEY": {"en": ["the Maps key is {}", "google api key {}", "firebase apiKey: {}"]},
    "SECRET_JWT": {"en": ["my token is {}", "Authorization: Bearer {}", "the session token {} expired"]},
    "SECRET_PRIVATE_KEY": {"en": ["here is the deploy key:\n{}\n", "private key below\n{}\n"]},
    "SECRET_GENERIC": {"en": ["the password is {}", "secret: {}", "api key {}"], "de": ["das Passwort ist {}"]},
}


def phrase(t, loc):
    d = P[t]
    lang = loc.lang
    if lang in d and (R.random() < 0.85 or "en" not in d):
        return R.choice(d[lang])
    if lang == "hi" and "en" in d:
        return R.choice(d["en"])
    if "en" in d:
        return R.choice(d["en"])
    return R.choice(next(iter(d.values())))


# ------------------------------------------------------------------ filler
FILL = {
    "en": ["Hi, I have a problem with my last order.", "Thanks for getting back to me so quickly!", "Could you please update my account details?",
           "I was charged twice this month.", "The app keeps logging me out.", "Let me know if you need anything else.", "Sorry for the late reply 🙂",
           "I moved house last week.", "Is there any update on the refund?", "Cheers"],
    "de": ["Hallo, ich habe ein Problem mit meiner Bestellung.", "Vielen Dank für die schnelle Antwort!", "Bitte aktualisieren Sie meine Daten.",
           "Mir wurde doppelt abgebucht.", "Grüße aus München", "Können Sie mir bitte helfen?"],
    "fr": ["Bonjour, j'ai un souci avec ma commande.", "Merci pour votre réponse rapide !", "Pourriez-vous mettre à jour mes coordonnées ?",
           "J'ai été débité deux fois.", "Cordialement", "Bonne journée 😊"],
    "es": ["Hola, tengo un problema con mi pedido.", "¡Gracias por la rápida respuesta!", "¿Podéis actualizar mis datos?", "Me cobraron dos veces.", "Un saludo"],
    "it": ["Buongiorno, ho un problema con l'ordine.", "Grazie per la risposta!", "Potete aggiornare i miei dati?", "Mi avete addebitato due volte.", "Cordiali saluti"],
    "nl": ["Hoi, ik heb een probleem met mijn bestelling.", "Bedankt voor de snelle reactie!", "Kunnen jullie mijn gegevens aanpassen?", "Met vriendelijke groet"],
    "pl": ["Dzień dobry, mam problem z zamówieniem.", "Dziękuję za szybką odpowiedź!", "Proszę o aktualizację danych.", "Pozdrawiam serdecznie, Łukasz"],
    "sv": ["Hej, jag har ett problem med min beställning.", "Tack för snabbt svar!", "Kan ni uppdatera mina uppgifter?", "Med vänliga hälsningar, Åsa"],
    "hi": ["Hi, mera order abhi tak nahi aaya.", "Thank you ji!", "Please update my details, urgent hai.", "Refund kab tak aayega?", "धन्यवाद"],
}
AGENT = {"en": ["Thanks, I've noted that.", "Let me check that for you.", "Got it, one moment please.", "I've updated your profile."],
         "de": ["Danke, ich schaue nach.", "Einen Moment bitte."], "fr": ["Merci, je vérifie.", "Un instant s'il vous plaît."],
         "es": ["Gracias, lo reviso.", "Un momento, por favor."], "it": ["Grazie, controllo subito.", "Un attimo prego."],
         "nl": ["Dank je, ik kijk even.", "Een moment alstublieft."], "pl": ["Dziękuję, sprawdzam.", "Chwileczkę."], "sv": ["Tack, jag kollar.", "Ett ögonblick."],
         "hi": ["Thanks, checking.", "Ek minute please."]}
ROLE = {"en": ("Customer", "Agent"), "de": ("Kunde", "Support"), "fr": ("Client", "Conseiller"), "es": ("Cliente", "Agente"), "it": ("Cliente", "Operatore"),
        "nl": ("Klant", "Medewerker"), "pl": ("Klient", "Konsultant"), "sv": ("Kund", "Support"), "hi": ("Customer", "Agent")}


def person(loc):
    lang = loc.lang if loc.lang in ids.FIRST else "en"
    f, l = ids.name(lang)
    return f"{f} {l}"


def ts(fmt="iso"):
    y, mo, d, h, mi, s = 2024, R.randint(1, 12), R.randint(1, 28), R.randint(0, 23), R.randint(0, 59), R.randint(0, 59)
    if fmt == "iso":
        return f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{R.randint(0,999):03d}Z"
    if fmt == "sql":
        return f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
    if fmt == "hm":
        return f"{h:02d}:{mi:02d}"
    if fmt == "nginx":
        return f"{d:02d}/{['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec'][mo-1]}/{y}:{h:02d}:{mi:02d}:{s:02d} +0000"


def uid():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def cap(s):
    return s[0].upper() + s[1:] if s and s[0] != "\ue000" else s


# ------------------------------------------------------------------ renderers (positive)
def r_chat(doc, ents, loc, mk):
    lang = loc.lang
    cust, agent = ROLE[lang]
    style = R.choice(["bracket", "colon", "slack"])
    nm = person(loc)
    lines = []

    def line(who, msg):
        if style == "bracket":
            lines.append(f"[{ts('hm')}] {who}: {msg}")
        elif style == "colon":
            lines.append(f"{who} ({ts('hm')}): {msg}")
        else:
            lines.append(f"{nm if who == cust else 'support-bot'}  {ts('hm')}\n{msg}")

    line(cust, R.choice(FILL[lang]))
    line(agent, R.choice(AGENT[lang]))
    for e in ents:
        p = phrase(e.t, loc)
        body = cap(p.format(doc.put(e)))
        if not p.endswith("\n") and R.random() < 0.6:
            body += R.choice([".", "!", " .", "", " thanks", " 🙏"])
        if R.random() < 0.3:
            body = R.choice(FILL[lang]) + " " + body
        line(cust, body)
        if R.random() < 0.5:
            line(agent, R.choice(AGENT[lang]))
    return "\n".join(lines)


SIGN_TITLES = ["Account Manager", "Head of Finance", "Senior Backend Engineer", "Office Manager", "Sales Director", "DevOps Lead"]
COMPANIES = ["Acme Corp", "Globex GmbH", "Initech Ltd", "Northwind Traders", "Umbrella S.p.A.", "Hooli BV", "Stark Sp. z o.o.", "Wayne Enterprises Pty Ltd"]


def r_email(doc, ents, loc, mk):
    lang = loc.lang
    nm = person(loc)
    out = []
    sig_phone = [e for e in ents if e.t == "PHONE_NUMBER"]
    sig_email = [e for e in ents if e.t == "EMAIL_ADDRESS"]
    body_ents = [e for e in ents if e not in sig_phone[:1] and e not in sig_email[:1]]
    if R.random() < 0.5:
        out.append(f"From: {nm} <{doc.put(mk('EMAIL_ADDRESS'))}>")
    else:
        out.append(f"From: {nm}")
    out.append(f"To: {R.choice(['Support', 'Accounts Payable', 'Team', 'Kundenservice', 'Service client'])}")
    out.append(f"Date: {R.choice(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])}, {R.randint(1,28)} Mar 2024 {ts('hm')}:{R.randint(10,59)} +0100")
    out.append(f"Subject: {R.choice(['Re: your ticket #', 'Update to account ', 'Fwd: invoice ', 'Onboarding docs '])}{rd(5)}")
    out.append("")
    out.append({"en": "Hi,", "hi": "Hello sir,", "de": "Hallo zusammen,", "fr": "Bonjour,", "es": "Hola,", "it": "Buongiorno,", "nl": "Beste,", "pl": "Dzień dobry,", "sv": "Hej,"}[lang])
    out.append("")
    para = [R.choice(FILL[lang])]
    for e in body_ents:
        p = phrase(e.t, loc)
        para.append(cap(p.format(doc.put(e))) + ("" if p.endswith("\n") else "."))
    out.append(" ".join(para))
    out.append("")
    out.append(R.choice(FILL[lang]))
    out.append("")
    out.append(R.choice(["--", "Best regards,", "Mit freundlichen Grüßen", "Cordialement,", "Saludos,", "Kind regards"]))
    out.append(nm)
    out.append(f"{R.choice(SIGN_TITLES)} | {R.choice(COMPANIES)}")
    for e in sig_phone[:1]:
        out.append(f"{R.choice(['T:', 'Tel:', 'Mobile:', 'M:', 'Phone:', 'Tel.', 'Mob.'])} {doc.put(e)}")
    for e in sig_email[:1]:
        out.append(f"{R.choice(['E:', 'Email:', 'Mail:', ''])} {doc.put(e)}".strip())
    out.append(R.choice(["www.acme-corp.com", "This e-mail may contain confidential information.", "Sent from my iPhone", ""]))
    return "\n".join(out)


def _fmt_cell(v, sep):
    if sep == "," and ("," in v or R.random() < 0.25):
        return '"' + v + '"'
    return v


def r_csv(doc, ents, loc, mk, sep=","):
    types = []
    for e in ents:
        if e.t not in types:
            types.append(e.t)
    first = {e.t: e for e in ents}
    keys = {t: key(first[t]) for t in types}
    if "SECRET_AWS_KEY" in types:
        keys["SECRET_AWS_KEY"] = "Access key ID" if first["SECRET_AWS_KEY"].sub == "aws_key_id" else "Secret access key"
    hdr = ["id", "name"] + [keys[t] for t in types] + ["created_at"]
    if R.random() < 0.3:
        hdr = [h.replace("_", " ").title() for h in hdr]
    lines = [sep.join(hdr)]
    nrows = R.randint(2, 5)
    for i in range(nrows):
        row = [str(1000 + i * R.randint(1, 9)), person(loc)]
        for t in types:
            e = first[t] if i == 0 else mk(t, sub=first[t].sub if t == "SECRET_AWS_KEY" else None)
            cell = doc.put(e)
            row.append('"' + cell + '"' if sep == "," and R.random() < 0.25 else cell)
        row.append(ts("sql"))
        lines.append(sep.join(row))
    return "\n".join(lines) + "\n"


def r_tsv(doc, ents, loc, mk):
    return r_csv(doc, ents, loc, mk, sep="\t")


def r_json(doc, ents, loc, mk):
    data = {"id": uid(), "event": R.choice(["customer.updated", "user.created", "payment.failed", "kyc.submitted", "config.sync"]),
            "created_at": ts("iso"), "data": {}}
    obj = data["data"]
    for e in ents:
        k = key(e)
        if R.random() < 0.3:
            obj.setdefault("profile", {})[k] = doc.put(e, jesc)
        else:
            obj[k] = doc.put(e, jesc)
    obj["status"] = R.choice(["active", "pending", "review"])
    if R.random() < 0.5:
        return json.dumps(data, ensure_ascii=False, indent=2)
    return json.dumps(data, ensure_ascii=False)


SVCS = ["api-gateway", "auth", "billing", "kyc-worker", "notifier", "orders", "sync"]


def r_log(doc, ents, loc, mk):
    lines = []
    for e in ents:
        for _ in range(R.randint(0, 2)):
            lines.append(f"{ts('iso')} INFO  [{R.choice(SVCS)}] request_id={uid()} status={R.choice([200, 201, 204, 304])} duration_ms={R.randint(3, 900)}")
        t = e.t
        if t == "IP_ADDRESS" and R.random() < 0.5 and ":" not in e.value:
            lines.append(f'{doc.put(e)} - - [{ts("nginx")}] "GET /api/v1/orders?page={R.randint(1,9)} HTTP/1.1" 200 {R.randint(200, 9000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"')
        elif t == "MAC_ADDRESS":
            lines.append(f"Mar {R.randint(1,28)} {ts('hm')}:{R.randint(10,59)} gw01 dhcpd[{R.randint(300,9999)}]: DHCPACK on {doc.put(Ent('IP_ADDRESS', ids.ipv4(True)[0], 'private'))} to {doc.put(e)} via eth1")
        elif t == "SECRET_JWT":
            lines.append(f"{ts('iso')} DEBUG [{R.choice(SVCS)}] outgoing headers: {{'Authorization': 'Bearer {doc.put(e)}', 'Accept': 'application/json'}}")
        elif t in ("SECRET_CONNECTION_STRING", "URL_WITH_CREDENTIALS"):
            lines.append(f"{ts('iso')} ERROR [{R.choice(SVCS)}] failed to connect to {doc.put(e)}: connection timed out after 30s")
        elif t == "CREDIT_CARD":
            lines.append(f"{ts('iso')} WARN  [billing] card validation failed card={doc.put(e)} exp={R.randint(1,12):02d}/{R.randint(25,30)} reason=do_not_honor")
        elif t == "EMAIL_ADDRESS":
            lines.append(R.choice([f"{ts('iso')} INFO  [auth] login succeeded user={doc.put(e)} mfa=totp",
                                   f"{ts('iso')} INFO  [notifier] sent password-reset email to <{doc.put(e)}> msgid={rs(16)}"]))
        else:
            k = key(e)
            v = doc.put(e)
            lines.append(R.choice([f"{ts('iso')} DEBUG [{R.choice(SVCS)}] payload {k}={v} trace={rs(16, '0123456789abcdef')}",
                                   f'{ts("iso")} WARN  [{R.choice(SVCS)}] validation warning field={k} value="{v}"',
                                   f"{ts('iso')} INFO  [{R.choice(SVCS)}] updated {k} -> {v}"]))
    lines.append(f"{ts('iso')} INFO  [{R.choice(SVCS)}] shutdown complete in {R.randint(10,999)}ms")
    return "\n".join(lines)


ENV_FILL = ["NODE_ENV=production", "PORT=3000", "LOG_LEVEL=info", "FEATURE_NEW_CHECKOUT=true", "TZ=Europe/Berlin", "WORKERS=4", "CACHE_TTL=300",
            "APP_URL=https://app.acme-corp.com", "AWS_REGION=eu-west-1", "SENTRY_ENVIRONMENT=prod"]


def r_env(doc, ents, loc, mk):
    lines = ["# ---- generated " + ts("sql") + " ----"]
    lines += R.sample(ENV_FILL, 3)
    for e in ents:
        k = key(e).upper()
        if e.t == "SECRET_PRIVATE_KEY":
            lines.append(f'{k}="{doc.put(e)}"')
        elif e.t in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CRYPTO_WALLET"):
            k = {"EMAIL_ADDRESS": "ADMIN_EMAIL", "PHONE_NUMBER": "TWILIO_FROM_NUMBER", "IP_ADDRESS": "ALLOWED_IP", "CRYPTO_WALLET": "TREASURY_WALLET"}[e.t]
            lines.append(f"{k}={doc.put(e)}")
        else:
            q = R.choice(["", '"', "'"])
            lines.append(f"{k}={q}{doc.put(e)}{q}")
        if R.random() < 0.3:
            lines.append(R.choice(ENV_FILL))
    return "\n".join(lines) + "\n"


def shell_cmd(doc, e):
    t, s = e.t, e.sub
    v = doc.put(e)
    if t == "SECRET_AWS_KEY":
        return f"export AWS_ACCESS_KEY_ID={v}" if s == "aws_key_id" else R.choice([f"export AWS_SECRET_ACCESS_KEY={v}", f"aws configure set aws_secret_access_key {v}"])
    if t == "SECRET_GITHUB_TOKEN":
        return R.choice([f"export GITHUB_TOKEN={v}", f"echo {v} | gh auth login --with-token", f"curl -H 'Authorization: token {v}' https://api.github.com/user/repos"])
    if t == "SECRET_SLACK_TOKEN":
        if s == "webhook":
            return f"curl -X POST -H 'Content-type: application/json' --data '{{\"text\":\"deploy finished\"}}' {v}"
        return f"curl -H 'Authorization: Bearer {v}' -d channel=C024BE91L -d text=hi https://slack.com/api/chat.postMessage"
    if t == "SECRET_STRIPE_KEY":
        return R.choice([f"curl https://api.stripe.com/v1/charges -u {v}:", f"stripe listen --api-key {v}"])
    if t == "SECRET_OPENAI_KEY":
        return R.choice([f'curl https://api.openai.com/v1/models -H "Authorization: Bearer {v}"', f"export OPENAI_API_KEY={v}"])
    if t == "SECRET_ANTHROPIC_KEY":
        return R.choice([f'curl https://api.anthropic.com/v1/messages -H "x-api-key: {v}" -H "anthropic-version: 2023-06-01"', f"export ANTHROPIC_API_KEY={v}"])
    if t == "SECRET_GOOGLE_API_KEY":
        return f'curl "https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key={v}"'
    if t == "SECRET_JWT":
        return f'curl -H "Authorization: Bearer {v}" https://api.acme-corp.com/v1/me'
    if t == "SECRET_CONNECTION_STRING":
        if s in ("postgres",):
            return f'psql "{v}"'
        if s.startswith("mongo"):
            return f'mongosh "{v}"'
        if s == "redis":
            return f"redis-cli -u {v} ping"
        return f"export DATABASE_URL='{v}'"
    if t == "URL_WITH_CREDENTIALS":
        return R.choice([f"git remote set-url origin {v}", f"wget {v}", f"curl -O {v}"]) if s != "git" else f"git clone {v}"
    if t == "SECRET_GENERIC":
        return R.choice([f"export DB_PASSWORD='{v}'", f"docker login -u deploy -p {v} registry.acme-corp.com", f"mysql -u root -p'{v}' shop"])
    if t == "EMAIL_ADDRESS":
        return f'git config --global user.email "{v}"'
    if t == "IP_ADDRESS":
        return R.choice([f"ping -c 3 {v}", f"nmap -sV -p 22,80,443 {v}", f"ssh -i ~/.ssh/prod.pem -p 2222 deploy@{v}" if ":" not in e.value else f"ping6 {v}"])
    if t == "MAC_ADDRESS":
        return R.choice([f"sudo ip link set dev eth0 address {v}", f"wakeonlan {v}"])
    if t == "PHONE_NUMBER":
        return f'twilio api:core:messages:create --from "$TWILIO_FROM" --to "{v}" --body "Your code is 482913"'
    if t == "CREDIT_CARD":
        return f'stripe payment_methods create --type=card -d "card[number]={v}" -d "card[exp_month]=12" -d "card[exp_year]=2027"'
    if t == "CRYPTO_WALLET":
        return f"bitcoin-cli sendtoaddress {v} 0.0125" if not e.value.startswith("0x") else f"cast send {v} --value 0.1ether"
    if t == "SECRET_PRIVATE_KEY":
        return f"cat ~/.ssh/deploy_key\n{v}"
    raise ValueError(t)


SHELL_FILL = ["ls -la", "cd ~/src/api", "git status", "git pull --rebase", "docker compose up -d", "kubectl get pods -n prod", "npm ci", "make test",
              "vim .env", "history | grep ssh", "terraform plan -out tfplan"]


def r_shell(doc, ents, loc, mk):
    style = R.choice(["bash", "zsh", "prompt"])
    n = R.randint(100, 900)
    lines = []
    cmds = []
    for e in ents:
        cmds += R.sample(SHELL_FILL, R.randint(0, 2))
        cmds.append(shell_cmd(doc, e))
    cmds += R.sample(SHELL_FILL, 1)
    for c in cmds:
        n += 1
        if style == "bash":
            lines.append(f"  {n}  {c}")
        elif style == "zsh":
            lines.append(f": {R.randint(1700000000, 1720000000)}:0;{c}")
        else:
            lines.append(f"dev@build-01:~/src$ {c}")
    return "\n".join(lines)


def r_code(doc, ents, loc, mk):
    lang = R.choice(["py", "js", "go", "java", "rb"])
    lines = {"py": ["import os", "import requests", ""], "js": ["'use strict';", "const axios = require('axios');", ""],
             "go": ["package config", "", "import \"os\"", ""], "java": ["package com.acme.config;", "", "public final class Settings {"],
             "rb": ["require 'net/http'", ""]}[lang][:]
    for e in ents:
        k = key(e)
        v = doc.put(e)
        if e.t == "SECRET_PRIVATE_KEY":
            lines.append({"py": f'{k.upper()} = """{v}\n"""', "js": f"const {k} = `{v}\n`;", "go": f"const {k.title().replace('_', '')} = `{v}\n`",
                          "java": f'    static final String {k.upper()} = """\n{v}\n""";', "rb": f"{k.upper()} = <<~PEM\n{v}\nPEM"}[lang])
            continue
        if e.t in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE") and R.random() < 0.5:
            lines.append({"py": f'    user = User(name="Test User", {k}="{v}")', "js": f"  const user = {{ name: 'Test User', {k}: '{v}' }};",
                          "go": f'\tu := User{{Name: "Test", {k.title().replace("_", "")}: "{v}"}}', "java": f'        User u = new User("Test", "{v}");',
                          "rb": f"  user = User.new(name: 'Test', {k}: '{v}')"}[lang])
            continue
        lines.append({"py": f'{k.upper()} = "{v}"', "js": f"const {k} = '{v}';", "go": f'var {k.title().replace("_", "")} = "{v}"',
                      "java": f'    private static final String {k.upper()} = "{v}";', "rb": f"{k.upper()} = '{v}'"}[lang])
    if lang == "java":
        lines.append("}")
    lines.append({"py": "\n\ndef client():\n    return requests.Session()", "js": "\nmodule.exports = { client: axios.create({ timeout: 5000 }) };",
                  "go": "\nfunc Timeout() int { return 30 }", "java": "", "rb": "\nTIMEOUT = 30"}[lang])
    return "\n".join(lines)


def r_md(doc, ents, loc, mk):
    types = []
    for e in ents:
        if e.t not in types:
            types.append(e.t)
    first = {e.t: e for e in ents}
    hdr = ["Name"] + [key(first[t]).replace("_", " ").title() for t in types] + ["Notes"]
    lines = [R.choice(["## Customer records (export)", "### Onboarding checklist", "| Data for migration |", "Table 2: affected accounts"]), ""]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "|".join(["---"] * len(hdr)) + "|")
    for i in range(R.randint(1, 4)):
        row = [person(loc)] + [doc.put(first[t] if i == 0 else mk(t)) for t in types] + [R.choice(["ok", "pending", "VIP", "migrated", "—"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def r_html(doc, ents, loc, mk):
    lines = ['<form action="/account/update" method="post" class="form-horizontal">', f'  <input type="hidden" name="_ts" value="{R.randint(1700000000,1720000000)}">']
    for e in ents:
        k = key(e)
        if e.t == "SECRET_GOOGLE_API_KEY":
            lines.insert(0, f'<script async src="https://maps.googleapis.com/maps/api/js?key={doc.put(e)}&callback=initMap"></script>')
            continue
        if e.t == "EMAIL_ADDRESS" and R.random() < 0.4:
            v1 = doc.put(e)
            lines.append(f'  <p>Contact: <a href="mailto:{v1}">{doc.put(e)}</a></p>')
            continue
        typ = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "tel", "DATE_OF_BIRTH": "text"}.get(e.t, "text")
        lines.append(f'  <label for="{k}">{k.replace("_", " ").title()}</label>')
        lines.append(f'  <input type="{typ}" id="{k}" name="{k}" value="{doc.put(e)}" required>')
    lines.append('  <button type="submit">Save</button>')
    lines.append("</form>")
    return "\n".join(lines)


def sqlq(v):
    return v.replace("'", "''")


def r_sql(doc, ents, loc, mk):
    types = []
    for e in ents:
        if e.t not in types:
            types.append(e.t)
    first = {e.t: e for e in ents}
    cols = ["id", "full_name"] + [key(first[t]) for t in types] + ["created_at"]
    tbl = R.choice(["customers", "users", "employees", "patients", "applicants"])
    out = [f"-- MySQL dump 10.13  Distrib 8.0.{R.randint(20,36)}, for Linux (x86_64)", f"-- Table structure for table `{tbl}`", "",
           f"LOCK TABLES `{tbl}` WRITE;", f"INSERT INTO `{tbl}` (" + ",".join(f"`{c}`" for c in cols) + ") VALUES"]
    rows = []
    for i in range(R.randint(1, 4)):
        vals = [str(i + 1), "'" + sqlq(person(loc)) + "'"] + ["'" + doc.put(first[t] if i == 0 else mk(t), sqlq) + "'" for t in types] + [f"'{ts('sql')}'"]
        rows.append("(" + ",".join(vals) + ")")
    out.append(",\n".join(rows) + ";")
    out.append("UNLOCK TABLES;")
    return "\n".join(out)


def r_k8s(doc, ents, loc, mk):
    if R.random() < 0.55:
        lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {R.choice(['app-secrets', 'api-env', 'worker-credentials'])}", f"  namespace: {R.choice(['prod', 'staging', 'payments'])}",
                 "type: Opaque", "stringData:"]
        for e in ents:
            k = key(e).upper()
            if e.t == "SECRET_PRIVATE_KEY":
                e.value = ids.pem(indent="    ")[0]
                lines.append(f"  {k.lower().replace('_', '.')}: |\n    {doc.put(e)}")
            else:
                q = R.choice(["", '"'])
                lines.append(f"  {k}: {q}{doc.put(e)}{q}")
    else:
        lines = ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: api", "spec:", "  replicas: 3", "  template:", "    spec:", "      containers:",
                 "        - name: api", f"          image: registry.acme-corp.com/api:{R.randint(1,4)}.{R.randint(0,30)}.{R.randint(0,9)}", "          ports:",
                 "            - containerPort: 8080", "          env:"]
        for e in ents:
            if e.t == "SECRET_PRIVATE_KEY":
                lines.append(f"            - name: PRIVATE_KEY\n              value: \"{doc.put(e, lambda v: v.replace(chr(10), chr(92) + 'n'))}\"")
                continue
            lines.append(f"            - name: {key(e).upper()}")
            lines.append(f"              value: \"{doc.put(e)}\"")
    return "\n".join(lines)


def r_diff(doc, ents, loc, mk):
    f = R.choice(["config/settings.py", "src/config.ts", ".env.production", "deploy/values.yaml", "tests/fixtures/users.py"])
    a, b = rs(7, "0123456789abcdef"), rs(7, "0123456789abcdef")
    lines = [f"diff --git a/{f} b/{f}", f"index {a}..{b} 100644", f"--- a/{f}", f"+++ b/{f}", f"@@ -{R.randint(3,80)},7 +{R.randint(3,80)},{7 + len(ents)} @@ {R.choice(['class Config:', 'export const config = {', ''])}"]
    lines.append(" DEBUG = False")
    for e in ents:
        k = key(e).upper()
        if R.random() < 0.5:
            lines.append(f"-{k} = os.environ.get(\"{k}\")")
        if e.t == "SECRET_PRIVATE_KEY":
            v = doc.put(e, lambda val: val.replace("\n", "\n+"))
            lines.append(f'+{k} = """{v}\n+"""')
        else:
            lines.append(f"+{k} = \"{doc.put(e)}\"")
    lines.append(" TIMEOUT = 30")
    return "\n".join(lines)


def r_stack(doc, ents, loc, mk):
    py = R.random() < 0.6
    lines = []
    if py:
        lines += ["Traceback (most recent call last):", f'  File "/srv/app/{R.choice(["worker", "api", "tasks"])}.py", line {R.randint(10,400)}, in <module>',
                  "    main()", f'  File "/srv/app/db.py", line {R.randint(10,400)}, in connect']
        for e in ents:
            v = doc.put(e)
            lines.append({"SECRET_CONNECTION_STRING": f"sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) could not connect to server [url: {v}]",
                          "URL_WITH_CREDENTIALS": f"requests.exceptions.ConnectionError: HTTPSConnectionPool: Max retries exceeded with url: {v}",
                          "EMAIL_ADDRESS": f"smtplib.SMTPRecipientsRefused: {{'{v}': (550, b'5.1.1 User unknown')}}",
                          "PHONE_NUMBER": f"ValueError: invalid phone number '{v}' for region {loc.cc}",
                          "IP_ADDRESS": f"ConnectionRefusedError: [Errno 111] Connection refused ({v}, port 6379)",
                          "CREDIT_CARD": f"stripe.error.CardError: Request req_{rs(14)}: Your card was declined. card_number={v}",
                          "IBAN_CODE": f"ValidationError: SEPA mandate rejected for IBAN {v}",
                          "SECRET_AWS_KEY": f"botocore.exceptions.ClientError: An error occurred (InvalidClientTokenId): The security token included in the request is invalid. key={v}",
                          "SECRET_JWT": f"jwt.exceptions.ExpiredSignatureError: Signature has expired: {v}",
                          "US_SSN": f"KeyError: 'ssn mismatch for applicant {v}'",
                          "SECRET_GENERIC": f"AuthenticationError: login failed with password '{v}'"}.get(e.t, f"RuntimeError: unexpected value {v}"))
    else:
        lines.append(f"Exception in thread \"main\" java.lang.IllegalStateException: request failed")
        for e in ents:
            v = doc.put(e)
            if e.t in ("SECRET_CONNECTION_STRING", "URL_WITH_CREDENTIALS"):
                lines.append(f"Caused by: java.sql.SQLException: Access denied; url={v}")
            else:
                lines.append(f"Caused by: com.acme.ValidationException: rejected value [{v}] for field '{key(e)}'")
            lines.append(f"\tat com.acme.{R.choice(['billing', 'crm', 'auth'])}.Service.process(Service.java:{R.randint(20,600)})")
        lines.append(f"\tat java.base/java.lang.Thread.run(Thread.java:{R.randint(800,1600)})")
    return "\n".join(lines)


PII_CORE = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "DATE_OF_BIRTH", "CRYPTO_WALLET", "IP_ADDRESS", "MAC_ADDRESS"] + [t for t in NATIONAL if t != "US_SSN"]
SECRETS = ["SECRET_AWS_KEY", "SECRET_GITHUB_TOKEN", "SECRET_SLACK_TOKEN", "SECRET_STRIPE_KEY", "SECRET_OPENAI_KEY", "SECRET_ANTHROPIC_KEY",
           "SECRET_GOOGLE_API_KEY", "SECRET_JWT", "SECRET_PRIVATE_KEY", "SECRET_CONNECTION_STRING", "URL_WITH_CREDENTIALS", "SECRET_GENERIC"]
ALL = PII_CORE + SECRETS
FORMATS = {
    "chat": (r_chat, ALL), "email": (r_email, ALL),
    "csv": (r_csv, PII_CORE + ["SECRET_AWS_KEY"]), "tsv": (r_tsv, PII_CORE),
    "json": (r_json, ALL), "log": (r_log, [t for t in ALL if t != "SECRET_PRIVATE_KEY"]),
    "env": (r_env, SECRETS + ["EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CRYPTO_WALLET"]),
    "shell": (r_shell, SECRETS + ["EMAIL_ADDRESS", "IP_ADDRESS", "MAC_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "CRYPTO_WALLET"]),
    "code": (r_code, SECRETS + ["EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "CRYPTO_WALLET", "MAC_ADDRESS"]),
    "markdown": (r_md, PII_CORE), "html": (r_html, [t for t in PII_CORE if t not in ("MAC_ADDRESS", "IP_ADDRESS")] + ["SECRET_GOOGLE_API_KEY"]),
    "sql": (r_sql, PII_CORE),
    "k8s": (r_k8s, SECRETS + ["EMAIL_ADDRESS", "IP_ADDRESS"]),
    "gitdiff": (r_diff, SECRETS + ["EMAIL_ADDRESS", "IP_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"]),
    "stack": (r_stack, ["SECRET_CONNECTION_STRING", "URL_WITH_CREDENTIALS", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "SECRET_AWS_KEY", "SECRET_JWT", "US_SSN", "SECRET_GENERIC"]),
}


def loc_for(t):
    if t in NATIONAL:
        return LOCS[R.choice(NATIONAL[t])]
    if t == "DATE_OF_BIRTH":
        return LOCS[R.choice(list(LOCS))]
    if t in SECRETS or t in ("IP_ADDRESS", "MAC_ADDRESS", "CRYPTO_WALLET"):
        return LOCS[R.choice(["US", "GB", "DE", "IN", "US", "FR", "NL"])]
    return LOCS[R.choice(list(LOCS))]


def compatible(t, loc):
    if t in NATIONAL:
        return loc.cc in [LOCS[k].cc for k in NATIONAL[t]]
    return True


def positive(i, primary):
    loc = loc_for(primary)
    fmts = [f for f, (_, allowed) in FORMATS.items() if primary in allowed]
    fmt = R.choice(fmts)
    fn, allowed = FORMATS[fmt]
    extra_pool = [t for t in allowed if compatible(t, loc) and t != "SECRET_PRIVATE_KEY"]
    types = [primary] + R.sample(extra_pool, min(len(extra_pool), R.choice([0, 0, 1, 1, 2, 3])))
    doc = Doc()

    def mk(t, sub=None):
        for _ in range(50):
            e = make(t, loc)
            if sub is None or e.sub == sub:
                return e
        return e

    ents = [mk(t) for t in types]
    text, spans = doc.finalize(fn(doc, ents, loc, mk))
    return {"id": f"p{i:04d}", "text": text, "spans": spans, "negative": False, "format": fmt, "lang": loc.lang, "cc": loc.cc}


if __name__ == "__main__":
    import negatives
    out = []
    types = list(ALL)
    n_pos = int(sys.argv[1]) if len(sys.argv) > 1 else 820
    for i in range(n_pos):
        out.append(positive(i, types[i % len(types)]))
    for j in range(25):
        out.append(positive(n_pos + j, "SECRET_PRIVATE_KEY"))
    n_neg = int(sys.argv[2]) if len(sys.argv) > 2 else 360
    for i in range(n_neg):
        text, cats, fmt = negatives.negative(i)
        out.append({"id": f"n{i:04d}", "text": text, "spans": [], "negative": True, "format": fmt, "lang": "mixed", "neg_items": cats})
    # sanity
    for s in out:
        for sp in s["spans"]:
            assert 0 <= sp["start"] < sp["end"] <= len(s["text"])
    with open(os.path.join(HERE, "gold.jsonl"), "w") as g, open(os.path.join(HERE, "corpus.jsonl"), "w") as c:
        for s in out:
            g.write(json.dumps(s, ensure_ascii=False) + "\n")
            c.write(json.dumps({"id": s["id"], "text": s["text"]}, ensure_ascii=False) + "\n")
    print(len(out), "samples;", sum(1 for s in out if s["negative"]), "negatives;", sum(len(s["spans"]) for s in out), "gold spans")
