"""Little-endian CDR, the bytes ROS 2's DDS sends, read with every bound checked before the bytes
behind it are touched, and written.

Why by hand: rclpy's conversion builds a Python object per field (per point, per evidence item)
before any bound can be checked, and on the control loop's hot path that conversion costs more
than the work it feeds. The message codecs (flywheel/wire.py, signals_wire.py) are written on
this reader and writer; each is held to rclpy's serializer by a test, both ways.

Alignment follows CDR (XCDR1, what rmw_fastrtps sends for ROS types): each primitive is aligned to
its size, counted from the end of the 4-byte encapsulation header. A string is its length with
the terminating NUL, its bytes and the NUL; a sequence is its length, then its items.
"""
from __future__ import annotations

import struct

CDR_LE = b'\x00\x01'
_HEADER = CDR_LE + b'\x00\x00'
_U32 = struct.Struct('<I')


class WireError(ValueError):
    """The bytes are not the message within its bounds. ``oversize`` says a bound was exceeded
    (rather than the bytes being malformed); ``proposal_id`` is set when it could be read."""

    def __init__(self, problem: str, proposal_id: str = '', proposer_id: str = '',
                 oversize: bool = False):
        super().__init__(problem)
        self.proposal_id = proposal_id
        self.proposer_id = proposer_id
        self.oversize = oversize


class Reader:
    """Reads fields in order from ``data``; every failure is a WireError naming the field."""

    def __init__(self, data: bytes):
        if len(data) < 4 or data[:2] != CDR_LE:
            raise WireError(f'not little-endian CDR (header {bytes(data[:4]).hex()})')
        self.data = memoryview(data)
        self.pos = 4
        self.proposal_id = self.proposer_id = ''

    def fail(self, problem: str, oversize: bool = False) -> WireError:
        return WireError(problem, self.proposal_id, self.proposer_id, oversize)

    def align(self, size: int) -> None:
        self.pos += (-(self.pos - 4)) % size

    def unpack(self, layout: struct.Struct, align: int, field: str = 'message') -> tuple:
        """Fixed-size fields at once: ``layout`` ('<'-prefixed, no padding inside it) starts
        aligned to ``align``."""
        self.align(align)
        end = self.pos + layout.size
        if end > len(self.data):
            raise self.fail(f'{field}: truncated')
        values = layout.unpack_from(self.data, self.pos)
        self.pos = end
        return values

    def _take(self, fmt: str, size: int):
        self.align(size)
        end = self.pos + size
        if end > len(self.data):
            raise self.fail('truncated')
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos = end
        return value

    def u8(self) -> int:
        return self._take('<B', 1)

    def u32(self) -> int:
        return self._take('<I', 4)

    def i32(self) -> int:
        return self._take('<i', 4)

    def u64(self) -> int:
        return self._take('<Q', 8)

    def f64(self) -> float:
        return self._take('<d', 8)

    def string(self, field: str, bound: int) -> str:
        n = self.u32()
        if n == 0:               # some writers send an empty string as length 0
            return ''
        if n - 1 > bound:
            raise self.fail(f'{field}: {n - 1} bytes > {bound}', oversize=True)
        end = self.pos + n
        if end > len(self.data) or self.data[end - 1] != 0:
            raise self.fail(f'{field}: truncated or unterminated')
        raw = bytes(self.data[self.pos:end - 1])
        if b'\x00' in raw:     # C readers stop at the first NUL: all must read the same text
            raise self.fail(f'{field}: holds a NUL byte')
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError:
            raise self.fail(f'{field}: not UTF-8') from None
        self.pos = end
        return text

    def length(self, field: str, bound: int, item: int) -> int:
        """A sequence's length, refused over ``bound`` or if ``item`` bytes each would not fit
        (``item``: the least an item can take)."""
        n = self.u32()
        if n > bound:
            raise self.fail(f'{field}: {n} items > {bound}', oversize=True)
        if self.pos + n * item > len(self.data):
            raise self.fail(f'{field}: truncated')
        return n

    def octets(self, field: str, bound: int) -> bytes:
        """A uint8[<=bound] sequence."""
        n = self.length(field, bound, 1)
        value = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return value


class Writer:
    """Appends fields in order; ``getvalue()`` is the message. Refuses (ValueError naming the
    field) what a reader would refuse: a string or sequence over its bound, a NUL in a string."""

    def __init__(self):
        self.out = bytearray(_HEADER)

    def align(self, size: int) -> None:
        self.out += b'\x00' * ((-(len(self.out) - 4)) % size)

    def u8(self, value: int) -> None:
        self.out.append(value)

    def pack(self, layout: struct.Struct, align: int, *values) -> None:
        self.align(align)
        self.out += layout.pack(*values)

    def string(self, text: str, field: str, bound: int) -> None:
        raw = text.encode('utf-8')
        if len(raw) > bound:
            raise ValueError(f'{field}: {len(raw)} bytes > {bound}')
        if b'\x00' in raw:
            raise ValueError(f'{field}: holds a NUL byte')
        self.align(4)
        self.out += _U32.pack(len(raw) + 1) + raw + b'\x00'

    def length(self, n: int, field: str, bound: int) -> None:
        if n > bound:
            raise ValueError(f'{field}: {n} items > {bound}')
        self.align(4)
        self.out += _U32.pack(n)

    def octets(self, data: bytes, field: str, bound: int) -> None:
        self.length(len(data), field, bound)
        self.out += data

    def getvalue(self) -> bytes:
        return bytes(self.out)
