"""The display order of method labels, shared by table rows, figure panels and curve lines."""
import os
import re


# Rows, panels and lines follow the method registry's display order, which `peftlab` passes in
# PEFTLAB_METHOD_ORDER (`peftlab methods` lists it); methods it does not name come after, by name. Labels of one
# method sort naturally (r=4 before r=16).
def method_order():
    return tuple(name for name in os.environ.get("PEFTLAB_METHOD_ORDER", "").split(",") if name)


def _natural(text):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def label_order(runs):
    """The method labels of these runs, in display order."""
    method_of = {}
    for run in runs:
        method_of.setdefault(run.label, run.method)
    rank = {m: i for i, m in enumerate(method_order())}
    return sorted(method_of, key=lambda l: (rank.get(method_of[l], len(rank)), method_of[l], _natural(l)))
