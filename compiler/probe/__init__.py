"""The leak probe: how far each character's LoRA reaches outside its region.

    masks     each region's mask as the graph's own mask nodes compute it
    metrics   reading latents and images, |Δ| maps, effect / leak / share

numpy is needed here and nowhere else: import this package only when probing.
"""
