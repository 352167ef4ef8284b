"""Allow ``python -m ecpif.cli``."""

from ecpif.cli import main

main()
