"""What the documentation shows runs: every ```python block of python/README.md and of
README.md, each in a fresh interpreter with a bounded time, with the C peer a block needs;
help() shows what is written; every call that takes a timeout says what None does."""
import inspect
import os
import pathlib
import pydoc
import re
import subprocess
import sys
import uuid

import pytest

import shmlink
from conftest import CLI

ROOT = pathlib.Path(__file__).resolve().parents[2]


def blocks(path, lang):
    text = (ROOT / path).read_text()
    return re.findall(r"^```" + lang + r"\n(.*?)^```$", text, re.S | re.M)


def run_block(code, timeout=60):
    """Run code in a fresh interpreter, elsewhere, importing this shmlink."""
    env = dict(os.environ,
               PYTHONPATH=str(pathlib.Path(shmlink.__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd="/tmp", env=env)


def expected_output(code):
    """The `# words` comments after print() calls: what the block says it prints."""
    return [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s*#\s*(.*)$", code, re.M)]


PY_BLOCKS = blocks("python/README.md", "python")


def test_python_readme_has_blocks():
    assert len(PY_BLOCKS) >= 4
    assert len(README_DEMO_BLOCKS) >= 1  # the asyncio example
    assert len(blocks("python/README.md", "sh")) == 1  # run by pip_install.sh


def run_demo_block(code):
    """Run a block that names its segments "demo-...", under a unique prefix that keeps runs
    apart; it prints what its comments say and leaves nothing in /dev/shm."""
    prefix = f"pyt-doc-{os.getpid()}-{uuid.uuid4().hex[:6]}-"
    names = sorted(set(re.findall(r'"(demo-[\w-]+)"', code)))
    assert names, "a block that makes segments names them demo-..."
    ran = code
    for n in names:
        ran = ran.replace(f'"{n}"', f'"{prefix}{n}"')
    try:
        r = run_block(ran)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == expected_output(code)
    finally:
        left = [f for f in os.listdir("/dev/shm") if f.startswith(prefix)]
        for f in left:
            shmlink.unlink(f)
        assert not left, f"the block left {left}"


@pytest.mark.parametrize("i", range(len(PY_BLOCKS)))
def test_python_readme_block_runs(i):
    run_demo_block(PY_BLOCKS[i])


README_DEMO_BLOCKS = [b for b in blocks("README.md", "python") if '"depth"' not in b]


@pytest.mark.parametrize("i", range(len(README_DEMO_BLOCKS)))
def test_readme_python_block_runs(i):
    """README.md's Python blocks other than the depth reader (below): the asyncio one."""
    run_demo_block(README_DEMO_BLOCKS[i])


def test_readme_python_block_with_its_c_writer():
    """README.md: the C writer (examples/depth.c, the C block above it) then the Python
    reader, both as written. The name "depth" is fixed by the example: ctest runs this file
    under the shml_global resource lock."""
    if not CLI:
        pytest.skip("the build directory is unknown (SHML_CLI unset)")
    writer = pathlib.Path(CLI).resolve().parents[1] / "examples" / "example_depth"
    if not os.access(writer, os.X_OK):
        pytest.skip("examples/example_depth is not built")
    (code,) = [b for b in blocks("README.md", "python") if '"depth"' in b]
    c_blocks = blocks("README.md", "c")
    assert any(b.strip() in (ROOT / "examples/depth.c").read_text() for b in c_blocks)
    with pytest.raises(FileNotFoundError):
        shmlink.info("depth")  # nothing of another run is left to read
    try:
        subprocess.run([str(writer)], check=True, timeout=60)
        r = run_block(code)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == expected_output(code)
    finally:
        try:
            shmlink.unlink("depth")
        except FileNotFoundError:
            pass


def public_callables():
    for name in shmlink.__all__:
        obj = getattr(shmlink, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            yield name, obj
            for attr in dir(obj):
                if not attr.startswith("_") and callable(getattr(obj, attr)):
                    yield f"{name}.{attr}", getattr(obj, attr)
        elif callable(obj) and not inspect.isclass(obj):
            yield name, obj


def test_help_shows_mode_in_octal():
    for cls in (shmlink.Segment, shmlink.Queue, shmlink.Bus, shmlink.Latest, shmlink.RPC):
        text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
        assert "mode=384" not in text and "mode=0o600" in text, cls
        assert str(inspect.signature(shmlink.Queue)).count("mode=0o600") == 1


def test_every_timeout_is_documented():
    missing = []
    for name, obj in public_callables():
        doc = inspect.getdoc(obj) or ""
        try:
            takes = "timeout" in inspect.signature(obj).parameters
        except (TypeError, ValueError):  # a C method: its signature is its doc's first line
            takes = "timeout" in doc.split("\n", 1)[0]
        if takes and "for ever" not in doc:
            missing.append(name)
    assert not missing, f"timeout=None not documented as waiting for ever: {missing}"
