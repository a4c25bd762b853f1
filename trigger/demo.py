"""``python -m trigger.demo`` (``make demo``): the jet MLP end to end on a small sample; the runner
is :mod:`trigger.stages.demo`."""

from trigger.stages.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
