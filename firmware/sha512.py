"""SHA-512 (FIPS 180-4) for the Ed25519 verifier: hashlib's when the runtime has it, else pure Python.

MicroPython's hashlib has only sha256 on most ports, and Ed25519
hashes R || A || M with SHA-512, so this module owns a pure implementation. 64-bit words
are MicroPython big ints; a rotation is one shift and one mask of the word doubled to 128
bits (w | w << 64), which keeps the number of big-int operations per round small. One small
function per round keeps each frame small.

    digest(data) -> 64 bytes      the hash, by the fastest implementation available
    digest_pure(data) -> 64 bytes the pure implementation (tests compare the two)
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import struct

try:
    from hashlib import sha512 as _native  # type: ignore[attr-defined]
except ImportError:
    _native = None

_MASK = const(0xFFFFFFFFFFFFFFFF)

# The 80 round constants K[i] (FIPS 180-4 4.2.3), big-endian, 8 bytes each, read with
# struct.unpack_from(">Q", _K, 8 * i). Bytes, not a tuple of ints: a 64-bit constant is a
# big int, built in RAM when the module loads (about 5 KB for 88 of them on a 64-bit
# port); a bytes constant stays in the ROMFS image.
_K = (
    b"\x42\x8a\x2f\x98\xd7\x28\xae\x22\x71\x37\x44\x91\x23\xef\x65\xcd"
    b"\xb5\xc0\xfb\xcf\xec\x4d\x3b\x2f\xe9\xb5\xdb\xa5\x81\x89\xdb\xbc"
    b"\x39\x56\xc2\x5b\xf3\x48\xb5\x38\x59\xf1\x11\xf1\xb6\x05\xd0\x19"
    b"\x92\x3f\x82\xa4\xaf\x19\x4f\x9b\xab\x1c\x5e\xd5\xda\x6d\x81\x18"
    b"\xd8\x07\xaa\x98\xa3\x03\x02\x42\x12\x83\x5b\x01\x45\x70\x6f\xbe"
    b"\x24\x31\x85\xbe\x4e\xe4\xb2\x8c\x55\x0c\x7d\xc3\xd5\xff\xb4\xe2"
    b"\x72\xbe\x5d\x74\xf2\x7b\x89\x6f\x80\xde\xb1\xfe\x3b\x16\x96\xb1"
    b"\x9b\xdc\x06\xa7\x25\xc7\x12\x35\xc1\x9b\xf1\x74\xcf\x69\x26\x94"
    b"\xe4\x9b\x69\xc1\x9e\xf1\x4a\xd2\xef\xbe\x47\x86\x38\x4f\x25\xe3"
    b"\x0f\xc1\x9d\xc6\x8b\x8c\xd5\xb5\x24\x0c\xa1\xcc\x77\xac\x9c\x65"
    b"\x2d\xe9\x2c\x6f\x59\x2b\x02\x75\x4a\x74\x84\xaa\x6e\xa6\xe4\x83"
    b"\x5c\xb0\xa9\xdc\xbd\x41\xfb\xd4\x76\xf9\x88\xda\x83\x11\x53\xb5"
    b"\x98\x3e\x51\x52\xee\x66\xdf\xab\xa8\x31\xc6\x6d\x2d\xb4\x32\x10"
    b"\xb0\x03\x27\xc8\x98\xfb\x21\x3f\xbf\x59\x7f\xc7\xbe\xef\x0e\xe4"
    b"\xc6\xe0\x0b\xf3\x3d\xa8\x8f\xc2\xd5\xa7\x91\x47\x93\x0a\xa7\x25"
    b"\x06\xca\x63\x51\xe0\x03\x82\x6f\x14\x29\x29\x67\x0a\x0e\x6e\x70"
    b"\x27\xb7\x0a\x85\x46\xd2\x2f\xfc\x2e\x1b\x21\x38\x5c\x26\xc9\x26"
    b"\x4d\x2c\x6d\xfc\x5a\xc4\x2a\xed\x53\x38\x0d\x13\x9d\x95\xb3\xdf"
    b"\x65\x0a\x73\x54\x8b\xaf\x63\xde\x76\x6a\x0a\xbb\x3c\x77\xb2\xa8"
    b"\x81\xc2\xc9\x2e\x47\xed\xae\xe6\x92\x72\x2c\x85\x14\x82\x35\x3b"
    b"\xa2\xbf\xe8\xa1\x4c\xf1\x03\x64\xa8\x1a\x66\x4b\xbc\x42\x30\x01"
    b"\xc2\x4b\x8b\x70\xd0\xf8\x97\x91\xc7\x6c\x51\xa3\x06\x54\xbe\x30"
    b"\xd1\x92\xe8\x19\xd6\xef\x52\x18\xd6\x99\x06\x24\x55\x65\xa9\x10"
    b"\xf4\x0e\x35\x85\x57\x71\x20\x2a\x10\x6a\xa0\x70\x32\xbb\xd1\xb8"
    b"\x19\xa4\xc1\x16\xb8\xd2\xd0\xc8\x1e\x37\x6c\x08\x51\x41\xab\x53"
    b"\x27\x48\x77\x4c\xdf\x8e\xeb\x99\x34\xb0\xbc\xb5\xe1\x9b\x48\xa8"
    b"\x39\x1c\x0c\xb3\xc5\xc9\x5a\x63\x4e\xd8\xaa\x4a\xe3\x41\x8a\xcb"
    b"\x5b\x9c\xca\x4f\x77\x63\xe3\x73\x68\x2e\x6f\xf3\xd6\xb2\xb8\xa3"
    b"\x74\x8f\x82\xee\x5d\xef\xb2\xfc\x78\xa5\x63\x6f\x43\x17\x2f\x60"
    b"\x84\xc8\x78\x14\xa1\xf0\xab\x72\x8c\xc7\x02\x08\x1a\x64\x39\xec"
    b"\x90\xbe\xff\xfa\x23\x63\x1e\x28\xa4\x50\x6c\xeb\xde\x82\xbd\xe9"
    b"\xbe\xf9\xa3\xf7\xb2\xc6\x79\x15\xc6\x71\x78\xf2\xe3\x72\x53\x2b"
    b"\xca\x27\x3e\xce\xea\x26\x61\x9c\xd1\x86\xb8\xc7\x21\xc0\xc2\x07"
    b"\xea\xda\x7d\xd6\xcd\xe0\xeb\x1e\xf5\x7d\x4f\x7f\xee\x6e\xd1\x78"
    b"\x06\xf0\x67\xaa\x72\x17\x6f\xba\x0a\x63\x7d\xc5\xa2\xc8\x98\xa6"
    b"\x11\x3f\x98\x04\xbe\xf9\x0d\xae\x1b\x71\x0b\x35\x13\x1c\x47\x1b"
    b"\x28\xdb\x77\xf5\x23\x04\x7d\x84\x32\xca\xab\x7b\x40\xc7\x24\x93"
    b"\x3c\x9e\xbe\x0a\x15\xc9\xbe\xbc\x43\x1d\x67\xc4\x9c\x10\x0d\x4c"
    b"\x4c\xc5\xd4\xbe\xcb\x3e\x42\xb6\x59\x7f\x29\x9c\xfc\x65\x7e\x2a"
    b"\x5f\xcb\x6f\xab\x3a\xd6\xfa\xec\x6c\x44\x19\x8c\x4a\x47\x58\x17"
)

# Working lists, allocated once at import and reused, so a hash allocates no lists. Not
# reentrant: one hash at a time, which is all a single-threaded device does.
_W = [0] * 16  # the message schedule's last 16 words: word i is _W[i & 15]
_V = [0] * 8  # working variables a..h
_STATE = [0] * 8

_IV = (  # the initial hash value H(0), as _K
    b"\x6a\x09\xe6\x67\xf3\xbc\xc9\x08\xbb\x67\xae\x85\x84\xca\xa7\x3b"
    b"\x3c\x6e\xf3\x72\xfe\x94\xf8\x2b\xa5\x4f\xf5\x3a\x5f\x1d\x36\xf1"
    b"\x51\x0e\x52\x7f\xad\xe6\x82\xd1\x9b\x05\x68\x8c\x2b\x3e\x6c\x1f"
    b"\x1f\x83\xd9\xab\xfb\x41\xbd\x6b\x5b\xe0\xcd\x19\x13\x7e\x21\x79"
)


def _next_word(w, i):
    """Schedule word i >= 16 from the 16 before it, stored over word i - 16 (w[i & 15]):
    the schedule never holds more than 16 words (64 fewer big ints than all 80 at once)."""
    a = w[(i - 15) & 15]
    x = a | (a << 64)
    b = w[(i - 2) & 15]
    y = b | (b << 64)
    x = ((x >> 1) ^ (x >> 8) ^ (a >> 7)) & _MASK
    y = ((y >> 19) ^ (y >> 61) ^ (b >> 6)) & _MASK
    word = (w[i & 15] + x + w[(i - 7) & 15] + y) & _MASK
    w[i & 15] = word
    return word


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
    v = _V
    i = 0
    while i < 8:
        v[i] = state[i]
        i += 1
    i = 0
    while i < 80:
        _round(v, struct.unpack_from(">Q", _K, 8 * i)[0] + (_W[i] if i < 16 else _next_word(_W, i)))
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
        state[i] = struct.unpack_from(">Q", _IV, 8 * i)[0]
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
    out = struct.pack(">8Q", *state)
    _clear(_W)  # 24 big ints (~1.5 KB on a 64-bit port) the caller's next step need not carry
    _clear(_V)
    _clear(state)
    return out


def _clear(words):
    i = 0
    while i < len(words):
        words[i] = 0
        i += 1


def digest(data):
    """SHA-512 of `data`: 64 bytes (hashlib's if present, else the pure implementation)."""
    if _native is not None:
        return _native(bytes(data)).digest()
    return digest_pure(data)


NATIVE = _native is not None
