"""SHA-512 (FIPS 180-4) for the Ed25519 verifier: hashlib's when the runtime has it, else pure Python.

MicroPython's hashlib has only sha256 on most ports (the WASI build included), and Ed25519
hashes R || A || M with SHA-512, so this module owns a pure implementation. 64-bit words
are MicroPython big ints; a rotation is one shift and one mask of the word doubled to 128
bits (w | w << 64), which keeps the number of big-int operations per round small. Every
function keeps its frame at 11 words or fewer (see firmware/ed25519.py on the WASI build's
heap-allocated frames), hence one small function per round.

    digest(data) -> 64 bytes      the hash, by the fastest implementation available
    digest_pure(data) -> 64 bytes the pure implementation (tests compare the two)
"""

import struct

try:
    from hashlib import sha512 as _native  # type: ignore[attr-defined]
except ImportError:
    _native = None

_MASK = 0xFFFFFFFFFFFFFFFF

_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)

# Working lists, allocated once at import and reused (the WASI MicroPython build can lose a
# list to a GC that runs while the list is being created; see firmware/ed25519.py). Not
# reentrant: one hash at a time, which is all a single-threaded device does.
_W = [0] * 80  # message schedule
_V = [0] * 8  # working variables a..h
_STATE = [0] * 8

_IV = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)


def _expand(w):
    """Fill the 80-word schedule `w` from its first 16 words, in place."""
    i = 16
    while i < 80:
        x = w[i - 15]
        x = x | (x << 64)
        y = w[i - 2]
        y = y | (y << 64)
        x = ((x >> 1) ^ (x >> 8) ^ (w[i - 15] >> 7)) & _MASK
        y = ((y >> 19) ^ (y >> 61) ^ (w[i - 2] >> 6)) & _MASK
        w[i] = (w[i - 16] + x + w[i - 7] + y) & _MASK
        i += 1


def _round(v, kw):
    """One SHA-512 round on the working variables v = [a, ..., h], in place; kw = K[i] + W[i]."""
    e = v[4]
    x = e | (e << 64)
    t = v[7] + (((x >> 14) ^ (x >> 18) ^ (x >> 41)) & _MASK) + (v[6] ^ (e & (v[5] ^ v[6]))) + kw
    e = v[0]
    x = e | (e << 64)
    x = (((x >> 28) ^ (x >> 34) ^ (x >> 39)) & _MASK) + ((e & v[1]) | (v[2] & (e | v[1])))
    v.pop()
    v.insert(0, (t + x) & _MASK)
    v[4] = (v[4] + t) & _MASK


def _load(block):
    """The block's 16 big-endian words into _W[0:16]."""
    words = struct.unpack(">16Q", block)
    i = 0
    while i < 16:
        _W[i] = words[i]
        i += 1


def _compress(state, block):
    """Fold one 128-byte block into `state` (a list of 8 words), in place."""
    _load(block)
    _expand(_W)
    v = _V
    i = 0
    while i < 8:
        v[i] = state[i]
        i += 1
    i = 0
    while i < 80:
        _round(v, _K[i] + _W[i])
        i += 1
    i = 0
    while i < 8:
        state[i] = (state[i] + v[i]) & _MASK
        i += 1


def _padded_tail(data):
    """The last partial block of `data` with the padding and the bit length: 128 or 256 bytes."""
    n = len(data)
    tail = data[n - n % 128 :] + b"\x80"
    tail = tail + bytes((112 - len(tail)) % 128)
    return tail + struct.pack(">QQ", 0, n * 8)


def digest_pure(data):
    """SHA-512 of `data` (bytes-like) in pure Python: 64 bytes."""
    data = bytes(data)
    state = _STATE
    i = 0
    while i < 8:
        state[i] = _IV[i]
        i += 1
    i = 0
    while i + 128 <= len(data):
        _compress(state, data[i : i + 128])
        i += 128
    data = _padded_tail(data)
    i = 0
    while i < len(data):
        _compress(state, data[i : i + 128])
        i += 128
    return struct.pack(">8Q", *state)


def digest(data):
    """SHA-512 of `data`: 64 bytes (hashlib's if present, else the pure implementation)."""
    if _native is not None:
        return _native(bytes(data)).digest()
    return digest_pure(data)


NATIVE = _native is not None
