"""Scratch files sealed in chunks: big temporary files stream through AEAD, bounded memory.

What a step writes for itself while it runs (PSI bucket files, pair tables,
an input copy) and caches it keeps between runs (the unbalanced-PSI tables)
are sealed like artefacts, but chunk by chunk so that a file of any size is
written and read with one chunk (1 MiB) in memory. Layout::

    magic (4) | key id (8) | file id (16, random) | chunk size (4, big endian)
    | wrap nonce (12) | wrapped data key + tag
    | chunk 0 | chunk 1 | ... | final chunk          each: ciphertext + tag (16)

``MMC1``: AES-256-GCM (OpenSSL through ``cryptography``); ``MSC1``: SM4-GCM
(:class:`meshmpc.crypto.gm.Sm4Gcm`), chosen by the vault's suite. Each file
has a fresh data key wrapped by the vault's master key. Chunk ``i`` is sealed
with the nonce ``i`` (11 bytes) || final flag (1 byte), unique under the
file's key, and the associated data binds the header (file id included), the
file's logical name, the chunk index and the final flag (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizar, CRYPTO 2015). So a
chunk moved within the file, swapped in from another file, or a file cut
after any chunk, does not open: only the writer's last chunk carries the
final flag, and a file a crash left unfinished has none.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag

from meshmpc.data.vault import MAGIC, MAGIC_SM4, STREAM_MAGICS, Aead, VaultError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

    from meshmpc.data.vault import Vault

CHUNK = 1 << 20
"""Plaintext bytes per chunk: the memory a reader or writer holds."""
TAG = 16
_KIND = {MAGIC: STREAM_MAGICS[0], MAGIC_SM4: STREAM_MAGICS[1]}
_FILE_KIND = {v: k for k, v in _KIND.items()}
_PREFIX = 4 + 8 + 16 + 4


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _chunk_aad(prefix: bytes, name: bytes, index: int, final: bool) -> bytes:
    return prefix + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00") + name


class SealedWriter(io.RawIOBase):
    """A write-only file that seals what it is given, chunk by chunk, into ``path``.

    The file is created with mode 0600 (replacing one of the same name). Until
    :meth:`close` it has no final chunk and does not open.
    """

    def __init__(self, path: Path, vault: Vault, name: str, chunk: int = CHUNK) -> None:
        super().__init__()
        self.name_bound = name.encode()
        self._chunk = chunk
        magic = _KIND[MAGIC_SM4 if vault.suite == "gm" else MAGIC]
        self._prefix = magic + vault.key_id + os.urandom(16) + chunk.to_bytes(4, "big")
        # The wrapping binds the prefix too: a header's file id cannot be swapped.
        _, self._aead, wrapped = vault.new_data_key(self._prefix + self.name_bound)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh = os.fdopen(fd, "wb", buffering=0)
        self._fh.write(self._prefix + wrapped)
        self._buf = bytearray()
        self._index = 0
        self._written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data).cast("B")
        pos, n = 0, len(view)
        while pos < n:
            if len(self._buf) == self._chunk:  # more follows: this one is not the last
                self._emit(final=False)
            take = min(self._chunk - len(self._buf), n - pos)
            self._buf += view[pos:pos + take]
            pos += take
        self._written += n
        return n

    def _emit(self, final: bool) -> None:
        aad = _chunk_aad(self._prefix, self.name_bound, self._index, final)
        with memoryview(self._buf) as plain:  # no copy; released before the buffer is reused
            self._fh.write(self._aead.encrypt(_nonce(self._index, final), plain, aad))
        self._buf.clear()
        self._index += 1

    def close(self) -> None:
        """Seal the last chunk (flagged final) and close the file."""
        if not self.closed:
            try:
                self._emit(final=True)
            finally:
                self._fh.close()
                super().close()

    def abandon(self) -> None:
        """Close without the final chunk (the file then never opens); for failures."""
        if not self.closed:
            self._fh.close()
            super().close()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None:
            self.abandon()
        else:
            self.close()


class SealedReader(io.RawIOBase):
    """Read back what :class:`SealedWriter` sealed, checking every chunk as it comes."""

    def __init__(self, path: Path, vault: Vault, name: str) -> None:
        super().__init__()
        self._label = name
        self.name_bound = name.encode()
        self._fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self._open_header(vault)
        except BaseException:
            self._fh.close()
            raise
        self._chunk_bytes = b""
        self._plain = memoryview(b"")
        self._index = 0
        self._done = False
        self._next = self._fh.read(self._chunk + TAG)

    def _open_header(self, vault: Vault) -> None:
        prefix = self._fh.read(_PREFIX)
        magic = prefix[:4]
        if len(prefix) < _PREFIX or magic not in _FILE_KIND:
            raise VaultError(f"{self._label}: not a sealed meshmpc scratch file")
        if prefix[4:12] != vault.key_id:
            raise VaultError(f"{self._label}: sealed under another vault key "
                             f"({prefix[4:12].hex()}); it belongs to another node, an older "
                             "key or a process that has ended")
        kind = _FILE_KIND[magic]
        blob = self._fh.read(vault.wrapped_key_size(kind))
        self._prefix = prefix
        self._chunk = int.from_bytes(prefix[28:32], "big")
        self._aead: Aead = vault.open_data_key(kind, blob, prefix + self.name_bound,
                                               self._label)

    def readable(self) -> bool:
        return True

    def _advance(self) -> bool:
        """Open the next chunk into the plaintext buffer; False at the end."""
        if self._done:
            return False
        block, self._next = self._next, self._fh.read(self._chunk + TAG)
        final = not self._next
        if len(block) < TAG:
            raise VaultError(f"{self._label}: a sealed scratch file cut short")
        aad = _chunk_aad(self._prefix, self.name_bound, self._index, final)
        try:
            self._chunk_bytes = self._aead.decrypt(_nonce(self._index, final), block, aad)
            self._plain = memoryview(self._chunk_bytes)
        except InvalidTag as exc:
            raise VaultError(f"{self._label}: chunk {self._index} altered, moved or cut "
                             "short (or the file was never finished)") from exc
        self._index += 1
        self._done = final
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        while not len(self._plain):
            if not self._advance():
                return 0
        n = min(len(out), len(self._plain))
        out[:n] = self._plain[:n]
        self._plain = self._plain[n:]
        return n

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left with -1); b"" at the end."""
        if size is None or size < 0:
            return self.readall()
        parts: list[bytes] = []
        while size > 0:
            if not len(self._plain) and not self._advance():
                break
            if len(self._plain) == len(self._chunk_bytes) <= size:  # a whole chunk: no copy
                parts.append(self._chunk_bytes)
                self._plain = memoryview(b"")
                size -= len(self._chunk_bytes)
                continue
            take = self._plain[:size]
            parts.append(bytes(take))
            self._plain = self._plain[len(take):]
            size -= len(take)
        return b"".join(parts)

    def readall(self) -> bytes:
        parts = [bytes(self._plain)]
        while self._advance():
            parts.append(bytes(self._plain))
        self._plain = memoryview(b"")
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
            super().close()


class SealedScratch:
    """One sealed scratch file: ``path`` under ``vault``, bound to ``name``."""

    def __init__(self, path: Path, vault: Vault, name: str | None = None) -> None:
        self.path = Path(path)
        self.vault = vault
        self.name = name or self.path.name

    def writer(self) -> SealedWriter:
        """A new file at ``path`` (replacing any); close it to finish."""
        return SealedWriter(self.path, self.vault, self.name)

    def reader(self) -> SealedReader:
        return SealedReader(self.path, self.vault, self.name)

    def read_bytes(self) -> bytes:
        with self.reader() as fh:
            return fh.readall()
