"""What authenticating the bus costs per message: Ed25519 (cryptography) sign and verify of a
verdict, a status and a proposal digest, beside HMAC-SHA256 (the MAC alternative) and the
encoding itself, all in one process, interleaved.

    scripts/run.sh python bench/auth.py [--samples 20000]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import hmac
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, machine, row, stats_ms  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel.auth import Keyring, assign_signers, write_message_key  # noqa: E402
from flywheel.oracle.oracle import Oracle  # noqa: E402
from flywheel.oracle.spec import load_spec  # noqa: E402
from flywheel.proposal import ProposalLimits  # noqa: E402
from test.conftest import CONFIG  # noqa: E402
from test.helpers import straight  # noqa: E402


def timed(fn, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=20000)
    args = parser.parse_args(argv)
    import tempfile
    from datetime import datetime, timedelta, timezone

    from securesystemslib.signer import SSlibKey

    from flywheel.release.root import new_root
    with tempfile.TemporaryDirectory() as tmp:
        key = write_message_key(Path(tmp) / 'oracle.pem')
    root = new_root([SSlibKey.from_crypto(key.private.public_key())], 1, 1,
                    datetime.now(timezone.utc) + timedelta(days=1))
    public = SSlibKey.from_crypto(key.private.public_key())
    assign_signers(root.signed, [public], [public])
    ring = Keyring.from_root(root)
    spec = load_spec(CONFIG / 'oracle_spec.yaml')
    signals = dataclasses.replace(Oracle(spec, ProposalLimits()).evaluate(
        straight(1.5, 1.0, 0.0, 0.5)), stamp_ns=time.time_ns(), epoch=1, seq=1)
    data = signals.canonical_bytes()
    signature = key.sign(data)
    mac_key = b'k' * 32
    mac = hmac.new(mac_key, data, hashlib.sha256).digest()
    cases = {
        'canonical encoding of a verdict': lambda: signals.canonical_bytes(),
        'Ed25519 sign (Oracle, per verdict)': lambda: key.sign(data),
        'Ed25519 verify (Gate, per verdict, via the keyring)':
            lambda: ring.check('oracle', key.key_id, signature, data),
        'HMAC-SHA256 compute (the MAC alternative)':
            lambda: hmac.new(mac_key, data, hashlib.sha256).digest(),
        'HMAC-SHA256 check (constant-time compare)':
            lambda: hmac.compare_digest(hmac.new(mac_key, data, hashlib.sha256).digest(), mac),
    }
    results = {name: [] for name in cases}
    for _ in range(10):                          # interleaved blocks: the same machine noise
        for name, fn in cases.items():
            results[name] += timed(fn, args.samples // 10)
    print(f'machine: {machine()}')
    print(f'command: scripts/run.sh python bench/auth.py --samples {args.samples}')
    print(f'a verdict of {len(data)} canonical bytes, {args.samples} samples per case\n')
    print(HEADER)
    for name, samples in results.items():
        print(row(name, stats_ms(samples)))
    governed = (stats_ms(results['canonical encoding of a verdict'])['p50']
                + stats_ms(results['Ed25519 sign (Oracle, per verdict)'])['p50']
                + stats_ms(results['Ed25519 verify (Gate, per verdict, via the keyring)'])['p50'])
    print(f'\nadded to the governed path per proposal (encode + sign + verify, p50): '
          f'{governed:.3f} ms (budget 0.3 ms)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
