import pytest
import torch

from ptypinn.pinn.runtime import torch_threads


def test_torch_threads_sets_the_count_in_the_block_and_restores_it_even_after_an_error():
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(wanted):
        raise RuntimeError("the method failed")
    assert torch.get_num_threads() == before
    with torch_threads(None):  # no count asked: left as it is
        assert torch.get_num_threads() == before
