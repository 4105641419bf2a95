#!/usr/bin/python3
"""docs/SECURITY.md names the tests that hold each rule: every one must be a test of this build.

    tests/readme/security_tests.py docs/SECURITY.md BUILD_DIR

A name is a backticked `label.name` whose label is one of the test labels (channel, segment,
cli, python, fuzz, ...); `python.FILE` names tests/python/test_FILE.py, and a pytest function
named after it in parentheses, `(test_x)`, must be in that file. Exit 0 when all exist, 1
otherwise (listing the missing ones).
"""

import re
import subprocess
import sys
from pathlib import Path

LABELS = ("unit", "segment", "sync", "channel", "cli", "python", "fuzz", "interop", "docs",
          "package")


def main():
    doc, build = Path(sys.argv[1]), sys.argv[2]
    text = doc.read_text()
    listed = subprocess.run(["ctest", "--test-dir", build, "-N"], capture_output=True,
                            text=True, check=True).stdout
    known = set(re.findall(r"Test +#\d+: (\S+)", listed))
    tests_dir = doc.parent.parent / "tests" / "python"
    missing = []
    names = re.findall(r"`((?:%s)\.[A-Za-z0-9_.]+)`(?:\s*\((`?)(test_\w+)\2\))?" % "|".join(LABELS),
                       text)
    for name, _, func in names:
        if name not in known:
            missing.append(name)
        if func:
            src = tests_dir / ("test_" + name.split(".", 1)[1] + ".py")
            if not src.exists() or ("def " + func + "(") not in src.read_text():
                missing.append("%s (%s)" % (name, func))
    if len(names) < 20:
        missing.append("(only %d test names found: the pattern no longer matches the page)"
                       % len(names))
    for m in missing:
        print("SECURITY.md names a test this build does not have: " + m)
    print("%d test names checked" % len(names))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
