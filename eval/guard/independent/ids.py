"""Value generators for PII / secrets, checksum-valid where a checksum exists. stdlib only."""
import random, string, hashlib, zlib, base64, json

R = random.Random(1337)

DIG = string.digits
ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def rd(n, first=None):
    s = "".join(R.choice(DIG) for _ in range(n))
    if first is not None:
        s = R.choice(first) + s[1:]
    return s


def rs(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


# ---------------------------------------------------------------- checksums
def luhn_ok(num):
    s = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return s % 10 == 0


def luhn_digit(partial):
    for c in DIG:
        if luhn_ok(partial + c):
            return c


_VD = [[0,1,2,3,4,5,6,7,8,9],[1,2,3,4,0,6,7,8,9,5],[2,3,4,0,1,7,8,9,5,6],[3,4,0,1,2,8,9,5,6,7],
       [4,0,1,2,3,9,5,6,7,8],[5,9,8,7,6,0,4,3,2,1],[6,5,9,8,7,1,0,4,3,2],[7,6,5,9,8,2,1,0,4,3],
       [8,7,6,5,9,3,2,1,0,4],[9,8,7,6,5,4,3,2,1,0]]
_VP = [[0,1,2,3,4,5,6,7,8,9],[1,5,7,6,2,8,3,0,9,4],[5,8,0,3,7,9,6,1,4,2],[8,9,1,6,0,4,3,5,2,7],
       [9,4,5,3,1,2,6,8,7,0],[4,2,8,6,5,7,3,9,0,1],[2,7,9,3,8,0,6,4,1,5],[7,0,4,6,9,1,3,2,5,8]]
_VINV = [0,4,3,2,1,5,6,7,8,9]


def verhoeff_ok(num):
    c = 0
    for i, ch in enumerate(reversed(num)):
        c = _VD[c][_VP[i % 8][int(ch)]]
    return c == 0


def verhoeff_digit(partial):
    c = 0
    for i, ch in enumerate(reversed(partial)):
        c = _VD[c][_VP[(i + 1) % 8][int(ch)]]
    return str(_VINV[c])


# ---------------------------------------------------------------- cards
CARD_BRANDS = [
    ("visa", ["4"], 16), ("visa", ["4"], 16), ("visa", ["4"], 16),
    ("mastercard", ["51", "52", "53", "54", "55"], 16),
    ("mastercard2", [str(x) for x in range(2221, 2721)], 16),
    ("amex", ["34", "37"], 15), ("discover", ["6011", "65", "644", "645", "649"], 16),
    ("jcb", [str(x) for x in range(3528, 3590)], 16), ("diners", ["36", "38"], 14),
    ("unionpay", ["62"], 16), ("maestro", ["6759", "5018"], 16),
]


def card():
    brand, prefixes, n = R.choice(CARD_BRANDS)
    p = R.choice(prefixes)
    body = p + rd(n - len(p) - 1)
    num = body + luhn_digit(body)
    f = R.random()
    if brand == "amex":
        g = [num[:4], num[4:10], num[10:]]
    elif brand == "diners":
        g = [num[:4], num[4:10], num[10:]]
    else:
        g = [num[i:i + 4] for i in range(0, len(num), 4)]
    if f < 0.45:
        v = " ".join(g)
    elif f < 0.7:
        v = "-".join(g)
    else:
        v = num
    return v, brand


def luhn_invalid_16():
    while True:
        n = R.choice("3456") + rd(15)
        if not luhn_ok(n):
            return n


# ---------------------------------------------------------------- IBAN
def _iban_num(s):
    return "".join(str(int(c, 36)) for c in s)


def iban_make(cc, bban):
    chk = 98 - int(_iban_num(bban + cc + "00")) % 97
    return f"{cc}{chk:02d}{bban}"


def iban_ok(iban):
    s = iban.replace(" ", "")
    return int(_iban_num(s[4:] + s[:4])) % 97 == 1


_IT_ODD = {**dict(zip("0123456789", [1,0,5,7,9,13,15,17,19,21])),
           **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", [1,0,5,7,9,13,15,17,19,21,2,4,18,20,11,3,6,8,12,14,16,10,22,25,24,23]))}
_IT_EVEN = {**{str(i): i for i in range(10)}, **{chr(65 + i): i for i in range(26)}}


def it_cin(s):
    tot = 0
    for i, ch in enumerate(s):
        tot += _IT_ODD[ch] if i % 2 == 0 else _IT_EVEN[ch]
    return chr(65 + tot % 26)


def fr_rib_key(bank, branch, acct):
    return 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97)


def es_dc(bank, branch, acct):
    def d(digs, w):
        v = 11 - sum(int(a) * b for a, b in zip(digs, w)) % 11
        return {11: 0, 10: 1}.get(v, v)
    w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    return f"{d('00' + bank + branch, w)}{d(acct, w)}"


def nl_acct():
    while True:
        a = rd(10, first="0123456789")
        if sum(int(c) * (10 - i) for i, c in enumerate(a)) % 11 == 0 and a[0] in "0123456" and int(a) > 0:
            return a


def iban(cc=None):
    cc = cc or R.choice(["DE", "GB", "FR", "ES", "IT", "NL", "BE", "PL", "CH", "AT", "IE", "SE", "PT"])
    if cc == "DE":
        bban = R.choice(["10010010", "37040044", "50010517", "70020270", "20041133", "12030000"]) + rd(10)
    elif cc == "GB":
        bban = R.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "MONZ"]) + rd(6) + rd(8)
    elif cc == "FR":
        bank, branch, acct = rd(5, "123"), rd(5), rd(11)
        bban = bank + branch + acct + f"{fr_rib_key(bank, branch, acct):02d}"
    elif cc == "ES":
        bank = R.choice(["2100", "0049", "0182", "0075", "2085", "0081"])
        branch, acct = rd(4), rd(10)
        bban = bank + branch + es_dc(bank, branch, acct) + acct
    elif cc == "IT":
        abi, cab, conto = R.choice(["03069", "02008", "05034", "03062"]), rd(5), rd(12)
        bban = it_cin(abi + cab + conto) + abi + cab + conto
    elif cc == "NL":
        bban = R.choice(["ABNA", "INGB", "RABO", "SNSB", "TRIO"]) + nl_acct()
    elif cc == "BE":
        first = rd(10, "0123456789")
        c = int(first) % 97 or 97
        bban = first + f"{c:02d}"
    elif cc == "PL":
        bban = rd(24, "1")
    elif cc == "CH":
        bban = rd(5, "0") + rd(12)
    elif cc == "AT":
        bban = rd(5, "1234") + rd(11)
    elif cc == "IE":
        bban = R.choice(["AIBK", "BOFI", "IPBS"]) + rd(6, "9") + rd(8)
    elif cc == "SE":
        bban = rd(3, "5689") + rd(17)
    elif cc == "PT":
        bban = rd(21)
        # PT has internal NIB key; compute: 98 - (n*100 mod 97)
        base = bban[:19]
        k = 98 - (int(base) * 100) % 97
        bban = base + f"{k:02d}"
    ib = iban_make(cc, bban)
    assert iban_ok(ib)
    if R.random() < 0.6:
        ib = " ".join(ib[i:i + 4] for i in range(0, len(ib), 4))
    return ib, cc


