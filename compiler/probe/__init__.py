"""The leak probe: how far each character's LoRA reaches outside its region.

    renders   the baseline (every LoRA at 0) and one render per character,
              each the user's recipe with strengths overridden, lowered with PROBE
    masks     each region's mask as the graph's own mask nodes compute it
    metrics   reading latents and images, |Δ| maps, effect / leak / share
    report    from renders to numbers, and the table
    heatmap   probe.png
    driver    `recipe probe`, end to end: probe_file()

numpy is needed here and nowhere else: import this package only when probing.
"""
