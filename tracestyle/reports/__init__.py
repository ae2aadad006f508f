"""Reports: failure taxonomy, statistics, tables, plots, Markdown/HTML rendering."""
