"""A ledger writer for the kill -9 test: appends decision records as fast as it can and prints
each committed sequence number. Run as a script; it never stops by itself."""
import sys
from pathlib import Path

from flywheel.audit.keys import load_or_create_key
from flywheel.audit.ledger import Ledger
from flywheel.audit.record import RecordKind


def main() -> None:
    path, key_path, interval = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    ledger = Ledger(path, load_or_create_key(key_path), commit_interval=interval)
    print(f'started {ledger.seq}', flush=True)
    reported = ledger.committed_seq
    while True:
        ledger.append(RecordKind.DECISION, {'proposal_id': f'proposer/{ledger.seq + 1}',
                                            'action': 'ALLOW'}, ledger.seq)
        if ledger.committed_seq != reported:
            reported = ledger.committed_seq
            print(f'committed {reported}', flush=True)


if __name__ == '__main__':
    main()
