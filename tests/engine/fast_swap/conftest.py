"""Fixtures of the fast-swap tests: one torch thread, and a torch hub cache with VGG-19."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from vggfile import patched_torch_home


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on cores other tests keep busy, two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TORCH_HOME pointing at a hub cache that holds a random VGG-19 under its real name."""
    with patched_torch_home(tmp_path_factory.mktemp("torch")) as home:
        yield home
