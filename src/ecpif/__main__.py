"""Allow ``python -m ecpif``."""

from ecpif.cli import main

main()
