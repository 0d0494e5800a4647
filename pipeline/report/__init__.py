"""Stage 6, report: quarterly unused-permission and anomaly reports, and the compliance
evidence bundle (HTML with JSON/CSV twins). Not built yet: the report issues add it, rendering
the templates in the top-level reports/ folder with jinja2 (autoescape, StrictUndefined).
"""
