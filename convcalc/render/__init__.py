"""Report -> text: rich table, json, markdown, GitHub annotations. Renderers return values;
only the CLI prints."""

FORMATS = ("table", "json", "markdown", "github")
