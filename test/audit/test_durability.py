"""kill -9 of a writer in full flow never breaks the chain and loses only uncommitted records."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from flywheel.audit.ledger import Ledger
from test.audit.conftest import report

WRITER = Path(__file__).with_name('ledger_writer.py')


def run_and_kill(ledger_path, key_path, until_committed: int) -> int:
    """Start a writer, SIGKILL it once it reports ``until_committed``; the last commit it saw."""
    writer = subprocess.Popen([sys.executable, str(WRITER), str(ledger_path), str(key_path), '0.1'],
                              stdout=subprocess.PIPE, text=True)
    last = 0
    try:
        for line in writer.stdout:
            word, seq = line.split()
            if word == 'committed':
                last = int(seq)
                if last >= until_committed:
                    break
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    return last


def test_kill_9_keeps_every_committed_record_and_the_chain(tmp_path, key, caplog):
    ledger_path, key_path = tmp_path / 'ledger.sqlite', tmp_path / 'keys' / 'audit.pem'
    committed = run_and_kill(ledger_path, key_path, 3000)
    r = report(ledger_path, key)
    assert r.ok, r.summary()
    assert r.last_seq >= committed                 # nothing that was committed is lost
    assert r.signed_through == r.last_seq          # and everything present is signed
    # a second writer life, killed again, continues the same chain
    committed_again = run_and_kill(ledger_path, key_path, r.last_seq + 2000)
    r2 = report(ledger_path, key)
    assert r2.ok and r2.last_seq >= committed_again > r.last_seq and r2.segments == []
    with caplog.at_level('ERROR', logger='flywheel.audit'):
        Ledger(ledger_path, key).close()           # the restart finds nothing damaged
    assert caplog.text == ''