# ---------------------------------------------------------------- US ids
def ssn():
    while True:
        a = R.randint(1, 899)
        if a != 666:
            break
    g, s = R.randint(1, 99), R.randint(1, 9999)
    f = R.random()
    if f < 0.75:
        return f"{a:03d}-{g:02d}-{s:04d}", "dashed"
    if f < 0.88:
        return f"{a:03d} {g:02d} {s:04d}", "spaced"
    return f"{a:03d}{g:02d}{s:04d}", "plain"


def itin():
    g = R.choice(list(range(50, 66)) + list(range(70, 89)) + [90, 91, 92] + list(range(94, 100)))
    v = f"9{R.randint(0, 99):02d}-{g:02d}-{R.randint(0, 9999):04d}"
    return (v, "dashed") if R.random() < 0.85 else (v.replace("-", ""), "plain")


def npi():
    nine = R.choice("12") + rd(8)
    return nine + luhn_digit("80840" + nine)


def aba_ok(n):
    d = [int(c) for c in n]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def aba():
    if R.random() < 0.25:
        v = R.choice(["021000021", "026009593", "011000015", "121000358", "322271627", "091000019", "111000025", "061000052"])
        assert aba_ok(v), v
        return v
    pre = R.choice([f"{x:02d}" for x in list(range(1, 13)) + list(range(21, 33)) + list(range(61, 73))] + ["80"])
    body = pre + rd(6)
    for c in DIG:
        if aba_ok(body + c):
            return body + c


# ---------------------------------------------------------------- UK / CA / EU / IN / AU ids
def nhs():
    while True:
        nine = rd(9, "3456789")
        s = sum(int(c) * (10 - i) for i, c in enumerate(nine))
        c = 11 - s % 11
        if c == 11:
            c = 0
        if c == 10:
            continue
        n = nine + str(c)
        f = R.random()
        if f < 0.6:
            return f"{n[:3]} {n[3:6]} {n[6:]}"
        if f < 0.75:
            return f"{n[:3]}-{n[3:6]}-{n[6:]}"
        return n


def nino():
    first = "ABCEGHJKLMNOPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        p = R.choice(first) + R.choice(second)
        if p not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    d = rd(6)
    suf = R.choice("ABCD")
    if R.random() < 0.55:
        return f"{p}{d}{suf}"
    return f"{p} {d[:2]} {d[2:4]} {d[4:]} {suf}"


def sin():
    eight = R.choice("1234567") + rd(7)
    n = eight + luhn_digit(eight)
    f = R.random()
    if f < 0.5:
        return f"{n[:3]} {n[3:6]} {n[6:]}"
    if f < 0.8:
        return f"{n[:3]}-{n[3:6]}-{n[6:]}"
    return n


NIF_LET = "TRWAGMYFPDXBNJZSQVHLCKE"


def nif():
    n = R.randint(1000000, 99999999)
    v = f"{n:08d}{NIF_LET[n % 23]}"
    return v if R.random() < 0.8 else v[:8] + "-" + v[8]


def nie():
    p = R.choice("XYZ")
    n = R.randint(0, 9999999)
    num = int("XYZ".index(p).__str__() + f"{n:07d}")
    v = f"{p}{n:07d}{NIF_LET[num % 23]}"
    return v if R.random() < 0.8 else f"{v[0]}-{v[1:8]}-{v[8]}"


def _cf_code(s, is_name):
    s = s.upper()
    cons = [c for c in s if c.isalpha() and c not in "AEIOU"]
    vow = [c for c in s if c in "AEIOU"]
    if is_name and len(cons) >= 4:
        return cons[0] + cons[2] + cons[3]
    return ("".join(cons + vow) + "XXX")[:3]


