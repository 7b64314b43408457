"""The ``luigi`` console script: a real Luigi's command line when one is installed, else the
shim's.

``pip`` gives each distribution its own scripts; when a real Luigi is installed too, its
``luigi`` script may replace this one, which is what should happen. When this one runs, the
finder sits at the end of ``sys.meta_path``, so ``import luigi.cmdline`` still finds a real
Luigi first if the interpreter has one.
"""

from __future__ import annotations


def main() -> None:
    import _ductwork_compat

    _ductwork_compat.install()
    import luigi.cmdline

    luigi.cmdline.luigi()
