"""`python -m buddylb` is the `buddylb` command."""
from buddylb.cli import main

main()
