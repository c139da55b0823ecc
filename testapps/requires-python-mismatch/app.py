import six

print(f"uv app: six {six.__version__}")
