"""The three models side by side, for people: the comparison table (page and CSV), the hand-out report
(Markdown), and plain-sentence commentary on a model's figures.

May import: every capability package but `cli` (it assembles their figures).
"""
