"""`python -m cli`: the product-images command."""

from cli.main import main

main()
