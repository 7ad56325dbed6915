"""The conformance suite: proves the identities of EQUATIONS.md on a chosen backend.

Run it with ``python -m conformance --backend ID`` (see ``conformance/__main__.py``) or with
pytest (``pytest conformance --backend ID``; ``SPEC_BACKEND`` works too).
"""
