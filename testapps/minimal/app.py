"""Prints where its dependencies were imported from: the suite checks they come from the venv."""

import idna
import six

if __name__ == "__main__":
    print(f"six {six.__version__} from {six.__file__}")
    print(f"idna {idna.__version__} from {idna.__file__}")
