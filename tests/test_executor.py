"""trigger.executor.completed: results as tasks finish, failures raised or handed to on_error."""

from __future__ import annotations

import pytest

from trigger.executor import completed, dask_client


def _half(n: int) -> float:
    if n == 3:
        raise ValueError(f"odd task {n}")
    return n / 2


@pytest.fixture(scope="module")
def client():
    """A local cluster of 2 one-thread worker processes on 127.0.0.1, stopped after the module."""
    with dask_client(workers=2) as running:
        yield running


def test_completed_yields_every_result_by_key(client):
    got = dict(completed(client, _half, [(n, (n,)) for n in (0, 2, 4, 6)]))
    assert got == {0: 0.0, 2: 1.0, 4: 2.0, 6: 3.0}


def test_a_failed_task_raises_without_on_error(client):
    with pytest.raises(ValueError, match="odd task 3"):
        dict(completed(client, _half, [(n, (n,)) for n in (2, 3)]))


def test_on_error_turns_a_failure_into_a_result(client):
    seen = []

    def failed(key, exc):
        seen.append((key, type(exc).__name__))
        return f"failed: {exc}"

    got = dict(completed(client, _half, [(n, (n,)) for n in (2, 3, 4)], retries=1, on_error=failed))
    assert got == {2: 1.0, 3: "failed: odd task 3", 4: 2.0}
    assert seen == [(3, "ValueError")]  # once, after Dask's retry
