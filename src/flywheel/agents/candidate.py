"""A candidate release as files, for operators: the spec, the regression suite and the rollout
plan exactly as `flywheel release build --plan --regression` takes them, and the governance batch
(``batch.json``: corrections, rejections, evidence), the basin carried to the next batch
(``basin.yaml``) and every flaw with its fate (``flaws.json``).

`candidate_files` checks that the files make a release: it builds the (unsigned) bundle with
flywheel.release.bundle, which validates the spec's schema and size limits, the plan and the suite
(each case a well-formed proposal for that spec), and it runs the suite against the candidate's
own Oracle and the policy, which must pass 100 %. Nothing here signs.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import yaml

from flywheel.agents.judge import Judge
from flywheel.agents.refiner import Candidate
from flywheel.enforcement.policy import RiskPolicy
from flywheel.errors import RegressionFailedError, ReleaseSchemaError
from flywheel.oracle.spec import parse_spec
from flywheel.release.bundle import PLAN, REGRESSION, SPEC, build_bundle
from flywheel.release.regression import parse_suite, run_suite
from flywheel.yamldoc import parse_yaml

BATCH, BASIN, FLAWS = 'batch.json', 'basin.yaml', 'flaws.json'
FORMAT = 'flywheel.governance_batch.v1'
# Far enough ahead never to expire while a check runs; the operator's build sets the real one.
_CHECK_EXPIRY = datetime(2100, 1, 1, tzinfo=timezone.utc)


class _NoAliases(yaml.SafeDumper):
    """Write every value out (the spec loader refuses anchors and aliases)."""

    def ignore_aliases(self, data) -> bool:
        return True


def dump_yaml(doc: dict, header: str = '') -> bytes:
    text = yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, default_flow_style=None,
                     width=100, allow_unicode=True)
    return (header + text).encode('utf-8')


def batch_doc(c: Candidate) -> dict:
    return {'format': FORMAT, 'candidate_version': c.version, 'parent_version': c.parent_version,
            'signed': False, 'files': {'spec': SPEC, 'regression': REGRESSION, 'plan': PLAN},
            'corrections': [x.to_doc() for x in c.corrections],
            'rejected': [x.to_doc() for x in c.rejected], 'evidence': c.evidence}


def candidate_files(c: Candidate, policy: RiskPolicy) -> dict[str, bytes]:
    """Every file of the candidate; ReleaseError if they would not make a release whose suite
    passes."""
    header = (f'# Candidate Oracle spec {c.version}, refined from {c.parent_version} by the '
              'governance refiner.\n# UNSIGNED: review batch.json, then `flywheel release '
              'build` and `sign` it.\n')
    files = {SPEC: dump_yaml(c.spec_doc, header), REGRESSION: dump_yaml(c.suite_doc),
             PLAN: dump_yaml(c.plan_doc),
             BATCH: json.dumps(batch_doc(c), indent=1, sort_keys=False).encode() + b'\n',
             BASIN: dump_yaml(c.basin.to_doc()),
             FLAWS: json.dumps(list(c.flaws), indent=0).encode() + b'\n'}
    check_release_files(files, policy)
    return files


def check_release_files(files: dict[str, bytes], policy: RiskPolicy) -> None:
    """Bundle the spec, plan and suite (unsigned) and run the suite: ReleaseError if any fails."""
    build_bundle(files[SPEC], 1, _CHECK_EXPIRY, plan=files.get(PLAN),
                 regression=files.get(REGRESSION))
    spec = parse_spec(parse_yaml(files[SPEC].decode('utf-8'), SPEC))
    if REGRESSION not in files:
        return
    try:
        suite = parse_suite(parse_yaml(files[REGRESSION].decode('utf-8'), REGRESSION), spec)
    except Exception as exc:  # noqa: BLE001 - build_bundle parsed it already; be explicit
        raise ReleaseSchemaError(f'{REGRESSION}: {exc}') from exc
    result = run_suite(suite, Judge(spec, policy).oracle, policy)
    if not result.passed:
        raise RegressionFailedError(
            f'the candidate fails {len(result.failures)} of its {result.cases} regression '
            f'cases, e.g. {result.failures[0]}', result.failures)


def read_batch(data: bytes) -> dict:
    """A batch.json, checked for its format; ReleaseSchemaError otherwise."""
    try:
        doc = json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReleaseSchemaError(f'{BATCH}: not JSON ({exc})') from exc
    if not isinstance(doc, dict) or doc.get('format') != FORMAT:
        raise ReleaseSchemaError(f'{BATCH}: not a governance batch ({FORMAT})')
    return doc
