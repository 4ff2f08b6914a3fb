"""Build the one compiled helper (everything else is in pyproject.toml).

``edge_sfu.media.seam._fastpath`` is optional: where there is no C compiler or no Python
headers the install goes on without it and the forwarder uses its pure-Python path
(``edge_sfu/media/seam/egress.py`` says which one runs, and why).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edge_sfu.media.seam._fastpath",
            sources=["edge_sfu/media/seam/_fastpath.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
