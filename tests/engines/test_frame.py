import numpy as np
import torch

from ptypinn.engines.frame import ObjectFrame, from_engine_object, to_engine_object


def test_object_round_trips_through_the_engine_frame(rng):
    obj = (rng.normal(size=(40, 50)) + 1j * rng.normal(size=(40, 50))).astype(np.complex64)
    frame = ObjectFrame(shape=obj.shape, pad=(3, 1, 2, 5))
    engine = to_engine_object(obj, frame)
    assert engine.shape == frame.engine_shape == (44, 57)
    assert np.all(engine[:3] == 1) and np.all(engine[:, -5:] == 1)
    np.testing.assert_array_equal(from_engine_object(torch.from_numpy(engine), frame), obj)
    np.testing.assert_array_equal(from_engine_object(engine, frame), obj)


def test_frame_holds_every_window_and_its_bilinear_neighbour():
    size, shape = 16, (40, 50)
    positions = np.array(
        [[3.5, 2.25], [49.0, 39.9], [20.0, 20.0]]
    )  # windows leave the grid on all sides
    frame = ObjectFrame.around(positions, size, shape)
    top, bottom, left, right = frame.pad
    height, width = frame.engine_shape
    for (
        x,
        y,
    ) in positions:  # window rows floor(y) - N/2 ... floor(y) + N/2 (bilinear) in the engine array
        assert np.floor(y) - size // 2 + top >= 0 and np.floor(y) + size // 2 + top <= height - 1
        assert np.floor(x) - size // 2 + left >= 0 and np.floor(x) + size // 2 + left <= width - 1
    # the window of (3.5, 2.25) starts at row -6, column -5 of our grid; one more for the margin
    assert (top, left) == (7, 6)
