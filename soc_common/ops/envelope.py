"""Passphrase encryption of backup archives: a small, streaming, authenticated format.

Backups hold the collector CA key, TLS keys and the API session secret, so an archive that leaves
the machine should be encrypted. AES-GCM cannot encrypt a multi-gigabyte file in one call without
holding it in memory, so the file is cut into chunks, each sealed on its own; every chunk's
associated data binds it to the header, its position and whether it is the last one, so chunks
cannot be reordered, dropped, spliced from another file or the file truncated unnoticed.

Layout (integers big-endian)::

    header  = MAGIC (8) | salt (16) | log2_n (1) | r (1) | p (1) | nonce_prefix (8) | chunk_size (4)
    chunk   = length (4) | AES-256-GCM ciphertext + tag (length bytes)
    nonce   = nonce_prefix (8) | chunk index (4)
    aad     = header | chunk index (8) | last flag (1: 0x01 on the final chunk, else 0x00)

The key is scrypt(passphrase, salt, n=2**log2_n, r, p), 32 bytes. The final chunk may be empty.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"SOCBAK\x00\x01"
_HEADER = struct.Struct(">8s16sBBB8sI")
_LENGTH = struct.Struct(">I")
TAG_BYTES = 16
DEFAULT_LOG2_N = 17  # 128 MiB of memory, about 1.5 s on one core: cheap once, costly to brute-force
MAX_LOG2_N = 20  # refuse headers that would make us allocate gigabytes
DEFAULT_CHUNK = 1 << 20
MAX_CHUNK = 64 << 20


class EnvelopeError(Exception):
    """The file is not an encrypted backup, the passphrase is wrong, or the file was altered."""


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def _key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    if not passphrase:
        raise EnvelopeError("the passphrase is empty")
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def _read_exact(fh: BinaryIO, size: int) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise EnvelopeError("the file is truncated")
    return data


def encrypt_file(
    source: Path,
    target: Path,
    passphrase: str,
    *,
    log2_n: int = DEFAULT_LOG2_N,
    chunk_size: int = DEFAULT_CHUNK,
) -> None:
    """Encrypt ``source`` into ``target`` (created 0600)."""
    salt, prefix = os.urandom(16), os.urandom(8)
    header = _HEADER.pack(MAGIC, salt, log2_n, 8, 1, prefix, chunk_size)
    aead = AESGCM(_key(passphrase, salt, log2_n, 8, 1))
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with source.open("rb") as src, os.fdopen(fd, "wb") as out:
        out.write(header)
        index = 0
        chunk = src.read(chunk_size)
        while True:
            following = src.read(chunk_size)
            last = not following
            if index >= 1 << 32:
                raise EnvelopeError("file too large for this chunk size")
            sealed = aead.encrypt(prefix + index.to_bytes(4, "big"), chunk, _aad(header, index, last))
            out.write(_LENGTH.pack(len(sealed)))
            out.write(sealed)
            if last:
                break
            chunk, index = following, index + 1


def decrypt_file(source: Path, target: Path, passphrase: str) -> None:
    """Decrypt ``source`` into ``target`` (0600); raise EnvelopeError on any mismatch or truncation."""
    with source.open("rb") as src:
        header = _read_exact(src, _HEADER.size)
        magic, salt, log2_n, r, p, prefix, chunk_size = _HEADER.unpack(header)
        if magic != MAGIC:
            raise EnvelopeError("not an encrypted SOC backup")
        if not (10 <= log2_n <= MAX_LOG2_N) or not (1 <= r <= 32) or not (1 <= p <= 16):
            raise EnvelopeError("unsupported key-derivation parameters")
        if not (1 <= chunk_size <= MAX_CHUNK):
            raise EnvelopeError("unsupported chunk size")
        aead = AESGCM(_key(passphrase, salt, log2_n, r, p))
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            index = 0
            while True:
                raw_len = src.read(_LENGTH.size)
                if len(raw_len) != _LENGTH.size:
                    raise EnvelopeError("the file is truncated (no final chunk)")
                (length,) = _LENGTH.unpack(raw_len)
                if length < TAG_BYTES or length > chunk_size + TAG_BYTES:
                    raise EnvelopeError("corrupt chunk length")
                sealed = _read_exact(src, length)
                last = src.peek(1)[:1] == b""
                nonce = prefix + index.to_bytes(4, "big")
                try:
                    plain = aead.decrypt(nonce, sealed, _aad(header, index, last))
                except InvalidTag:
                    if index == 0:
                        raise EnvelopeError("wrong passphrase, or the file was altered") from None
                    raise EnvelopeError(f"chunk {index} was altered or is out of place") from None
                out.write(plain)
                if last:
                    return
                index += 1
