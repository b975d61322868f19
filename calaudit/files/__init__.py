"""Files on disk, handled safely.

``info`` reads facts about an input (its digest, its first bytes) and names why a path
cannot be used; ``atomic`` writes an output whole or not at all; ``output_paths``
refuses an output that would replace an input or another output; ``formats`` tells a
table's format from its name; ``prediction_file`` writes predictions as a file that
``calaudit run`` reads back.
"""
