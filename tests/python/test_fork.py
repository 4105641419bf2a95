"""Channels across fork(): a child cannot use or free the parent's endpoint through an
inherited handle (ChildProcessError), and a channel it opens itself works."""
import os

import shmlink


def test_inherited_channel_refused_in_child_parent_unharmed(addr):
    a = addr()
    with shmlink.Queue(a, create=True) as q:
        q.send(b"before")
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                try:
                    q.send(b"child", timeout=0)
                    code = 1
                except ChildProcessError:
                    pass
                try:
                    q.recv(timeout=0)
                    code = 2
                except ChildProcessError:
                    pass
                q.close()  # only unmaps: the parent's endpoint goes on
                with shmlink.Queue(a, role="producer") as own:
                    own.send(b"own", timeout=0)
            except BaseException:  # noqa: BLE001 - any failure is the child's exit status
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert q.recv(timeout=1) == b"before"
        assert q.recv(timeout=1) == b"own"
        q.send(b"after")
        assert q.recv(timeout=1) == b"after"
        assert q.stats()["attached"] == 1
