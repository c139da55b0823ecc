import six

print(f"poetry app: six {six.__version__}")
