# SPDX-License-Identifier: GPL-2.0
"""Strict KTAP (version 1) parser for KUnit console output and the e2e runner's results.

A document is `KTAP version 1`, a plan `1..N`, then exactly N results numbered 1..N, each
optionally preceded by an indented subtest document (a KUnit suite). Lines that are not KTAP
(other kernel messages interleaved on the console) are ignored; structural errors (a missing
plan, results out of order, fewer or more results than planned, a suite whose cases disagree
with its own result) are reported as errors, which the harness treats as failures.
"""

import re

TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ?")
VERSION = re.compile(r"^(\s*)(KTAP version 1|TAP version 14)$")
PLAN = re.compile(r"^(\s*)1\.\.(\d+)$")
RESULT = re.compile(r"^(\s*)(ok|not ok) (\d+) ?(?:- )?([^#]*?)\s*(?:#\s*(\S+)(.*))?$")
DIAG = re.compile(r"^(\s*)#")


class Result:
    """One leaf test result."""

    def __init__(self, path, ok, directive, detail):
        self.path = path
        self.ok = ok
        self.skipped = directive is not None and directive.upper() == "SKIP"
        self.detail = detail.strip() if detail else ""

    @property
    def status(self):
        if self.skipped:
            return "skipped"
        return "passed" if self.ok else "failed"


def strip_console(line):
    """Removes the printk timestamp and the trailing newline."""
    return TIMESTAMP.sub("", line.rstrip("\r\n"))


def ktap_lines(lines):
    """Keeps only lines that look like KTAP, with their indentation."""
    out = []
    for raw in lines:
        line = strip_console(raw)
        if VERSION.match(line) or PLAN.match(line) or RESULT.match(line) or DIAG.match(line):
            out.append(line)
    return out


class Parser:
    def __init__(self, lines):
        self.lines = [l for l in lines if not DIAG.match(l)]
        self.pos = 0
        self.errors = []
        self.results = []

    def peek(self):
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def document(self, indent, prefix):
        """Parses one document at `indent`; returns (ok, count of leaves)."""
        line = self.peek()
        m = VERSION.match(line or "")
        if not m or m.group(1) != indent:
            self.errors.append(f"{prefix or 'top'}: expected 'KTAP version 1', got {line!r}")
            return False
        self.pos += 1
        m = PLAN.match(self.peek() or "")
        if not m or m.group(1) != indent:
            self.errors.append(f"{prefix or 'top'}: expected a plan, got {self.peek()!r}")
            return False
        planned = int(m.group(2))
        self.pos += 1
        all_ok = True
        for n in range(1, planned + 1):
            line = self.peek()
            if line is None:
                self.errors.append(f"{prefix or 'top'}: result {n} of {planned} missing")
                return False
            sub = None
            vm = VERSION.match(line)
            if vm and len(vm.group(1)) > len(indent):
                sub_indent = vm.group(1)
                start = len(self.results)
                sub_ok = self.document(sub_indent, None)
                sub = (start, sub_ok)
                line = self.peek()
            m = RESULT.match(line or "")
            if not m or m.group(1) != indent:
                self.errors.append(f"{prefix or 'top'}: expected result {n}, got {line!r}")
                return False
            self.pos += 1
            ok = m.group(2) == "ok"
            num, name = int(m.group(3)), m.group(4).strip()
            if num != n:
                self.errors.append(f"{prefix or 'top'}: result numbered {num}, expected {n}")
            path = f"{prefix}.{name}" if prefix else name
            if sub is None:
                self.results.append(Result(path, ok, m.group(5), m.group(6)))
            else:
                start, sub_ok = sub
                for r in self.results[start:]:
                    r.path = f"{path}.{r.path}"
                if sub_ok != ok and (m.group(5) or "").upper() != "SKIP":
                    self.errors.append(f"{path}: suite result disagrees with its cases")
                if start == len(self.results):
                    self.errors.append(f"{path}: suite has no cases")
            all_ok &= ok
        return all_ok


def parse(lines):
    """Parses every top-level document in `lines`; returns (results, errors)."""
    lines = ktap_lines(lines)
    results, errors = [], []
    i = 0
    while i < len(lines):
        m = VERSION.match(lines[i])
        if not m or m.group(1) != "":
            i += 1
            continue
        p = Parser(lines[i:])
        p.document("", "")
        results += p.results
        errors += p.errors
        i += max(p.pos, 1)
    return results, errors
