import importlib.util

print("six installed:", importlib.util.find_spec("six") is not None)