IT_PEOPLE = [("Rossi", "Mario"), ("Bianchi", "Giulia"), ("Esposito", "Francesco"), ("Romano", "Chiara"),
             ("Colombo", "Alessandro"), ("Ricci", "Martina"), ("Marino", "Lorenzo"), ("Greco", "Sofia"),
             ("Bruno", "Matteo"), ("Gallo", "Federica"), ("Conti", "Davide"), ("De Luca", "Elena"),
             ("Costa", "Giorgio"), ("Fontana", "Valentina"), ("Moretti", "Simone")]
FEMALE_IT = {"Giulia", "Chiara", "Martina", "Sofia", "Federica", "Elena", "Valentina"}


def codice_fiscale():
    sur, name = R.choice(IT_PEOPLE)
    yy = R.randint(40, 99) if R.random() < 0.8 else R.randint(0, 5)
    mm = R.randint(1, 12)
    dd = R.randint(1, 28) + (40 if name in FEMALE_IT else 0)
    town = R.choice(["H501", "F205", "F839", "L219", "G273", "A944", "D612", "L736", "Z404", "Z112", "B157", "C351"])
    s = _cf_code(sur.replace(" ", ""), False) + _cf_code(name, True) + f"{yy:02d}" + "ABCDEHLMPRST"[mm - 1] + f"{dd:02d}" + town
    tot = sum(_IT_ODD[c] if i % 2 == 0 else _IT_EVEN[c] for i, c in enumerate(s))
    return s + chr(65 + tot % 26), f"{sur} {name}"


def pesel():
    y = R.randint(1950, 2012)
    m = R.randint(1, 12)
    d = R.randint(1, 28)
    mm = m + (20 if y >= 2000 else 0)
    s = f"{y % 100:02d}{mm:02d}{d:02d}" + rd(4)
    w = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3]
    c = (10 - sum(int(a) * b for a, b in zip(s, w)) % 10) % 10
    return s + str(c)


def de_taxid():
    while True:
        digits = list(range(10))
        dbl = R.choice(digits)
        others = [x for x in digits if x != dbl]
        R.shuffle(others)
        first10 = others[:8] + [dbl, dbl]
        R.shuffle(first10)
        if first10[0] == 0:
            continue
        s = "".join(map(str, first10))
        product = 10
        for ch in s:
            sm = (int(ch) + product) % 10
            if sm == 0:
                sm = 10
            product = (sm * 2) % 11
        c = 11 - product
        if c == 10:
            c = 0
        n = s + str(c)
        f = R.random()
        if f < 0.5:
            return n
        if f < 0.8:
            return f"{n[:2]} {n[2:5]} {n[5:8]} {n[8:]}"
        return f"{n[:2]} {n[2:5]} {n[5:8]} {n[8:]}"


def personnummer():
    y = R.randint(1940, 2010)
    m, d = R.randint(1, 12), R.randint(1, 28)
    base = f"{y % 100:02d}{m:02d}{d:02d}" + rd(3)
    n = base + luhn_digit(base)
    f = R.random()
    if f < 0.55:
        return f"{n[:6]}-{n[6:]}"
    if f < 0.8:
        return f"{y // 100}{n[:6]}-{n[6:]}"
    if f < 0.9:
        return f"{y // 100}{n}"
    return n


def aadhaar():
    eleven = R.choice("23456789") + rd(10)
    n = eleven + verhoeff_digit(eleven)
    assert verhoeff_ok(n)
    f = R.random()
    if f < 0.6:
        return f"{n[:4]} {n[4:8]} {n[8:]}"
    if f < 0.75:
        return f"{n[:4]}-{n[4:8]}-{n[8:]}"
    return n


def tfn():
    w = [1, 4, 3, 7, 5, 8, 6, 9, 10]
    while True:
        e = rd(8, "123456789")
        s = sum(int(a) * b for a, b in zip(e, w))
        d = s % 11
        if d == 10:
            continue
        n = e + str(d)
        assert sum(int(a) * b for a, b in zip(n, w)) % 11 == 0
        return f"{n[:3]} {n[3:6]} {n[6:]}" if R.random() < 0.6 else n


def abn():
    w = [10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    while True:
        n = rd(11, "123456789")
        ds = [int(c) for c in n]
        ds[0] -= 1
        if sum(a * b for a, b in zip(ds, w)) % 89 == 0:
            return f"{n[:2]} {n[2:5]} {n[5:8]} {n[8:]}" if R.random() < 0.7 else n


# ---------------------------------------------------------------- crypto
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58check(version, payload):
    raw = bytes([version]) + payload
    raw += hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4]
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = ((chk & 0x1ffffff) << 5) ^ v
        for i in range(5):
            chk ^= GEN[i] if ((b >> i) & 1) else 0
    return chk


def _hrp_exp(h):
    return [ord(x) >> 5 for x in h] + [0] + [ord(x) & 31 for x in h]


def _convertbits(data, frm, to):
    acc = bits = 0
    out = []
    maxv = (1 << to) - 1
    for v in data:
        acc = (acc << frm) | v
        bits += frm
        while bits >= to:
            bits -= to
            out.append((acc >> bits) & maxv)
    if bits:
        out.append((acc << (to - bits)) & maxv)
    return out


def segwit(hrp, ver, prog):
    data = [ver] + _convertbits(prog, 8, 5)
    const = 1 if ver == 0 else 0x2bc830a3
    pm = _polymod(_hrp_exp(hrp) + data + [0] * 6) ^ const
    chk = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH[d] for d in data + chk)


def _rol(x, n):
    return ((x << n) | (x >> (64 - n))) & 0xFFFFFFFFFFFFFFFF


_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]


