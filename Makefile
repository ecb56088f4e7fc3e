# The two commands a newcomer needs; each does the set-up itself (scripts/setup.sh, idempotent).
.PHONY: setup demo test bench stress

setup:
	scripts/setup.sh

demo: setup
	scripts/run.sh flywheel demo

test: setup
	scripts/run.sh python -m pytest

# The real-node tests 20 times in a row; the first failure stops it (flaky is failing).
stress: setup
	@for i in $$(seq 1 20); do \
	  echo "stress: run $$i of 20"; \
	  scripts/run.sh python -m pytest -q -m ros -p no:cacheprovider || exit 1; \
	done; echo "stress: 20 of 20 runs passed"

bench: setup
	scripts/run.sh python bench/oracle_scoring.py
	scripts/run.sh python bench/end_to_end.py
	scripts/run.sh python bench/auth.py
	# fail_closed: 200 trials x 4 scenarios, ~35 min idle and ~38 min with --hog; --trials N for less
	scripts/run.sh python bench/fail_closed.py
	scripts/run.sh python bench/fail_closed.py --hog
	# nav2_stop: 40 approaches and 40 free runs behind a Nav2-style controller (~7 min)
	scripts/run.sh python bench/nav2_stop.py --runs 40
	scripts/run.sh python bench/ledger.py
	scripts/run.sh python bench/hot_swap.py
	scripts/run.sh python bench/release_limits.py
	scripts/run.sh python bench/verifier.py
	scripts/run.sh python bench/escalation.py
	# rollout: push -> full on the default plan, latency per stage, fleets of 1 and 3 (~6 min)
	scripts/run.sh python bench/rollout.py
	# flywheel: red team -> triage -> refiner until no flaw is found, vs fixed-size fixes (~8 min)
	scripts/run.sh python bench/flywheel_iterations.py
