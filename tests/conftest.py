"""Fixtures shared by the whole test suite."""

import sys

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: thread start-up and contention on a shared CPU cost more than they give.
    Only touches torch where the test module already imported it (radlabel's tests stay torch-free)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
