# The two commands a newcomer needs; each does the set-up itself (scripts/setup.sh, idempotent).
.PHONY: setup demo test bench

setup:
	scripts/setup.sh

demo: setup
	scripts/run.sh flywheel demo

test: setup
	scripts/run.sh python -m pytest

bench: setup
	scripts/run.sh python bench/oracle_scoring.py
	scripts/run.sh python bench/end_to_end.py
	scripts/run.sh python bench/fail_closed.py
	scripts/run.sh python bench/ledger.py
	scripts/run.sh python bench/hot_swap.py
