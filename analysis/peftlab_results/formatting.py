"""Numbers and escaping shared by the tables, the figures and the report."""


def share_text(percent, none):
    """Trainable share in %: two decimals, or two significant digits below 0.1 % (LoRA on a 7B model)."""
    if percent is None:
        return none
    return f"{percent:.2f}" if percent >= 0.1 or percent == 0 else f"{percent:.2g}"


def csv_number(x):
    """A CSV cell: full precision, empty where there is no value."""
    return "" if x is None else repr(float(x))


def stat_text(x, spec):
    """A fitted statistic (slope, Pearson r) in a figure title or the report; n/a where undefined."""
    return "n/a" if x is None else format(x, spec)


def latex_escape(text):
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(ch, ch) for ch in text)


def html_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
