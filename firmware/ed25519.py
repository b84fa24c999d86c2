"""Ed25519 signature verification (RFC 8032) in pure Python, the device's own verifier.

    verify(public_key, message, signature) -> bool
    valid_public_key(public_key) -> bool              canonical, on the curve, not of small order

The rules, applied before any curve arithmetic (host_tools/ed25519_host.py applies the same
ones around OpenSSL, so a signature verifies there exactly when it verifies here; a host
runtime of the core may hand the Authority that faster verifier):
- the public key and the signature have the right lengths (32 and 64 bytes);
- S < L (RFC 8032 5.1.7 step 1; a malleable S + L is refused);
- the public key's y is canonical (y < p), the point is on the curve, and "-0" (x = 0 with
  the sign bit set) is refused;
- the public key is not of small order (8A = identity), so no signature can verify under
  a key that carries no secret;
- R is compared as bytes with the canonical encoding of [S]B - [k]A, so a non-canonical
  R never verifies. This is the cofactorless equation that OpenSSL and libsodium use.

The pure verifier works in extended twisted Edwards coordinates (X:Y:Z:T) with the a = -1
formulas of Hisil, Wong, Carter and Dawson (doubling 4M+4S, mixed addition 8M), computes
[S]B + [k](-A) with a joint double-and-add over width-w NAF digits of both scalars (the
Straus-Shamir trick: one shared chain of ~253 doublings), and inverts once, at the end.
Both tables of odd multiples (B's and the key's) are built per verification and released
after it: between token checks the verifier holds no points in RAM (a board's heap is
what it is short of; the table costs one doubling and a few additions).

Every function here keeps its frame small and works on small lists in place, allocated
once: a verification allocates little beyond the big integers themselves.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

from firmware.unload import drop

# the field prime p = 2^255 - 19, the group order L, d = -121665/121666, 2d, sqrt(-1)
# (module globals, not const(): the tests check them against the curve's definition)
_Q = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED
_L = 0x1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
# the base point B
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_Y_MASK = const((1 << 255) - 1)

_W = const(4)  # NAF width for both scalars: digits are odd, |d| < 2^(w-1) = 8

# Working memory of one verification, sized for a board's heap: each table holds the
# 2^(w-2) = 4 cached odd multiples 1P, 3P, 5P, 7P (entry d >> 1: w = 5 saves ~2% of the
# multiplications and holds twice the points, ~4 KB more at the check's peak); a negative
# digit subtracts its positive entry (_sub) instead of keeping a negated copy. The NAF digits
# live in bytearrays, biased by _BIAS (256 bytes each, not a 2 KB list of ints). The
# tables are filled per verification and emptied after it, so the verifier is not
# reentrant (one verification at a time, as on a device).
_BIAS = const(16)
_BASE_TABLE = [None] * (1 << (_W - 2))  # B's cached odd multiples, per verification
_KEY_TABLE = [None] * (1 << (_W - 2))  # -A's, per verification
_S_DIGITS = bytearray(256)  # NAF digits of S, biased
_K_DIGITS = bytearray(256)  # NAF digits of k, biased
_ACC = [0, 1, 1, 0]  # the running point
_KEY = [0, 1, 1, 0]  # the decoded public key
_T1 = [0, 1, 1, 0]  # scratch points
_T2 = [0, 1, 1, 0]


# ---- point arithmetic: points are lists [X, Y, Z, T] updated in place -------------------
def _dbl(P):
    """P = 2P, leaving T stale (the next operation is another doubling)."""
    x = P[0]
    y = P[1]
    z = P[2]
    e = (x + y) * (x + y) % _Q
    x = x * x % _Q  # A
    y = y * y % _Q  # B
    e = e - x - y  # E = (X+Y)^2 - A - B
    z = (y - x - 2 * z * z) % _Q  # F = G - C with G = B - A, C = 2Z^2
    P[0] = e * z % _Q
    P[2] = z * (y - x) % _Q
    z = -x - y  # H
    P[1] = (y - x) * z % _Q


def _dbl_t(P):
    """P = 2P with T (an addition follows)."""
    x = P[0]
    y = P[1]
    z = P[2]
    e = (x + y) * (x + y) % _Q
    x = x * x % _Q
    y = y * y % _Q
    e = e - x - y
    z = (y - x - 2 * z * z) % _Q
    P[0] = e * z % _Q
    P[2] = z * (y - x) % _Q
    z = -x - y
    P[1] = (y - x) * z % _Q
    P[3] = e * z % _Q


def _add(P, c):
    """P = P + C where C is cached as (Y+X, Y-X, 2Z, 2dT)."""
    a = (P[1] - P[0]) * c[1] % _Q  # A
    b = (P[1] + P[0]) * c[0] % _Q  # B
    t = P[3] * c[3] % _Q  # C
    z = P[2] * c[2] % _Q  # D
    e = b - a  # E
    b = b + a  # H
    a = z - t  # F
    z = z + t  # G
    P[0] = e * a % _Q
    P[1] = z * b % _Q
    P[2] = a * z % _Q
    P[3] = e * b % _Q


def _sub(P, c):
    """P = P - C, C cached as in _add: -C is (Y-X, Y+X, 2Z, -2dT), so the roles swap."""
    a = (P[1] - P[0]) * c[0] % _Q
    b = (P[1] + P[0]) * c[1] % _Q
    t = -P[3] * c[3] % _Q
    z = P[2] * c[2] % _Q
    e = b - a
    b = b + a
    a = z - t
    z = z + t
    P[0] = e * a % _Q
    P[1] = z * b % _Q
    P[2] = a * z % _Q
    P[3] = e * b % _Q


def _cached(P):
    """The cached form (Y+X, Y-X, 2Z, 2dT) of extended point P."""
    return ((P[1] + P[0]) % _Q, (P[1] - P[0]) % _Q, 2 * P[2] % _Q, _D2 * P[3] % _Q)


def _copy(dest, src):
    dest[0] = src[0]
    dest[1] = src[1]
    dest[2] = src[2]
    dest[3] = src[3]
    return dest


def _table(P, t):
    """Fill `t` with P's cached odd multiples: t[d >> 1] = dP for d = 1, 3, .., 2^(w-1) - 1."""
    _dbl_t(_copy(_T1, P))
    c2 = _cached(_T1)
    acc = _copy(_T2, P)
    i = 0
    while i < len(t):
        if i:
            _add(acc, c2)
        t[i] = _cached(acc)
        i += 1
    return t