def _keccak_f(A):
    Rr = 1
    for _ in range(24):
        C = [A[x][0] ^ A[x][1] ^ A[x][2] ^ A[x][3] ^ A[x][4] for x in range(5)]
        D = [C[(x - 1) % 5] ^ _rol(C[(x + 1) % 5], 1) for x in range(5)]
        A = [[A[x][y] ^ D[x] for y in range(5)] for x in range(5)]
        B = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                B[y][(2 * x + 3 * y) % 5] = _rol(A[x][y], _ROT[x][y]) if _ROT[x][y] else A[x][y]
        A = [[B[x][y] ^ ((~B[(x + 1) % 5][y]) & B[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
        for j in range(7):
            Rr = ((Rr << 1) ^ ((Rr >> 7) * 0x71)) % 256
            if Rr & 2:
                A[0][0] ^= 1 << ((1 << j) - 1)
    return A


def keccak256(msg):
    rate = 136
    m = bytearray(msg) + b"\x01"
    while len(m) % rate:
        m += b"\0"
    m[-1] |= 0x80
    A = [[0] * 5 for _ in range(5)]
    for off in range(0, len(m), rate):
        blk = m[off:off + rate]
        for i in range(rate // 8):
            x, y = i % 5, i // 5
            A[x][y] ^= int.from_bytes(blk[8 * i:8 * i + 8], "little")
        A = _keccak_f(A)
    out = b""
    for i in range(4):
        out += A[i % 5][i // 5].to_bytes(8, "little")
    return out


def eip55(addr_hex):
    h = keccak256(addr_hex.lower().encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(h[i], 16) >= 8 else c for i, c in enumerate(addr_hex.lower()))


assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
assert eip55("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed") == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
assert segwit("bc", 0, bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def wallet():
    f = R.random()
    rb = lambda n: bytes(R.getrandbits(8) for _ in range(n))
    if f < 0.22:
        return b58check(0, rb(20)), "btc_p2pkh"
    if f < 0.34:
        return b58check(5, rb(20)), "btc_p2sh"
    if f < 0.52:
        return segwit("bc", 0, rb(20)), "btc_bech32"
    if f < 0.60:
        return segwit("bc", 1, rb(32)), "btc_taproot"
    if f < 0.85:
        return eip55(rb(20).hex()), "eth"
    if f < 0.93:
        return b58check(0x30, rb(20)), "ltc"
    return segwit("ltc", 0, rb(20)), "ltc_bech32"


# ---------------------------------------------------------------- network
def ipv4(private=None):
    if private is None:
        private = R.random() < 0.2
    if private:
        c = R.random()
        if c < 0.4:
            return f"10.{R.randint(0,255)}.{R.randint(0,255)}.{R.randint(1,254)}", "private"
        if c < 0.8:
            return f"192.168.{R.randint(0,255)}.{R.randint(1,254)}", "private"
        return f"172.{R.randint(16,31)}.{R.randint(0,255)}.{R.randint(1,254)}", "private"
    first = R.choice([24, 31, 37, 46, 52, 66, 77, 81, 85, 91, 95, 104, 109, 141, 151, 176, 185, 188, 193, 212, 217])
    return f"{first}.{R.randint(0,255)}.{R.randint(0,255)}.{R.randint(1,254)}", "public"


def ipv6():
    groups = [R.choice(["2001", "2a00", "2a02", "2a03", "2600", "2607", "2804", "2c0f"])] + [f"{R.getrandbits(16):x}" for _ in range(7)]
    f = R.random()
    if f < 0.3:
        return ":".join(g.zfill(4) for g in groups), "ipv6_full"
    if f < 0.75:
        g = groups[:3] + ["0", "0"] + groups[5:]
        s = ":".join(g[:3]) + "::" + ":".join(g[5:])
        return s, "ipv6_compressed"
    if f < 0.9:
        return ":".join(groups), "ipv6_short"
    return f"fe80::{R.getrandbits(16):x}:{R.getrandbits(16):x}:{R.getrandbits(16):x}:{R.getrandbits(16):x}", "ipv6_linklocal"


def ip():
    return ipv6() if R.random() < 0.3 else ipv4()


def mac():
    b = [R.choice([0x00, 0x3c, 0xa4, 0xf0, 0xb8, 0x28, 0xd8, 0x70]) & 0xFC] + [R.getrandbits(8) for _ in range(5)]
    h = [f"{x:02x}" for x in b]
    f = R.random()
    if f < 0.45:
        return ":".join(h).upper() if R.random() < 0.5 else ":".join(h), "colon"
    if f < 0.8:
        return "-".join(h).upper(), "dash"
    return ".".join("".join(h[i:i + 2]) for i in (0, 2, 4)), "cisco"


# ---------------------------------------------------------------- names / email / phones
FIRST = {"en": ["james", "olivia", "liam", "emma", "noah", "ava", "ethan", "mia", "jack", "grace"],
         "de": ["lukas", "anna", "jonas", "lena", "felix", "marie", "paul", "sophie", "jürgen", "katrin"],
         "fr": ["louis", "chloé", "hugo", "léa", "jules", "manon", "théo", "camille", "françois", "inès"],
         "es": ["josé", "lucía", "hugo", "martina", "pablo", "sofía", "álvaro", "carmen", "diego", "elena"],
         "it": ["marco", "giulia", "luca", "chiara", "matteo", "sara", "andrea", "francesca"],
         "nl": ["daan", "emma", "sem", "julia", "lucas", "tess", "bram", "sanne"],
         "pl": ["jakub", "zuzanna", "mateusz", "maja", "łukasz", "agnieszka", "piotr", "katarzyna"],
         "sv": ["erik", "astrid", "lars", "ingrid", "oskar", "åsa", "nils", "maja"],
         "hi": ["aarav", "priya", "rohan", "ananya", "vikram", "sneha", "arjun", "kavya"]}
LAST = {"en": ["smith", "johnson", "brown", "taylor", "wilson", "walker", "o'neill", "clarke", "murphy", "hughes"],
        "de": ["müller", "schmidt", "schneider", "fischer", "weber", "becker", "hoffmann", "schäfer"],
        "fr": ["martin", "bernard", "dubois", "thomas", "robert", "petit", "durand", "lefèvre"],
        "es": ["garcía", "fernández", "gonzález", "rodríguez", "lópez", "martínez", "sánchez", "pérez"],
        "it": ["rossi", "russo", "ferrari", "esposito", "bianchi", "romano", "colombo", "ricci"],
        "nl": ["de jong", "jansen", "de vries", "van den berg", "bakker", "visser", "smit", "meijer"],
        "pl": ["nowak", "kowalski", "wiśniewski", "wójcik", "kowalczyk", "kamiński", "lewandowski"],
        "sv": ["andersson", "johansson", "karlsson", "nilsson", "eriksson", "larsson", "olsson"],
        "hi": ["sharma", "verma", "patel", "iyer", "reddy", "gupta", "nair", "singh"]}
ASCII_MAP = str.maketrans("äöüßéèêëàâçîïôûùñáíóúłśżźćńąęåøÅ'", "aouseeeeaaciiouunaioulszzcnaeaoa_")
DOMAINS = {"en": ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "btinternet.com", "hotmail.co.uk", "protonmail.com", "acme-corp.com", "mail.northwind-traders.io", "contoso.co.uk", "fastmail.fm"],
           "de": ["web.de", "gmx.de", "t-online.de", "posteo.de", "firma-schulze.de", "eng.globex.de"],
           "fr": ["orange.fr", "free.fr", "laposte.net", "sfr.fr", "groupe-lumiere.fr"],
           "es": ["hotmail.es", "telefonica.net", "gmail.com", "empresa-iberica.es"],
           "it": ["libero.it", "virgilio.it", "tiscali.it", "studio-ferrari.it"],
           "nl": ["ziggo.nl", "kpnmail.nl", "xs4all.nl", "bedrijf.nl"],
           "pl": ["wp.pl", "onet.pl", "interia.pl", "o2.pl"],
           "sv": ["telia.se", "bredband.net", "spray.se", "foretag.se"],
           "hi": ["rediffmail.com", "gmail.com", "yahoo.co.in", "infosys-partner.in"]}


def name(lang):
    return R.choice(FIRST[lang]).title(), R.choice(LAST[lang]).title()


def email(lang="en"):
    f, l = name(lang)
    f2 = f.lower().translate(ASCII_MAP)
    l2 = l.lower().translate(ASCII_MAP).replace(" ", "").replace("_", "")
    d = R.choice(DOMAINS[lang])
    c = R.random()
    if c < 0.3:
        local = f"{f2}.{l2}"
    elif c < 0.45:
        local = f"{f2[0]}{l2}"
    elif c < 0.55:
        local = f"{f2}_{l2}{R.randint(1,99)}"
    elif c < 0.65:
        local = f"{f2}.{l2}+{R.choice(['invoices', 'shop', 'github', 'news'])}"
    elif c < 0.75:
        local = f"{l2}{R.randint(1960, 2005)}"
    elif c < 0.85:
        local = R.choice(["billing", "support", "hr", "accounts", "it-helpdesk", "sales"])
    else:
        local = f"{f2}{l2[:3]}"
    v = f"{local}@{d}"
    if R.random() < 0.08:
        v = f"{f.translate(ASCII_MAP)}.{l2.title()}@{d}"
    return v


def _g(n):
    return rd(n)


def phone(cc):
    """returns (value, country)"""
    f = R.random()
    if cc in ("US", "CA"):
        a = R.choice(["212", "415", "312", "617", "206", "512", "303", "404", "702", "646", "718", "213"] if cc == "US" else ["416", "604", "514", "403", "613", "647"])
        while True:
            e = f"{R.randint(2,9)}{R.randint(0,9)}{R.randint(0,9)}"
            if e[1:] != "11" and e != "555":
                break
        l = rd(4)
        fm = R.choice([f"({a}) {e}-{l}", f"{a}-{e}-{l}", f"{a}.{e}.{l}", f"+1 {a} {e} {l}", f"+1-{a}-{e}-{l}",
                       f"+1{a}{e}{l}", f"1 ({a}) {e}-{l}", f"+1 ({a}) {e}-{l}"])
        return fm, cc
    if cc == "GB":
        if f < 0.5:
            m = "7" + R.choice("4579") + rd(8)
            fm = R.choice([f"0{m[:4]} {m[4:]}", f"+44 {m[:4]} {m[4:]}", f"+44 (0){m[:4]} {m[4:]}", f"+44{m}", f"0{m}"])
        else:
            ln = R.choice(["20 7" + rd(3) + " " + rd(4), "20 3" + rd(3) + " " + rd(4), "161 " + rd(3, "2345689") + " " + rd(4), "121 " + rd(3, "2345") + " " + rd(4), "131 " + rd(3, "2345") + " " + rd(4)])
            fm = R.choice([f"0{ln}", f"+44 {ln}", f"+44 (0){ln}"])
        return fm, cc
    if cc == "DE":
        if f < 0.5:
            pre = R.choice(["151", "152", "157", "160", "170", "171", "172", "173", "175", "176", "179"])
            sub = rd(8) if pre.startswith("15") or pre == "176" else rd(7)
            fm = R.choice([f"0{pre} {sub}", f"+49 {pre} {sub}", f"0{pre}/{sub}", f"+49 (0){pre} {sub}", f"+49{pre}{sub}", f"0{pre}-{sub}"])
        else:
            area = R.choice(["30", "89", "40", "69", "221", "711"])
            sub = rd(R.choice([7, 8]), "2345689") if len(area) == 2 else rd(7, "2345689")
            fm = R.choice([f"0{area} {sub}", f"+49 {area} {sub}", f"+49 (0){area} {sub}", f"0{area}/{sub}", f"0{area}-{sub[:3]} {sub[3:]}"])
        return fm, cc
    if cc == "FR":
        if f < 0.5:
            n = R.choice(["6" + R.choice("0124578") + rd(7), "7" + R.choice("3456789") + rd(7)])
        else:
            n = R.choice("1234") + rd(8, "2345678")
        p = [n[0]] + [n[i:i + 2] for i in range(1, 9, 2)]
        fm = R.choice(["0" + p[0] + " " + " ".join(p[1:]),
                       "+33 " + " ".join(p), "+33 (0)" + " ".join(p), "0" + p[0] + "." + ".".join(p[1:]), "0" + n])
        return fm, cc
    if cc == "IN":
        if f < 0.8:
            m = R.choice(["98", "99", "97", "96", "94", "93", "90", "88", "87", "85", "81", "80", "79", "78", "77", "75", "73", "70"]) + rd(8)
            fm = R.choice([f"+91 {m[:5]} {m[5:]}", f"+91-{m}", f"0{m[:5]} {m[5:]}", f"{m[:5]} {m[5:]}", f"+91{m}", f"+91 {m}"])
        else:
            s = rd(8, "2346")
            fm = R.choice([f"+91 11 {s[:4]} {s[4:]}", f"011-{s}", f"+91 22 {s[:4]} {s[4:]}", f"022 {s[:4]} {s[4:]}"])
        return fm, cc
    if cc == "AU":
        if f < 0.55:
            m = "4" + R.choice(["0", "1", "2", "3", "50", "51", "52", "6"])
            m = m + rd(9 - len(m))
            fm = R.choice([f"0{m[:3]} {m[3:6]} {m[6:]}", f"+61 {m[:3]} {m[3:6]} {m[6:]}", f"0{m}", f"+61{m}", f"+61 {m[0]} {m[1:5]} {m[5:]}"])
        else:
            a, s = R.choice([("2", "9" + rd(7)), ("2", "8" + rd(7)), ("3", "9" + rd(7)), ("7", "3" + rd(7)), ("8", "9" + rd(7))])
            fm = R.choice([f"(0{a}) {s[:4]} {s[4:]}", f"0{a} {s[:4]} {s[4:]}", f"+61 {a} {s[:4]} {s[4:]}"])
        return fm, cc
    if cc == "ES":
        n = R.choice(["6" + rd(8), "7" + R.choice("1234") + rd(7), "91" + rd(7, "2345"), "93" + rd(7, "2345"), "95" + rd(7, "2345")])
        fm = R.choice([f"+34 {n[:3]} {n[3:6]} {n[6:]}", f"{n[:3]} {n[3:6]} {n[6:]}", f"+34 {n[:3]} {n[3:5]} {n[5:7]} {n[7:]}", f"{n[:3]} {n[3:5]} {n[5:7]} {n[7:]}", f"+34{n}", f"0034 {n}"])
        return fm, cc
    if cc == "IT":
        if f < 0.55:
            m = R.choice(["320", "328", "333", "338", "339", "340", "345", "347", "348", "349", "380", "388", "392", "393"]) + rd(7)
            fm = R.choice([f"+39 {m[:3]} {m[3:6]} {m[6:]}", f"{m[:3]} {m[3:]}", f"+39 {m[:3]} {m[3:]}", f"+39{m}", f"{m[:3]}-{m[3:]}"])
        else:
            l = R.choice(["06 " + rd(4, "3456789") + " " + rd(4), "02 " + rd(4, "2345678") + " " + rd(4), "011 " + rd(3, "4567") + " " + rd(4), "055 " + rd(3, "2345") + " " + rd(4)])
            fm = R.choice([l, "+39 " + l])
        return fm, cc
    if cc == "NL":
        if f < 0.55:
            m = "6" + R.choice("12345") + rd(7)
            fm = R.choice([f"06-{m[1:]}", f"06 {m[1:3]} {m[3:5]} {m[5:7]} {m[7:]}", f"+31 6 {m[1:5]} {m[5:]}", f"+31{m}", f"+31 (0)6 {m[1:]}"])
        else:
            a, s = R.choice([("20", rd(7, "4567")), ("10", rd(7, "2345")), ("30", rd(7, "2345")), ("70", rd(7, "3456"))])
            fm = R.choice([f"0{a} {s[:3]} {s[3:]}", f"0{a}-{s}", f"+31 {a} {s[:3]} {s[3:]}", f"+31 (0){a} {s}"])
        return fm, cc
    if cc == "SE":
        m = "7" + R.choice("0236") + rd(7)
        return R.choice([f"+46 {m[:2]} {m[2:5]} {m[5:7]} {m[7:]}", f"0{m[:2]}-{m[2:5]} {m[5:7]} {m[7:]}", f"+46{m}"]), cc
    if cc == "PL":
        m = R.choice(["50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"]) + rd(7)
        return R.choice([f"+48 {m[:3]} {m[3:6]} {m[6:]}", f"{m[:3]} {m[3:6]} {m[6:]}", f"+48{m}", f"+48 {m[:3]}-{m[3:6]}-{m[6:]}"]), cc
    if cc == "BR":
        m = "9" + rd(8, "6789")
        return f"+55 11 {m[:5]}-{m[5:]}", cc
    if cc == "JP":
        return f"+81 90-{rd(4)}-{rd(4)}", cc
    raise ValueError(cc)


# ---------------------------------------------------------------- dates of birth
MONTHS = {"en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
          "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"],
          "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"],
          "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"],
          "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre"]}


def dob(lang, us=False):
    y, m, d = R.randint(1942, 2006), R.randint(1, 12), R.randint(1, 28)
    f = R.random()
    if f < 0.25:
        return f"{y}-{m:02d}-{d:02d}", "iso"
    if lang == "en":
        if us:
            return R.choice([(f"{m:02d}/{d:02d}/{y}", "us_slash"), (f"{MONTHS['en'][m-1]} {d}, {y}", "us_long"), (f"{m}/{d}/{y}", "us_short")])
        return R.choice([(f"{d:02d}/{m:02d}/{y}", "eu_slash"), (f"{d} {MONTHS['en'][m-1]} {y}", "long"), (f"{d:02d}-{MONTHS['en'][m-1][:3]}-{y}", "dd-mon-yyyy")])
    if lang in ("de", "pl"):
        if lang == "de" and f < 0.45:
            return f"{d}. {MONTHS['de'][m-1]} {y}", "de_long"
        return f"{d:02d}.{m:02d}.{y}", "dotted"
    if lang in ("fr", "es", "it"):
        if f < 0.45:
            return f"{d} {'de ' if lang == 'es' else ''}{MONTHS[lang][m-1]}{' de' if lang == 'es' else ''} {y}", f"{lang}_long"
        return f"{d:02d}/{m:02d}/{y}", "eu_slash"
    if lang == "nl":
        return f"{d:02d}-{m:02d}-{y}", "nl_dash"
    if lang == "sv":
        return f"{y}-{m:02d}-{d:02d}", "iso"
    return f"{d:02d}/{m:02d}/{y}", "eu_slash"


# ---------------------------------------------------------------- secrets
def aws_id():
    return R.choice(["AKIA", "AKIA", "AKIA", "ASIA"]) + rs(16, string.ascii_uppercase + "234567")


def aws_secret():
    return rs(40, ALNUM + "/+")


def _b62(n):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = B62[r] + s
    return s.rjust(6, "0")


def github_token():
    f = R.random()
    if f < 0.8:
        pre = R.choice(["ghp_", "ghp_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"])
        body = rs(30)
        return pre + body + _b62(zlib.crc32(body.encode()) & 0xffffffff), pre[:-1]
    return "github_pat_11" + rs(20, string.ascii_uppercase + DIG) + "_" + rs(59), "fine_grained"


def slack_token():
    f = R.random()
    if f < 0.45:
        return f"xoxb-{rd(R.randint(10,12),'123456789')}-{rd(R.randint(10,13),'123456789')}-{rs(24)}", "bot"
    if f < 0.7:
        return f"xoxp-{rd(11,'123456789')}-{rd(11,'123456789')}-{rd(13,'123456789')}-{rs(32, '0123456789abcdef')}", "user"
    if f < 0.8:
        return f"xapp-1-A0{rs(9, string.ascii_uppercase + DIG)}-{rd(13,'123456789')}-{rs(64, '0123456789abcdef')}", "app"
    return f"https://hooks.slack.com/services/T{rs(8, string.ascii_uppercase + DIG)}/B{rs(10, string.ascii_uppercase + DIG)}/{rs(24)}", "webhook"


def stripe_key():
    f = R.random()
    if f < 0.45:
        return "sk_live_51" + rs(97), "sk_live_long"
    if f < 0.65:
        return "sk_live_" + rs(24), "sk_live_24"
    if f < 0.8:
        return "rk_live_51" + rs(97), "rk_live"
    return "sk_test_51" + rs(97), "sk_test"


def openai_key():
    f = R.random()
    if f < 0.3:
        return "sk-" + rs(20) + "T3BlbkFJ" + rs(20), "legacy"
    al = ALNUM + "_-"
    if f < 0.85:
        return "sk-proj-" + rs(74, al) + "T3BlbkFJ" + rs(74, al), "project"
    return "sk-svcacct-" + rs(74, al) + "T3BlbkFJ" + rs(74, al), "svcacct"


def anthropic_key():
    return "sk-ant-api03-" + rs(93, ALNUM + "_-") + "AA", "api03"


def google_key():
    return "AIza" + rs(35, ALNUM + "_-"), "google"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt():
    alg = R.choice(["HS256", "RS256", "ES256"])
    hdr = {"alg": alg, "typ": "JWT"}
    if alg != "HS256":
        hdr["kid"] = rs(16)
    now = R.randint(1690000000, 1730000000)
    pl = R.choice([
        {"sub": str(R.randint(10**6, 10**9)), "name": " ".join(name("en")), "iat": now},
        {"sub": "auth0|" + rs(24, "0123456789abcdef"), "aud": "https://api.acme-corp.com", "iat": now, "exp": now + 3600, "scope": "openid profile"},
        {"user_id": R.randint(1, 99999), "role": R.choice(["admin", "user", "service"]), "exp": now + 86400},
        {"iss": "https://securetoken.google.com/acme-prod", "aud": "acme-prod", "auth_time": now, "user_id": rs(28), "sub": rs(28), "iat": now, "exp": now + 3600},
    ])
    siglen = {"HS256": 32, "RS256": 256, "ES256": 64}[alg]
    return ".".join([b64u(json.dumps(hdr, separators=(",", ":")).encode()), b64u(json.dumps(pl, separators=(",", ":")).encode()),
                     b64u(bytes(R.getrandbits(8) for _ in range(siglen)))]), alg


def pem(indent=""):
    kind = R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"])
    head = {"RSA PRIVATE KEY": "MIIEpAIBAAKCAQEA", "PRIVATE KEY": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
            "OPENSSH PRIVATE KEY": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW", "EC PRIVATE KEY": "MHcCAQEEI"}[kind]
    nbytes = {"RSA PRIVATE KEY": 1190, "PRIVATE KEY": 1216, "OPENSSH PRIVATE KEY": 400, "EC PRIVATE KEY": 121}[kind]
    body = head + base64.b64encode(bytes(R.getrandbits(8) for _ in range(nbytes))).decode()
    width = 70 if kind.startswith("OPENSSH") else 64
    lines = [body[i:i + width] for i in range(0, len(body), width)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(indent + l for l in lines) + f"\n{indent}-----END {kind}-----", kind


def generic_secret():
    f = R.random()
    if f < 0.2:
        return rs(R.randint(14, 22), ALNUM + "!#%&*-_") , "password"
    if f < 0.4:
        return rs(64, "0123456789abcdef"), "hex64"
    if f < 0.55:
        return rs(32, "0123456789abcdef"), "hex32"
    if f < 0.7:
        return "SG." + rs(22, ALNUM + "_-") + "." + rs(43, ALNUM + "_-"), "sendgrid"
    if f < 0.8:
        return "key-" + rs(32, "0123456789abcdef"), "mailgun"
    if f < 0.9:
        return base64.b64encode(bytes(R.getrandbits(8) for _ in range(32))).decode(), "b64"
    return "glpat-" + rs(20, ALNUM + "_-"), "gitlab"


def password():
    return R.choice(["Summer", "Winter", "Dragon", "Falcon", "Monkey", "Purple", "Rocket", "Tiger"]) + rs(R.randint(3, 6), DIG + "!$*-_.~") + rs(3)


HOSTS = ["db.internal.acme.io", "prod-db-01.c9xk2a1b.eu-west-1.rds.amazonaws.com", "pg-main.svc.cluster.local", "mysql.shop.local",
         "10-0-3-12.db.example-corp.net", "orders-db.postgres.database.azure.com", "cache-01.redis.internal"]


def conn_string():
    u = R.choice(["app_user", "admin", "root", "svc_orders", "readonly", "etl", "django"])
    p = password()
    f = R.random()
    if f < 0.3:
        sch = R.choice(["postgres", "postgresql"])
        return f"{sch}://{u}:{p}@{R.choice(HOSTS)}:5432/{R.choice(['orders', 'app', 'analytics'])}" + R.choice(["", "?sslmode=require", "?sslmode=verify-full&connect_timeout=10"]), "postgres"
    if f < 0.5:
        return f"mysql://{u}:{p}@{R.choice(HOSTS)}:3306/{R.choice(['shop', 'wordpress', 'crm'])}", "mysql"
    if f < 0.7:
        c = rs(5, "abcdefghijklmnopqrstuvwxyz0123456789")
        return f"mongodb+srv://{u}:{p}@cluster0.{c}.mongodb.net/{R.choice(['test', 'prod', 'users'])}?retryWrites=true&w=majority", "mongodb_srv"
    if f < 0.78:
        return f"mongodb://{u}:{p}@mongo-0.mongo:27017,mongo-1.mongo:27017/admin?replicaSet=rs0", "mongodb"
    if f < 0.9:
        return R.choice([f"redis://:{p}@cache-01.redis.internal:6379/0", f"rediss://default:{p}@{rs(8).lower()}.upstash.io:6379"]), "redis"
    if f < 0.95:
        return f"jdbc:postgresql://{R.choice(HOSTS)}:5432/app?user={u}&password={p}", "jdbc"
    return f"Server=tcp:{rs(8).lower()}.database.windows.net,1433;Initial Catalog=appdb;User ID={u};Password={p};Encrypt=True;", "adonet"


def url_cred():
    u = R.choice(["deploy", "admin", "jenkins", "ci-bot", "backup", "user", "oauth2", "x-access-token"])
    p = password() if u not in ("oauth2", "x-access-token") else rs(32)
    f = R.random()
    if f < 0.35:
        return f"https://{u}:{p}@{R.choice(['registry.acme-corp.com', 'git.internal.example.org', 'nexus.corp.local', 'artifactory.globex.de'])}/{R.choice(['v2/', 'repository/npm-private/', 'team/api.git', ''])}", "https"
    if f < 0.55:
        return f"ftp://{u}:{p}@{R.choice(['ftp.acme-corp.de', 'files.partner-logistics.com', 'ftp.example-hosting.net'])}/{R.choice(['uploads/', 'export/daily.csv', ''])}", "ftp"
    if f < 0.7:
        return f"http://{u}:{p}@{R.choice(['router.local', 'nas.home.arpa', 'camera-03.lan'])}/{R.choice(['cgi-bin/luci', 'admin', ''])}", "http"
    if f < 0.85:
        return f"https://{u}:{p}@github.com/{R.choice(['acme', 'globex', 'initech'])}/{R.choice(['infra', 'api', 'website'])}.git", "git"
    return f"sftp://{u}:{p}@{R.choice(['sftp.bank-partner.co.uk', 'transfer.globex.de'])}:22/outgoing", "sftp"
