#!/usr/bin/env python3
"""Counts the tests that ran per crate natively, as doctests and in headless Chromium, and the npm
package's JS tests.

Reads the logs of `cargo test` (native, doc), of the wasm-bindgen-test-runner run (browser) and of
`node --test` (js, counted under the package `pkg`) and prints one table. Exits non-zero if any log reports a failure or no test ran at all, so a silent
skip can't pass for a green run. The last line is the plain 'N passed, N failed' summary.
"""
import re
import sys
from collections import defaultdict

RUNNING = re.compile(r"^\s+Running (?:unittests )?(\S+) \(.*/deps/([A-Za-z0-9_]+)-[0-9a-f]+(?:\.wasm)?\)")
DOCTESTS = re.compile(r"^\s+Doc-tests (\S+)")
RESULT = re.compile(r"test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored")
BROWSER_TEST = re.compile(r"^test (\w+)::\S+ \.\.\. (ok|FAILED|ignored)")


def crate_of(binary: str) -> str:
    """`tabmesh_state` (unit tests, doctests) or `state` (the tests/it binary) -> `state`."""
    return binary.removeprefix("tabmesh_").replace("_", "-")


def parse_cargo(path, counts, place):
    current = None
    failed = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if m := RUNNING.match(line):
                current = crate_of(m.group(2))
            elif m := DOCTESTS.match(line):
                current = crate_of(m.group(1))
            elif (m := RESULT.search(line)) and current:
                counts[current][place] += int(m.group(2))
                counts[current][place + " ignored"] += int(m.group(4))
                failed += int(m.group(3))
    return failed


def parse_browser(path, counts):
    failed = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if m := BROWSER_TEST.match(line):
                if m.group(2) == "ok":
                    counts[m.group(1)]["browser"] += 1
                elif m.group(2) == "ignored":
                    counts[m.group(1)]["browser ignored"] += 1
                else:
                    failed += 1
            elif (m := RESULT.search(line)):
                failed += int(m.group(3))
    return failed


JS_COUNT = re.compile(r"^# (pass|fail|skipped|todo) (\d+)")


def parse_js(path, counts):
    failed = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if m := JS_COUNT.match(line):
                n = int(m.group(2))
                if m.group(1) == "pass":
                    counts["pkg"]["js"] += n
                elif m.group(1) == "fail":
                    failed += n
                else:
                    counts["pkg"]["js ignored"] += n
    return failed


def main():
    native, doc, browser, js = sys.argv[1:5]
    counts = defaultdict(lambda: defaultdict(int))
    failed = parse_cargo(native, counts, "native")
    failed += parse_cargo(doc, counts, "doc")
    failed += parse_browser(browser, counts)
    failed += parse_js(js, counts)
    cols = ["native", "doc", "browser", "js"]
    print()
    print(f"{'crate':<24}" + "".join(f"{c:>10}" for c in cols) + f"{'ignored':>10}")
    total = defaultdict(int)
    for crate in sorted(counts):
        row = counts[crate]
        if not any(row.values()):
            continue  # a target with no tests in any place (e.g. the browser harness natively)
        ignored = sum(row[c + " ignored"] for c in cols)
        print(f"{crate:<24}" + "".join(f"{row[c]:>10}" for c in cols) + f"{ignored:>10}")
        for c in cols:
            total[c] += row[c]
        total["ignored"] += ignored
    print(f"{'total':<24}" + "".join(f"{total[c]:>10}" for c in cols) + f"{total['ignored']:>10}")
    passed = sum(total[c] for c in cols)
    for place in ("browser", "js"):
        if total[place] == 0:
            print(f"error: no {place} test ran", file=sys.stderr)
            failed = failed or 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