def _naf(k, out):
    """Fill `out` (256 bytes) with the width-w NAF digits of k plus _BIAS, least significant first."""
    i = 0
    while i < 256:
        out[i] = _BIAS
        i += 1
    i = 0
    size = 1 << _W
    while k:
        if k & 1:
            d = k & (size - 1)
            if d >= size >> 1:
                d -= size
            k -= d
            out[i] = d + _BIAS
        k >>= 1
        i += 1
    return out


def _digit(P, d, t):
    """P = P + dP' for a nonzero NAF digit d (biased) of the scalar whose table t is given."""
    d -= _BIAS
    if d > 0:
        _add(P, t[d >> 1])
    else:
        _sub(P, t[-d >> 1])


def _chain(P, s, k):
    """P = P + sum over i of 2^i (s_i B' + k_i A'), s and k the scalars' NAF digits: one
    doubling chain for both scalars."""
    i = 255
    while i >= 0 and s[i] == _BIAS and k[i] == _BIAS:
        i -= 1
    while i >= 0:
        a = s[i]
        b = k[i]
        if a == _BIAS and b == _BIAS:
            _dbl(P)
        else:
            _dbl_t(P)
            if a != _BIAS:
                _digit(P, a, _BASE_TABLE)
            if b != _BIAS:
                _digit(P, b, _KEY_TABLE)
        i -= 1


def _square_times(z, n):
    """z^(2^n) mod p."""
    while n > 0:
        z = z * z % _Q
        n -= 1
    return z


def _pow_2_250_1(z):
    """(z^(2^250 - 1), z^11) mod p."""
    t0 = z * z % _Q  # z^2
    t1 = _square_times(t0, 2) * z % _Q  # z^9
    t0 = t0 * t1 % _Q  # z^11
    t1 = t1 * t0 * t0 % _Q  # z^31 = z^(2^5 - 1)
    z11 = t0
    t1 = _square_times(t1, 5) * t1 % _Q  # 2^10 - 1
    t0 = _square_times(t1, 10) * t1 % _Q  # 2^20 - 1
    t0 = _square_times(t0, 20) * t0 % _Q  # 2^40 - 1
    t1 = _square_times(t0, 10) * t1 % _Q  # 2^50 - 1
    t0 = _square_times(t1, 50) * t1 % _Q  # 2^100 - 1
    t0 = _square_times(t0, 100) * t0 % _Q  # 2^200 - 1
    return _square_times(t0, 50) * t1 % _Q, z11  # 2^250 - 1


def _invert(z):
    """z^(p - 2) = 1/z mod p (z^(2^255 - 21))."""
    t = _pow_2_250_1(z)
    return _square_times(t[0], 5) * t[1] % _Q


