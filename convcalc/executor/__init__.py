"""NumPy executor: channels-last compute kernels (`kernels`) and, beside them, the graph runner."""
