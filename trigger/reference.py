"""``python -m trigger.reference`` (``make reference``): the reference models; the runner is
:mod:`trigger.stages.reference`."""

from trigger.stages.reference import main

if __name__ == "__main__":
    raise SystemExit(main())