def _pow_p58(z):
    """z^((p - 5) / 8) mod p (z^(2^252 - 3))."""
    return _square_times(_pow_2_250_1(z)[0], 2) * z % _Q


# ---- encodings --------------------------------------------------------------------------
def _recover_x(y, sign):
    """x with x^2 = (y^2 - 1) / (d y^2 + 1) and the given sign bit, or None (RFC 8032 5.1.3)."""
    u = (y * y - 1) % _Q
    v = (_D * y * y + 1) % _Q
    x = u * v * v * v % _Q  # u v^3
    x = x * _pow_p58(x * v * v * v * v % _Q) % _Q  # u v^3 (u v^7)^((p-5)/8)
    v = v * x * x % _Q
    if v != u:
        if v != (_Q - u) % _Q:
            return None
        x = x * _SQRT_M1 % _Q
    if x == 0 and sign:
        return None  # "-0"
    if (x & 1) != sign:
        x = _Q - x
    return x


def _decode(raw, out):
    """`out` set to the point encoded by 32 bytes, or None if not canonical or not on the curve."""
    y = int.from_bytes(raw, "little")
    sign = y >> 255
    y = y & _Y_MASK
    if y >= _Q:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    out[0] = x
    out[1] = y
    out[2] = 1
    out[3] = x * y % _Q
    return out


def _encode(P):
    """The canonical 32-byte encoding of P (one field inversion)."""
    z = _invert(P[2])
    x = P[0] * z % _Q
    y = P[1] * z % _Q
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _small_order(P):
    """True if 8P is the identity (P lies in the torsion subgroup)."""
    P = _copy(_T1, P)
    _dbl(P)
    _dbl(P)
    _dbl(P)
    return P[0] % _Q == 0 and (P[1] - P[2]) % _Q == 0


def _checked_key(public_key):
    """The decoded public key, or None if it is not 32 bytes, not canonical or of small order."""
    if len(public_key) != 32:
        return None
    A = _decode(public_key, _KEY)
    if A is None or _small_order(A):
        return None
    return A


def valid_public_key(public_key):
    """True if `public_key` is a canonical encoding of a curve point that is not of small order."""
    try:
        return _checked_key(bytes(public_key)) is not None
    except (TypeError, ValueError):
        return False


def _base_table():
    _ACC[0] = _BX
    _ACC[1] = _BY
    _ACC[2] = 1
    _ACC[3] = _BX * _BY % _Q
    return _table(_ACC, _BASE_TABLE)


def _release(items, value):
    """Drop every point a working list holds (each entry set to `value`), so the GC can
    take them between checks."""
    i = 0
    while i < len(items):
        items[i] = value
        i += 1


def _reset(P):
    """P = the identity (0 : 1 : 1 : 0)."""
    P[0] = 0
    P[1] = 1
    P[2] = 1
    P[3] = 0
    return P


def _pure_check(A, R, s, k):
    """True if [s]B - [k]A encodes to R (A is consumed)."""
    A[0] = _Q - A[0]  # -A
    A[3] = _Q - A[3]
    _naf(s, _S_DIGITS)
    _naf(k, _K_DIGITS)
    _base_table()
    _table(A, _KEY_TABLE)
    A = _reset(_ACC)
    _chain(A, _S_DIGITS, _K_DIGITS)
    ok = _encode(A) == R
    _release(_BASE_TABLE, None)
    _release(_KEY_TABLE, None)
    _reset(_ACC)  # and the points' big ints: nothing of a check outlives it
    _reset(_KEY)
    _reset(_T1)
    _reset(_T2)
    return ok


def _as_bytes(value):
    try:
        return bytes(value)
    except (TypeError, ValueError):
        return None


def _prechecked(public_key, signature):
    """(A, s) if the key and the signature pass the strict rules, else None."""
    if public_key is None or signature is None or len(signature) != 64:
        return None
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return None
    A = _checked_key(public_key)
    if A is None:
        return None
    return (A, s)


def _challenge(signature, public_key, message):
    """k = SHA-512(R || A || M) mod L. SHA-512 is imported for the hash and dropped again
    (firmware/unload.py) before the curve arithmetic, the check's deepest point."""
    from firmware import sha512

    digest = sha512.digest(signature[:32] + public_key + message)
    drop("firmware.sha512")
    return int.from_bytes(digest, "little") % _L


def verify(public_key, message, signature):
    """True if `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    public_key = _as_bytes(public_key)
    signature = _as_bytes(signature)
    message = _as_bytes(message)
    checked = _prechecked(public_key, signature)
    if checked is None or message is None:
        return False
    k = _challenge(signature, public_key, message)
    return _pure_check(checked[0], signature[:32], checked[1], k)
