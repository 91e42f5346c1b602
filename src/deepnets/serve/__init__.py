"""The local web page (`deepnets serve`): browse every result, try every trained run.

Needs the `serve` extra (FastAPI, uvicorn, python-multipart); `make test` installs it.
"""
