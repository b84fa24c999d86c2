"""Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).

encode() removes every zero byte from a block so that 0x00 can delimit frames on the
wire; the overhead is at most 1 byte per 254 bytes of input, plus 1. decode() reverses it
and returns None on malformed input (a zero inside, or a code byte pointing past the
end) instead of raising, because bad bytes on a serial line are ordinary.
"""


def encode(data):
    out = bytearray(max_encoded_len(len(data)))
    code_at = 0  # where the current block's code byte goes
    w = 1
    code = 1
    n = len(data)
    for i in range(n):
        byte = data[i]
        if byte == 0:
            out[code_at] = code
            code_at = w
            w += 1
            code = 1
        else:
            out[w] = byte
            w += 1
            code += 1
            if code == 0xFF and i + 1 < n:
                out[code_at] = code
                code_at = w
                w += 1
                code = 1
    out[code_at] = code
    return bytes(out[:w])


def decode(block):
    """Decode one COBS block (without its 0x00 delimiter); None if it is malformed."""
    block = bytes(block)
    out = bytearray()
    i = 0
    n = len(block)
    while i < n:
        code = block[i]
        if code == 0:
            return None
        end = i + code
        if end > n:
            return None
        chunk = block[i + 1 : end]
        if chunk.find(b"\x00") >= 0:
            return None
        out.extend(chunk)
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def max_encoded_len(n):
    """Worst-case encoded size of n bytes (without the delimiter): one code byte per
    started block of 254 data bytes, and one for empty input."""
    if n == 0:
        return 1
    return n + 1 + (n - 1) // 254
