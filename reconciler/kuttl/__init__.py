"""`reconciler test`: kuttl's declarative end-to-end tests, run against the simulator.

    suite.py       finding tests: TestSuite files, test folders, setup CRDs and manifests
    steps.py       reading a test folder into ordered steps (apply, assert, errors, TestStep)
    match.py       kuttl's subset match, with every difference for reports
    assertions.py  checking a step's assert and errors objects against a cluster
    runner.py      a fresh simulated cluster and namespace per test; steps on virtual time
    report.py      text output: a line per test, and what differs when one fails
    junit.py       JUnit XML
"""

from reconciler.kuttl.runner import Failure, TestResult, run_test, run_tests
from reconciler.kuttl.suite import SuiteError, TestCase, discover

__all__ = ["Failure", "SuiteError", "TestCase", "TestResult", "discover", "run_test",
           "run_tests"]
