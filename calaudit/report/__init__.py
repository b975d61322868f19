"""What the reports say and draw, prepared from the result's plain data.

``narrative`` words the audit (the verdict, the figures in natural frequencies);
``charts`` draws the reliability diagram and the other figures; ``decision_narrative``
and ``decision_charts`` word and draw segments, routing and comparisons;
``window_charts`` draws figures per window of time; ``human_narrative`` and
``human_charts`` word and draw the human-label figures; ``templating`` is the jinja2
environment of the HTML report and its number filters. Nothing here computes a
statistic, and this ``__init__`` stays empty so that importing the package costs
nothing.
"""
