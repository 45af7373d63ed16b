"""Makes the storage fixtures available to this directory even before tests/conftest.py registers the
`fixtures.storage` plugin; once it does, the plugin's fixtures are used and nothing is defined twice."""

import sys

if "fixtures.storage" not in sys.modules:
    from fixtures.storage import *  # noqa: F403
