#!/usr/bin/python3
"""docs/ARCHITECTURE.md names files, functions and structs: every one must exist in the tree.

    tests/readme/architecture_names.py SOURCE_DIR

A backticked word of the page is checked when it is
  - a path (it has a '/', or ends in a source extension): it must exist from the top of the
    tree ('*' globs, a trailing '/' is a directory); a bare file name must exist somewhere;
  - `name()`: a function (or function-like macro) defined or declared in a source file: the
    name before a '(' on a line of C at the top level (not indented, not a comment or a
    directive: where definitions and declarations start), a `#define name(`, or a Python
    `def name(`;
  - `struct name`: a `struct name {` in a source file;
  - `SHML_NAME`: a word of some source file or CMakeLists.txt.
In a table row that names files, each function and struct of the row must be defined or
declared in one of those files, so that a function moved to another file moves on the page
too. Exit 0 when all hold, 1 otherwise (listing what is missing).
"""

import re
import sys
from pathlib import Path

DOC = Path("docs") / "ARCHITECTURE.md"
SOURCE_EXT = (".c", ".h", ".py", ".cpp", ".cmake")
PATH_EXT = SOURCE_EXT + (".md", ".sh", ".t", ".out", ".txt", ".in")
SKIP_DIRS = {".git", "corpus", "__pycache__"}


def tree(root):
    """Every file of the tree (build trees, the fuzz corpus and .git left out)."""
    out = []
    stack = [root]
    while stack:
        d = stack.pop()
        if (d / "CMakeCache.txt").exists() or d.name in SKIP_DIRS:
            continue
        for p in d.iterdir():
            if p.is_dir():
                stack.append(p)
            else:
                out.append(p)
    return out


def definitions(text):
    """The functions and structs a source text defines or declares, and its SHML_ words."""
    funcs = set()
    for line in text.splitlines():
        if line and not line[0].isspace() and line[0] not in "/*#":
            funcs.update(re.findall(r"\b(\w+)\s*\(", line))
    funcs.update(re.findall(r"^#\s*define\s+(\w+)\(", text, re.M))
    funcs.update(re.findall(r"^\s*def\s+(\w+)\(", text, re.M))
    return {"function": funcs, "struct": set(re.findall(r"\bstruct\s+(\w+)\s*\{", text)),
            "macro": set(re.findall(r"\bSHML_\w+", text))}


def is_path(word):
    return not word.startswith("/") and re.fullmatch(r"[\w.*+-]+(/[\w.*+-]*)*", word) and (
        "/" in word or word.endswith(PATH_EXT))


def main():
    root = Path(sys.argv[1]).resolve()
    doc = (root / DOC).read_text()
    every = tree(root)
    # This file names what it looks for: it must not vouch for the page.
    files = [p for p in every if (p.suffix in SOURCE_EXT or p.name == "CMakeLists.txt")
             and p != Path(__file__).resolve()]
    defs = {p: definitions(p.read_text(errors="replace")) for p in files}
    basenames = {p.name for p in every}
    missing = []
    counts = {"path": 0, "function": 0, "struct": 0, "macro": 0}

    def where(kind, name, within):
        return [p for p in within if name in defs[p][kind]]

    for line_no, line in enumerate(doc.splitlines(), 1):
        words = re.findall(r"`([^`]+)`", line)
        row_files = []
        for w in words:
            if not is_path(w):
                continue
            counts["path"] += 1
            if "/" in w:
                hits = sorted(root.glob(w.rstrip("/"))) if "*" in w else [root / w.rstrip("/")]
                if not hits or not all(h.exists() for h in hits) or (
                        w.endswith("/") and not hits[0].is_dir()):
                    missing.append("line %d: path %s" % (line_no, w))
                row_files += [h for h in hits if h in defs]
            elif w not in basenames:
                missing.append("line %d: file %s" % (line_no, w))
        in_row = line.startswith("|") and row_files
        for w in words:
            m = re.fullmatch(r"(\w+)\(\)", w) or re.fullmatch(r"struct (\w+)", w)
            if m:
                kind = "function" if w.endswith("()") else "struct"
                counts[kind] += 1
                if not where(kind, m.group(1), files):
                    missing.append("line %d: %s" % (line_no, w))
                elif in_row and not where(kind, m.group(1), row_files):
                    missing.append("line %d: %s is in none of the row's files (%s)" % (
                        line_no, w, ", ".join(str(p.relative_to(root)) for p in row_files)))
            elif re.fullmatch(r"SHML_\w+", w):
                counts["macro"] += 1
                if not where("macro", w, files):
                    missing.append("line %d: name %s" % (line_no, w))
    # A page whose names no longer match the patterns would pass without checking anything.
    for kind, least in (("path", 60), ("function", 80), ("struct", 4)):
        if counts[kind] < least:
            missing.append("only %d %s names found: the patterns no longer match the page"
                           % (counts[kind], kind))
    for m in missing:
        print("ARCHITECTURE.md names what the tree does not have: " + m)
    print("%d paths, %d functions, %d structs, %d SHML_ names checked" % (
        counts["path"], counts["function"], counts["struct"], counts["macro"]))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
