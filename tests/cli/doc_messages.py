#!/usr/bin/python3
"""docs/CLI.md quotes only messages the tool prints.

Two checks, so a message reworded in the code cannot stay quoted in the docs:

1. Every error line the docs show in a code block ("shmlink: VERB ADDR: reason ...") starts its
   reason with words the tool can print: a text of shml_strerror() (read from src/error.c) or a literal of the tool's sources (cli/*.c), up to the first value that varies
   (a number, a quoted name, a parenthesis).
2. No quoted text anywhere in the docs is the C library's strerror() wording of a code for
   which shml_strerror() has its own words ("Too many users" where the tool says "too many
   endpoints"), except after "cannot ...", where the tool prints strerror(errno) itself.

    tests/cli/doc_messages.py --src .
"""

import argparse
import errno
import glob
import os
import re
import sys


def strerror_texts(src):
    """{errno: text} of shml_strerror()'s own words, read from src/error.c (its switch), so
    the check needs no build of the library (and runs under any sanitizer)."""
    with open(os.path.join(src, "include", "shmlink", "common.h")) as f:
        aliases = dict(re.findall(r"#define (SHML_E[A-Z]+)\s+(E[A-Z]+)", f.read()))
    with open(os.path.join(src, "src", "error.c")) as f:
        text = f.read()
    texts = {}
    for name, words in re.findall(r"case (\w+):\s*return \"([^\"]*)\";", text):
        code = getattr(errno, aliases.get(name, name), None)
        if code is not None:
            texts[code] = words
    if len(texts) < 10:
        raise SystemExit("cannot read shml_strerror()'s texts from src/error.c")
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", required=True, help="the source tree")
    args = ap.parse_args()

    ours = strerror_texts(args.src)
    sources = ""
    for path in sorted(glob.glob(os.path.join(args.src, "cli", "*.c"))):
        with open(path) as f:
            sources += f.read()
    with open(os.path.join(args.src, "docs", "CLI.md")) as f:
        doc = f.read()

    problems = []
    known = set(ours.values())

    # 1. Error lines in code blocks.
    in_block = False
    for n, line in enumerate(doc.splitlines(), 1):
        if line.startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        m = re.match(r"shmlink: [a-z-]+(?: \S+)?: (.*)$", line)
        if not m:
            continue
        reason = m.group(1)
        stem = re.split(r"\d| \(|;|'", reason)[0].rstrip()
        if not stem:
            continue
        if not any(k.startswith(stem) or stem.startswith(k) for k in known) and \
                stem not in sources:
            problems.append("docs/CLI.md:%d: the tool never prints %r" % (n, stem))

    # 2. The C library's words where shml_strerror() has its own.
    for code, text in ours.items():
        libc = os.strerror(code)
        for m in re.finditer(re.escape(libc), doc):
            # "cannot run 'CMD': No such file or directory": the tool's strerror(errno).
            if re.search(r"cannot [^.`]*$", doc[max(0, m.start() - 60):m.start()]):
                continue
            problems.append("docs/CLI.md:%d: quotes %r, but the tool prints %r (%s)"
                            % (doc.count("\n", 0, m.start()) + 1, libc, text,
                               errno.errorcode.get(code, code)))

    for p in problems:
        print(p)
    if problems:
        print("FAIL: %d quoted message(s) the tool does not print" % len(problems))
        return 1
    print("ok: every quoted message is one the tool prints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
