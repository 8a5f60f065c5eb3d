"""The values every stage shares: the frozen Recipe, the Graph, model families,
region geometry and the facts about ComfyUI node classes.
"""
