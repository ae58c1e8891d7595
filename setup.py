"""Build the native Unicorn counting hook as part of the package install.

The hook is a plain C shared object that Unicorn calls directly (registered through
``uc_hook_add`` via ctypes); it is packaged as an extension module only so that
setuptools compiles and installs it with the package.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tinymeter.sim._counthook",
            sources=["sim/native/counthook.c"],
            extra_compile_args=["-O2", "-std=c11"],
        )
    ]
)
