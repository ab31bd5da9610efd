"""`python -m bench` (what `make bench` runs): every metric once, one table (``bench.table``)."""

from bench.table import main

main()
