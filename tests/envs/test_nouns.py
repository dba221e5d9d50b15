from envs.nouns import title_nouns


def test_titles_in_webshop_style():
    assert title_nouns("Easy Spirit Traveltime529 Mule Shoes, Taupe Leather, 7.5 W") == [
        "easy", "spirit", "traveltime529", "mule", "shoes", "taupe", "leather", "w"]
    # numbers are NUM; "for" is a preposition; hyphens split
    assert title_nouns("Sulfate-Free Shampoo for Damaged Hair - 16 Fl Oz") == [
        "sulfate", "free", "shampoo", "damaged", "hair", "fl", "oz"]
    # lower-case adjectives, -ly / -ed / -ing forms are not nouns; -ing nouns are
    assert title_nouns("womens high waisted stretchy jeans with matching earring") == [
        "womens", "jeans", "earring"]
    assert title_nouns("the and of with") == []
    assert title_nouns("12 x 16 inch") == ["inch"]
    # repeats kept
    assert title_nouns("Hair Oil Hair") == ["hair", "oil", "hair"]
