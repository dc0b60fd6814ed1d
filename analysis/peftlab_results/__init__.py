"""peftlab's analysis package: everything `peftlab table|plot|report` do, read from the HDF5 run files
(schema: docs/run-file.md). analysis/peftlab_analysis.py is its command-line entry point.

    runfiles      finding, verifying and reading run files (Run)
    order         the display order of method labels (rows, panels, lines)
    tuning        tuned sweeps: each method's chosen value of the tuned axes
    paired_stats  paired differences to a baseline with bootstrap intervals
    tables        the results table (Table) in markdown, LaTeX, CSV and HTML
    formatting    numbers and escaping shared by tables, figures and the report
    figures       what the figures share (pyplot, which runs are plotted, file names, JSON records)
    dynamics      magnitude vs direction figures (dM on dD, per task, module type and dimension)
    curves        training-loss and evaluation curves
    report        the self-contained HTML report
    cli           the command line (table, plot, report)
"""
