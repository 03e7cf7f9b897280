# SPDX-License-Identifier: GPL-2.0
"""Unit tests for the strict KTAP parser (run on the host by `make check`)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402

GOOD = """[    5.0] KTAP version 1
[    5.0] 1..1
[    5.1]     KTAP version 1
[    5.1]     # Subtest: suite_a
[    5.1]     # module: ipmb
[    5.1]     1..2
[    5.2] ipmb: an unrelated kernel message
[    5.2]     ok 1 case_one
[    5.2]     ok 2 case_two # SKIP not here
[    5.3] ok 1 suite_a
""".splitlines()


class KtapTest(unittest.TestCase):
    def test_good_document(self):
        results, errors = ktap.parse(GOOD)
        self.assertEqual(errors, [])
        self.assertEqual([(r.path, r.status) for r in results],
                         [("suite_a.case_one", "passed"), ("suite_a.case_two", "skipped")])

    def test_failed_case(self):
        lines = [l.replace("ok 1 case_one", "not ok 1 case_one") for l in GOOD]
        lines = [l.replace("] ok 1 suite_a", "] not ok 1 suite_a") for l in lines]
        results, errors = ktap.parse(lines)
        self.assertEqual(errors, [])
        self.assertEqual(results[0].status, "failed")

    def test_missing_result_is_an_error(self):
        results, errors = ktap.parse([l for l in GOOD if "case_two" not in l])
        self.assertTrue(errors)

    def test_truncated_output_is_an_error(self):
        results, errors = ktap.parse(GOOD[:-1])
        self.assertTrue(errors)

    def test_suite_disagreeing_with_cases_is_an_error(self):
        lines = [l.replace("ok 1 case_one", "not ok 1 case_one") for l in GOOD]
        results, errors = ktap.parse(lines)
        self.assertTrue(any("disagrees" in e for e in errors))

    def test_flat_document(self):
        results, errors = ktap.parse(
            ["KTAP version 1", "1..2", "ok 1 a # time=1s", "# diag", "not ok 2 b # Boom: x"])
        self.assertEqual(errors, [])
        self.assertEqual([r.status for r in results], ["passed", "failed"])

    def test_misnumbered_result_is_an_error(self):
        results, errors = ktap.parse(["KTAP version 1", "1..1", "ok 2 a"])
        self.assertTrue(errors)


if __name__ == "__main__":
    unittest.main()
