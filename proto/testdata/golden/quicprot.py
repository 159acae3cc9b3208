# QUIC Initial packet protection (RFC 9001 section 5, RFC 9369 section 3.3),
# used only to generate golden test packets that tshark can decrypt.
import hmac, hashlib, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives import hashes

SALT = {1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
        0x6b3343cf: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")}
LABELS = {1: ("quic key", "quic iv", "quic hp"), 0x6b3343cf: ("quicv2 key", "quicv2 iv", "quicv2 hp")}

def expand_label(secret, label, length):
    full = b"tls13 " + label.encode()
    info = struct.pack(">H", length) + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)

def keys(version, dcid, server=False):
    init = hmac.new(SALT[version], dcid, hashlib.sha256).digest()
    sec = expand_label(init, "server in" if server else "client in", 32)
    lk, li, lh = LABELS[version]
    return expand_label(sec, lk, 16), expand_label(sec, li, 12), expand_label(sec, lh, 16)

def varint(v, n=None):
    if n is None:
        n = 1 if v < 64 else 2 if v < 16384 else 4 if v < 2**30 else 8
    bits = {1: 0, 2: 0x40, 4: 0x80, 8: 0xc0}[n]
    b = v.to_bytes(n, "big")
    return bytes([b[0] | bits]) + b[1:]

def initial(version, dcid, scid, token, pn, pnlen, plaintext, server=False, key_dcid=None):
    key, iv, hp = keys(version, key_dcid or dcid, server)
    typebits = 0 if version == 1 else 1
    first = 0xc0 | typebits << 4 | (pnlen - 1)
    length = pnlen + len(plaintext) + 16
    hdr = bytes([first]) + struct.pack(">I", version) + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    hdr += varint(len(token)) + token + varint(length, 2)
    pnoff = len(hdr)
    hdr += pn.to_bytes(pnlen, "big")
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big")))
    ct = AESGCM(key).encrypt(nonce, plaintext, hdr)
    pkt = bytearray(hdr + ct)
    sample = pkt[pnoff + 4: pnoff + 20]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(bytes(sample)) + enc.finalize()
    pkt[0] ^= mask[0] & 0x0f
    for i in range(pnlen):
        pkt[pnoff + i] ^= mask[1 + i]
    return bytes(pkt), pnoff, length

RFC9001_FRAMES = bytes.fromhex("""
060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
616d706c652e636f6dff01000100000a00080006001d00170018001000070005
04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
0d0010000e0403050306030203080408050806002d00020101001c0002400100
3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
75300901100f088394c8f03e51570806048000ffff""".replace("\n", ""))

if __name__ == "__main__":
    dcid = bytes.fromhex("8394c8f03e515708")
    pt = RFC9001_FRAMES + bytes(1162 - len(RFC9001_FRAMES))
    pkt, pnoff, length = initial(1, dcid, b"", b"", 2, 4, pt)
    assert pkt[:22].hex() == "c000000001088394c8f03e5157080000449e7b9aec34", pkt[:22].hex()
    assert pkt[22:38].hex() == "d1b1c98dd7689fb8ec11d242b123dc9b"
    print("v1 RFC 9001 A.2 vector reproduced, len", len(pkt))
    pkt2, _, _ = initial(0x6b3343cf, dcid, b"", b"", 2, 4, pt)
    print("v2 prefix", pkt2[:22].hex(), pkt2[-16:].hex())
