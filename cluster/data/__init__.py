"""WebShop's published data: where it comes from (`sources`), fetching it (`download`),
and the `webshop-rl data` commands (`cli`)."""
