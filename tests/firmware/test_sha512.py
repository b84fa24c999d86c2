"""SHA-512 (firmware/sha512.py) against FIPS 180-4 examples and padding-boundary digests.

Dual-runtime: under MicroPython only the pure implementation exists; under CPython the
pure one is also compared with hashlib's for every length up to 300 bytes. The boundary
digests below were computed with CPython's hashlib (an independent implementation) for
the message bytes (7 i + 3) mod 256, i = 0 .. n-1.
"""

from binascii import unhexlify

from firmware import sha512

FIPS = (
    (b"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
    (b"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
    ),
)

BOUNDARIES = (
    (111, "68cffa6d0d76f309c9ce0d35280939f8e25990c43b7b086ccdf709be35b07d4ddba599541ff2b1c19d34ea49aeafb9659adb7ac3c0b078bb30a22d57fc6687ef"),
    (112, "d0865c524d1dddf7c23b799c413f5adcd7caefd3f66a9b49750ec81066012c25a8bcf94ddea6dc525691673097ca40e0101e897fc97218cfdb0704084e2bef4b"),
    (127, "e0b6a20f1c0c88970a9340152cd5a1c1ecf3d3b8de55102741879438079473540133b812706e5dbec322c8c9523b6fc8c6d16ee626e87ad5fe3d2916afedc369"),
    (128, "99b16f17aa0b969a5b8f08f367719d516e330ccd2660b6f0688ec031dbc783de50a1cd185a2568dba75070a2403d17d4741d163578515dfd2ff756ddfe4d47b1"),
    (129, "a1556e29185778aa5991e34b8884c840d589f0fbb4b8ed590e51e9ac4eb03a008125000db2671f8fe7f485b59a77b518670078ecb41a54b4cd02a7f1d2ca4c6d"),
    (239, "18ee83f30261c3c645d52aee6a209105b25bba39d33845ef48984cc238e4f21661fb7bd7dd4336f71c40fe87d95e5115d6c7be52e0d3e7e7877d24500b5b58df"),
    (240, "9d60ee60d29ec4fa0b9690c04c1c29413bbe3ed345639182d9d53dcc05926b77b04f4fec1562fb85182954c96b7cbb5d5e4410251ff4f352d09a2da90419fb13"),
    (256, "e49c208e41556e859d1a52d14784a061c2d5ae2c8690a5360e9f9344f60861c1362a9ec05a9f08a4167b3da41bdd122a387413dd06976470e4beff5053f2ac71"),
)


def _message(n):
    out = bytearray(n)
    for i in range(n):
        out[i] = (i * 7 + 3) & 255
    return bytes(out)


def test_fips_examples():
    for message, digest in FIPS:
        assert sha512.digest_pure(message) == unhexlify(digest)
        assert sha512.digest(message) == unhexlify(digest)


def test_padding_boundaries():
    # 111/112 bytes: the length field fits or spills into a second block; 127..129 and
    # 239/240 straddle block ends
    for n, digest in BOUNDARIES:
        assert sha512.digest_pure(_message(n)) == unhexlify(digest), n


def test_accepts_bytearray_and_memoryview():
    expected = unhexlify(FIPS[1][1])
    assert sha512.digest_pure(bytearray(b"abc")) == expected
    assert sha512.digest_pure(memoryview(b"abc")) == expected


def test_pure_matches_native_where_there_is_one():
    if not sha512.NATIVE:
        return  # MicroPython: the FIPS and boundary digests above are the check
    from hashlib import sha512 as native

    for n in range(0, 300):
        message = _message(n)
        assert sha512.digest_pure(message) == native(message).digest(), n
