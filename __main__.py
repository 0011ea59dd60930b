"""`python -m badminima`: the command line."""
from badminima.cli import main

main()
