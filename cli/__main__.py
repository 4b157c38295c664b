"""`python -m cli`: the product-images command."""

from product_images.cli.main import main

main()
