"""The bundle's archive format: one gzip stream holding a POSIX ustar archive of plain files.

An archive is read before any signature is checked, so reading is bounded and linear in its input,
whatever the input holds:

- the gzip stream is inflated in chunks of at most CHUNK bytes, on demand, and reading stops as
  soon as the unpacked total passes ``limit``: a gzip bomb costs at most ``limit`` bytes;
- each 512-byte header is read as fixed-width ustar fields; every typeflag but a regular file is
  refused, so PAX and GNU extended headers (whose parsers in `tarfile` can be driven quadratic,
  CVE-2024-6232) never reach a parser; a member's name and size are checked before its data is
  read, and its header must be exactly the canonical one `pack` writes;
- padding, the end of the archive and the end of the gzip stream hold nothing: only zero bytes may
  follow a member's data and the last member, nothing may follow the gzip stream, and the gzip
  header carries no optional fields. Bytes no signature covers cannot ride along.
"""
from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Mapping

from flywheel.errors import (CorruptBundleError, OversizeBundleError, TrailingDataError,
                             UnsafeBundleError)

BLOCK = 512
CHUNK = 64 * 1024
RECORD = 20 * BLOCK          # tar pads the archive to whole records of zeros
_REGULAR = (b'0', b'\0')
_TYPES = {b'1': 'hard link', b'2': 'symbolic link', b'3': 'character device',
          b'4': 'block device', b'5': 'directory', b'6': 'FIFO', b'7': 'contiguous file',
          b'x': 'PAX extended header', b'g': 'PAX global header', b'L': 'GNU long name',
          b'K': 'GNU long link name', b'S': 'GNU sparse file'}


def pack(files: Mapping[str, bytes]) -> bytes:
    """A deterministic archive: names in sorted order, canonical headers, gzip with mtime 0."""
    out = io.BytesIO()
    for name in sorted(files):
        data = files[name]
        out.write(canonical_header(name, len(data)))
        out.write(data + b'\0' * (-len(data) % BLOCK))
    out.write(b'\0' * (2 * BLOCK))
    out.write(b'\0' * (-out.tell() % RECORD))
    return gzip.compress(out.getvalue(), compresslevel=9, mtime=0)


def canonical_header(name: str, size: int) -> bytes:
    """The one ustar header `pack` writes for a member (mode 0644, owner 0, time 0)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    return info.tobuf(tarfile.USTAR_FORMAT, 'ascii', 'strict')


def unpack(data: bytes, allowed: Mapping[str, int], limit: int) -> dict[str, bytes]:
    """The members of an archive, by name; ``allowed`` maps each name that may appear to its
    largest size, ``limit`` bounds the unpacked total. Raises a ReleaseError subclass."""
    stream = _Inflater(data, limit)
    files: dict[str, bytes] = {}
    while True:
        header = stream.read(BLOCK)
        if header == bytes(BLOCK):
            break
        name, size = _member(header, allowed)
        if name in files:
            raise UnsafeBundleError(f'{name!r} appears twice')
        files[name] = stream.read(size)
        if stream.read(-size % BLOCK).strip(b'\0'):
            raise TrailingDataError(f'{name!r}: non-zero bytes in its padding')
    stream.finish()
    return files


def _member(header: bytes, allowed: Mapping[str, int]) -> tuple[str, int]:
    """(name, size) of a regular-file header, checked field by field before any data is read."""
    kind = header[156:157]
    if kind not in _REGULAR:
        what = _TYPES.get(kind, 'unknown type')
        raise UnsafeBundleError(f'member {_field(header[:100])!r} is not a regular file '
                                f'(typeflag {kind!r}: {what}); only regular files are accepted')
    name = _field(header[:100])
    prefix = _field(header[345:500])
    if prefix:
        name = f'{prefix}/{name}'
    if name not in allowed:
        raise UnsafeBundleError(f'unexpected member {name!r} (allowed: {sorted(allowed)})')
    size = _octal(header[124:136], f'{name}: size')
    if size > allowed[name]:
        raise OversizeBundleError(f'{name} is {size} bytes > {allowed[name]}')
    if header != canonical_header(name, size):
        raise UnsafeBundleError(f'{name}: header differs from the canonical ustar header '
                                '(mode 0644, owner 0, time 0) that `flywheel release build` '
                                'writes')
    return name, size


def _field(raw: bytes) -> str:
    """A NUL-terminated text field, shown safely (non-ASCII bytes escaped)."""
    return raw.split(b'\0', 1)[0].decode('ascii', 'backslashreplace')


def _octal(raw: bytes, what: str) -> int:
    digits = raw.split(b'\0', 1)[0].strip(b' ')
    if not digits or len(digits) > 11 or digits.strip(b'01234567'):
        raise CorruptBundleError(f'{what}: not an octal number: {raw!r}')
    return int(digits, 8)


class _Inflater:
    """Inflates a gzip stream on demand; never more than ``limit`` bytes in total."""

    def __init__(self, data: bytes, limit: int):
        if len(data) < 18 or data[:3] != b'\x1f\x8b\x08':
            raise CorruptBundleError('not a gzip stream (bad magic)')
        if data[3] != 0:
            raise UnsafeBundleError(f'gzip header flags 0x{data[3]:02x}: optional fields (name, '
                                    'comment, extra) are refused')
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._data = memoryview(data)
        self._pos = 0
        self._buf = bytearray()
        self._off = 0
        self._limit = limit
        self.total = 0

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes of the inflated stream."""
        while len(self._buf) - self._off < n:
            if not self._inflate():
                raise CorruptBundleError(f'archive truncated after {self.total} unpacked bytes')
        out = bytes(self._buf[self._off:self._off + n])
        self._off += n
        if self._off >= CHUNK:
            del self._buf[:self._off]
            self._off = 0
        return out

    def finish(self) -> None:
        """After the last member: zeros only to the end of the gzip stream, nothing after it."""
        while True:
            if self._buf[self._off:].strip(b'\0'):
                raise TrailingDataError('non-zero bytes after the last member of the archive')
            self._buf.clear()
            self._off = 0
            if not self._inflate():
                break
        if not self._zlib.eof:
            raise CorruptBundleError('gzip stream truncated (no end of stream)')
        if self.total % BLOCK:
            raise CorruptBundleError(f'archive is {self.total} bytes, not whole 512-byte blocks')
        extra = len(self._zlib.unused_data) + len(self._data) - self._pos
        if extra:
            raise TrailingDataError(f'{extra} byte(s) after the end of the gzip stream')

    def _inflate(self) -> bool:
        """Inflate one more chunk; False at the end of the stream or of the input."""
        z = self._zlib
        if z.eof:
            return False
        if z.unconsumed_tail:
            source = z.unconsumed_tail
        elif self._pos < len(self._data):
            source = self._data[self._pos:self._pos + CHUNK]
            self._pos += len(source)
        else:
            return False
        try:
            out = z.decompress(source, min(CHUNK, self._limit - self.total + 1))
        except zlib.error as exc:
            raise CorruptBundleError(f'not a readable gzip stream: {exc}') from exc
        self.total += len(out)
        if self.total > self._limit:
            raise OversizeBundleError(f'archive unpacks to more than {self._limit} bytes')
        self._buf += out
        return True
