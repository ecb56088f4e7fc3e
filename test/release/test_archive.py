"""Reading a bundle's archive before any signature is checked: bounded, linear, nothing hidden.

Every attack here needs no signature, so each is refused with its own error class, in
milliseconds and a few MiB at most, whatever the archive claims. The time and memory bounds are a
safety net; the error class is the assertion.
"""
import gzip
import time
import tracemalloc
import zlib

import pytest

from flywheel.errors import (CorruptBundleError, OversizeBundleError, TrailingDataError,
                             UnsafeBundleError)
from flywheel.release.archive import BLOCK, canonical_header, pack, unpack
from flywheel.release.bundle import MEMBERS, SPEC, TARGETS, read_bundle, verify_bundle
from test.release.conftest import NOW

MiB = 1 << 20


def header(name: str, size: int, typeflag: bytes = b'0') -> bytes:
    """A ustar header with a valid checksum, for any name and typeflag."""
    raw = bytearray(canonical_header('x', size))
    raw[0:100] = name.encode()[:100].ljust(100, b'\0')
    raw[156:157] = typeflag
    raw[148:156] = b' ' * 8
    raw[148:156] = b'%06o\0 ' % sum(raw)
    return bytes(raw)


def tar(*members: tuple[bytes, bytes], end: bool = True) -> bytes:
    """Headers and data as given, each padded to whole blocks, then the end-of-archive blocks."""
    out = b''.join(h + data + b'\0' * (-len(data) % BLOCK) for h, data in members)
    return out + (bytes(2 * BLOCK) if end else b'')


def gzip_bomb(prefix: bytes, zeros: int) -> bytes:
    """``prefix`` then ``zeros`` zero bytes, compressed ~1000:1 without compressing them: the
    same full-flushed deflate block repeated (its trailer is wrong; a reader that gets that far
    has already lost)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * (zeros // MiB) + c.flush()


def refused(error, data: bytes, **kwargs):
    """The error read_bundle raises, with the time and the peak Python memory it took."""
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(error) as caught:
        read_bundle(data, **kwargs)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0, f'{elapsed:.3f} s'
    assert peak < 16 * MiB, f'{peak / MiB:.1f} MiB'
    return caught.value


def test_pack_and_unpack_round_trip():
    files = {TARGETS: b'{}', SPEC: b'x' * 1000}
    assert unpack(pack(files), MEMBERS, 1 << 20) == files
    assert pack(files) == pack(dict(reversed(files.items())))      # deterministic


def test_gzip_bomb_with_a_long_name_header_is_refused_at_its_first_header():
    """1 MB that inflates to 1 GiB: a GNU long-name header announcing 1 GiB of name."""
    bomb = gzip_bomb(header('././@LongLink', 1 << 30, b'L'), 1 << 30)
    assert len(bomb) < 1.2 * MiB
    error = refused(UnsafeBundleError, bomb)
    assert "typeflag b'L'" in str(error)


def test_gzip_bomb_as_a_huge_member_is_refused_by_its_declared_size():
    bomb = gzip_bomb(header(SPEC, 1 << 30), 1 << 30)
    assert 'oracle_spec.yaml is 1073741824 bytes' in str(refused(OversizeBundleError, bomb))


def test_gzip_bomb_of_zeros_after_the_last_member_stops_at_the_unpacked_limit():
    bomb = gzip_bomb(tar((header(TARGETS, 2), b'{}'), (header(SPEC, 1), b'x')), 1 << 30)
    assert 'unpacks to more than' in str(refused(OversizeBundleError, bomb))


def test_pax_header_with_150k_digits_never_reaches_a_parser():
    """CVE-2024-6232: Python 3.11.7's tarfile parses such a header in quadratic time (tens of
    seconds for this 339-byte-class bundle). Refused by its typeflag, unparsed."""
    record = b'9' * 150_000 + b' path=oracle_spec.yaml\n'
    bundle = gzip.compress(tar((header('PaxHeader/oracle_spec.yaml', len(record), b'x'),
                                record)), mtime=0)
    assert len(bundle) < 1024
    error = refused(UnsafeBundleError, bundle)
    assert "typeflag b'x'" in str(error) and 'PAX' in str(error)


@pytest.mark.parametrize('typeflag', [b'g', b'K', b'S', b'5', b'7'])
def test_every_other_typeflag_is_refused(typeflag):
    refused(UnsafeBundleError, gzip.compress(tar((header(SPEC, 0, typeflag), b'')), mtime=0))


def test_trailing_junk_after_the_gzip_stream(operators):
    """Same release, different bytes (and sha256): refused."""
    bundle = pack({TARGETS: b'{}', SPEC: b'x'})
    error = refused(TrailingDataError, bundle + b'junk')
    assert '4 byte(s) after the end of the gzip stream' in str(error)


def test_a_second_gzip_member_appended():
    bundle = pack({TARGETS: b'{}', SPEC: b'x'})
    refused(TrailingDataError, bundle + gzip.compress(b'more', mtime=0))


def test_data_after_the_end_of_the_archive():
    archive = tar((header(TARGETS, 2), b'{}'), (header(SPEC, 1), b'x')) + b'hidden'.ljust(BLOCK,
                                                                                         b'\0')
    refused(TrailingDataError, gzip.compress(archive, mtime=0))


def test_data_hidden_in_a_members_padding():
    archive = header(SPEC, 1) + b'x' + b'hidden'.ljust(BLOCK - 1, b'\0') + bytes(2 * BLOCK)
    refused(TrailingDataError, gzip.compress(archive, mtime=0))


def test_a_header_other_than_the_canonical_one():
    raw = bytearray(header(SPEC, 1))
    raw[136:148] = b'%011o\0' % 1700000000          # an mtime: the same file, other bytes
    raw[148:156] = b' ' * 8
    raw[148:156] = b'%06o\0 ' % sum(raw)
    refused(UnsafeBundleError, gzip.compress(tar((bytes(raw), b'x')), mtime=0))


def test_a_gzip_header_with_optional_fields():
    bundle = bytearray(pack({TARGETS: b'{}', SPEC: b'x'}))
    bundle[3] = 0x10                                  # FCOMMENT
    refused(UnsafeBundleError, bytes(bundle))


def test_a_non_octal_size():
    raw = bytearray(header(SPEC, 1))
    raw[124:136] = b'\x80' + bytes(10) + b'\x01'      # GNU base-256
    raw[148:156] = b' ' * 8
    raw[148:156] = b'%06o\0 ' % sum(raw)
    refused(CorruptBundleError, gzip.compress(tar((bytes(raw), b'x')), mtime=0))


def test_an_archive_without_its_end(root):
    bundle = gzip.compress(tar((header(TARGETS, 2), b'{}'), end=False), mtime=0)
    with pytest.raises(CorruptBundleError, match='truncated'):
        verify_bundle(bundle, root, NOW, 1)
