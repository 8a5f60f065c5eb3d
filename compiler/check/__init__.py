"""Stage 5: the graph against a server's catalogue, the advisor's rules, the cost model.
"""
