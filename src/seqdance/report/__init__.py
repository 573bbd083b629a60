"""Interactive HTML reports of predictions, scans and explanations (``seqdance report``).

The entry point is :func:`seqdance.report.build.write_html_report`.
"""
