"""Ed25519 verification (firmware/ed25519.py): RFC 8032 vectors and the strict rules.

Dual-runtime. Under CPython the host's verifier (host_tools/ed25519_host.py: the same strict
rules around OpenSSL, which a host runtime of the core may use instead) is checked beside
it: both must give the same answer for every input here. The RFC 8032 section 7.1 vectors (TEST 1, 2, 3, 1024 and
SHA(abc)) are copied from the RFC; tests/firmware/ed25519_signer.py (the tests' own pure
signer) must reproduce their signatures byte for byte.
"""

from binascii import unhexlify

from firmware import ed25519 as ed

try:
    from host_tools import ed25519_host as host
except ImportError:  # MicroPython: no `cryptography`
    host = None
from firmware import sha512
from tests.firmware.ed25519_signer import Signer

# (name, secret seed, public key, message, signature), hex
RFC8032 = (
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
)

# the canonical encodings of the 8 points of small order (the torsion subgroup)
SMALL_ORDER = (
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
)
P = 2**255 - 19
IDENTITY = unhexlify(SMALL_ORDER[0])


def _vector(i):
    """(seed, public key, message, signature) of RFC8032[i], as bytes."""
    v = RFC8032[i]
    return unhexlify(v[1]), unhexlify(v[2]), unhexlify(v[3]), unhexlify(v[4])


def _both(public, message, signature):
    """The device's verdict, and under CPython the host verifier's, which must agree."""
    verdict = ed.verify(public, message, signature)
    if host is not None:
        assert host.verify(public, message, signature) == verdict
    return verdict


def _le(n):
    return n.to_bytes(32, "little")


def _check_vector(i):
    v = _vector(i)
    assert _both(v[1], v[2], v[3]), RFC8032[i][0]


def test_rfc8032_vectors_verify():
    for i in range(len(RFC8032)):
        _check_vector(i)


def test_rfc8032_test_1024_message_is_1023_bytes():
    assert len(_vector(3)[2]) == 1023
    assert _vector(4)[2] == sha512.digest(b"abc")


def _check_signer(i):
    v = _vector(i)
    signer = Signer(v[0])
    assert signer.public_key == v[1]
    assert signer.sign(v[2]) == v[3]


def test_test_signer_reproduces_rfc8032_signatures():
    for i in (0, 1, 2, 4):
        _check_signer(i)


def _flipped(data, index, bit):
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _signature_flip_rejected(index):
    v = _vector(1)
    return not _both(v[1], v[2], _flipped(v[3], index, index % 8))


def test_tampered_signature_rejected():
    for index in (0, 13, 31, 32, 47, 63):
        assert _signature_flip_rejected(index), index


def test_tampered_message_or_key_rejected():
    v = _vector(1)
    assert _both(v[1], v[2], v[3])
    assert not _both(v[1], b"\x73", v[3])
    assert not _both(v[1], v[2] + b"\x00", v[3])
    assert not _both(v[1], b"", v[3])
    assert not _both(_flipped(v[1], 5, 2), v[2], v[3])


def _with_s(s):
    v = _vector(1)
    return _both(v[1], v[2], v[3][:32] + _le(s))


def test_s_at_or_above_the_group_order_rejected():
    s = int.from_bytes(_vector(1)[3][32:], "little")
    assert _with_s(s)
    # S + L satisfies the group equation just as S does: only the S < L rule refuses it
    assert not _with_s(s + ed._L)
    assert not _with_s(ed._L)
    assert not _with_s(2**256 - 1)


def test_non_canonical_public_key_rejected():
    # y = 3 is the y of a point of large order; p + 3 encodes the same y non-canonically
    assert ed.valid_public_key(_le(3))
    assert ed.valid_public_key(_le(3 | (1 << 255)))
    assert not ed.valid_public_key(_le(P + 3))
    assert not ed.valid_public_key(_le((P + 3) | (1 << 255)))
    assert not ed.valid_public_key(_le(2**255 - 1))
    # "-0": x = 0 with the sign bit set
    assert not ed.valid_public_key(_le(1 | (1 << 255)))
    # y = 2: no x on the curve
    assert not ed.valid_public_key(_le(2))
    assert not _both(_le(P + 3), _vector(1)[2], _vector(1)[3])


def _identity_r_signature(r_bytes):
    """R = the identity written as r_bytes, S = k a: signed by the owner of TEST 1's key."""
    signer = Signer(_vector(0)[0])
    k = int.from_bytes(sha512.digest(r_bytes + signer.public_key + b"lci777"), "little") % ed._L
    return _both(signer.public_key, b"lci777", r_bytes + _le(k * signer.scalar % ed._L))


def test_non_canonical_r_rejected():
    # a valid signature by the key's owner with R = the identity...
    assert _identity_r_signature(IDENTITY)
    # ...does not verify with the same R written non-canonically (y = p + 1)
    assert not _identity_r_signature(_le(P + 1))


def _small_order_refused(text):
    key = unhexlify(text)
    # the classic forgery: R = identity, S = 0 verifies under the identity key with any
    # message unless the key is refused
    return not ed.valid_public_key(key) and not _both(key, b"anything", IDENTITY + bytes(32))


def test_small_order_public_keys_rejected():
    for text in SMALL_ORDER:
        assert _small_order_refused(text), text


def test_the_small_order_check_is_what_stops_the_forgery():
    # the group equation alone accepts R = identity, S = 0 under the identity key
    assert ed._pure_check(ed._decode(IDENTITY, [0, 0, 0, 0]), IDENTITY, 0, 12345)
    assert ed._small_order(ed._decode(IDENTITY, [0, 0, 0, 0]))
    assert not ed._small_order(ed._decode(_vector(1)[1], [0, 0, 0, 0]))


def test_wrong_lengths_and_types_are_false_not_errors():
    v = _vector(1)
    assert not _both(v[1][:31], v[2], v[3])
    assert not _both(v[1] + b"\x00", v[2], v[3])
    assert not _both(v[1], v[2], v[3][:63])
    assert not _both(v[1], v[2], v[3] + b"\x00")
    assert not _both(None, v[2], v[3])
    assert not _both(v[1], None, v[3])
    assert not _both(v[1], v[2], 12)
    assert _both(bytearray(v[1]), bytearray(v[2]), bytearray(v[3]))
    assert not ed.valid_public_key(None)
    assert not ed.valid_public_key(b"")


def test_curve_constants():
    assert ed._Q == P
    assert ed._L == 2**252 + 27742317777372353535851937790883648493
    assert (ed._D * 121666 + 121665) % P == 0
    assert ed._D2 == 2 * ed._D % P
    assert ed._SQRT_M1 * ed._SQRT_M1 % P == P - 1
    x = ed._BX
    y = ed._BY
    assert y * 5 % P == 4
    assert (y * y - x * x - 1 - ed._D * x * x * y * y) % P == 0


def _times_L(point):
    """[L]point, by the verifier's own chain."""
    ed._table(point, ed._KEY_TABLE)
    out = [0, 1, 1, 0]
    ed._chain(out, ed._naf(0, bytearray(256)), ed._naf(ed._L, bytearray(256)))
    ed._release(ed._KEY_TABLE, None)
    return ed._encode(out)


def test_base_point_has_order_L():
    assert _times_L([ed._BX, ed._BY, 1, ed._BX * ed._BY % P]) == IDENTITY
