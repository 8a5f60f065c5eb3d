"""`recipe watch`: re-run the recipe on every save; the live page.
"""
