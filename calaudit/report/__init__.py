"""What the reports say and draw, prepared from the result's plain data.

``human_narrative`` phrases the human-label figures (how the model compares with
what people said, what annotation buys, the smoothing sweep); ``human_charts`` draws
them. Nothing here computes a statistic, and this ``__init__`` stays empty so that
importing the package costs nothing.
"""
